#pragma once
/// IP address blocks for `routes[].match.source`, shared by the config check and the routing
/// table. IPv4 is held in its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so a rule written as
/// 10.0.0.0/8 also matches a peer that a dual-stack socket reports as ::ffff:10.1.2.3.

#include <array>
#include <cstdint>
#include <string_view>

#include "core/result.h"

namespace gw::config {

using IpAddress = std::array<std::uint8_t, 16>;  ///< IPv6 form, network byte order

struct IpNetwork {
  IpAddress address{};         ///< host bits cleared
  unsigned prefix_length = 0;  ///< over the 128-bit form (an IPv4 /8 is 104)

  bool contains(const IpAddress& candidate) const;
};

/// "10.0.0.0/8", "10.1.2.3" (a single host), "2001:db8::/32", "::1". Bits beyond the prefix
/// are ignored ("10.1.2.3/8" is 10.0.0.0/8). kInvalidArgument says what is wrong.
core::Result<IpNetwork> parse_ip_network(std::string_view text);

/// A peer address as a socket reports it: "10.1.2.3", "::ffff:10.1.2.3", "fe80::1%eth0" (the
/// zone is ignored) or "[::1]". No port.
core::Result<IpAddress> parse_ip_address(std::string_view text);

}  // namespace gw::config
