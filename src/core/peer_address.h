#pragma once
/// Peer addresses as the gateway records them: "ip:port", "[ipv6]:port".

#include <string>
#include <string_view>

namespace gw::core {

/// The host part of a recorded peer address: "10.0.0.5:40112" -> "10.0.0.5",
/// "[::1]:5678" -> "::1"; an address without a port as it is.
std::string host_of_peer(std::string_view peer);

}  // namespace gw::core
