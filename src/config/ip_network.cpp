#include "config/ip_network.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>

namespace gw::config {
namespace {

constexpr unsigned kIpv4MappedPrefix = 96;
constexpr std::size_t kMaxAddressText = 64;  // longer than any textual IPv6 address

struct Parsed {
  IpAddress address{};
  bool ipv4 = false;
};

bool parse_address(std::string_view text, Parsed& out) {
  if (text.empty() || text.size() >= kMaxAddressText) return false;
  char buffer[kMaxAddressText];  // inet_pton needs a terminated string; no allocation
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  in_addr v4{};
  if (inet_pton(AF_INET, buffer, &v4) == 1) {
    out.address = {};
    out.address[10] = 0xff;
    out.address[11] = 0xff;
    std::memcpy(out.address.data() + 12, &v4, 4);
    out.ipv4 = true;
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buffer, &v6) == 1) {
    std::memcpy(out.address.data(), &v6, 16);
    out.ipv4 = false;
    return true;
  }
  return false;
}

void clear_host_bits(IpAddress& address, unsigned prefix_length) {
  for (unsigned bit = prefix_length; bit < 128; ++bit) {
    address[bit / 8] = static_cast<std::uint8_t>(address[bit / 8] & ~(0x80u >> (bit % 8)));
  }
}

core::Error invalid(std::string message) {
  return core::make_error(core::ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

bool IpNetwork::contains(const IpAddress& candidate) const {
  const unsigned whole_bytes = prefix_length / 8;
  if (!std::equal(address.begin(), address.begin() + whole_bytes, candidate.begin())) return false;
  const unsigned rest = prefix_length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (candidate[whole_bytes] & mask) == address[whole_bytes];
}

core::Result<IpNetwork> parse_ip_network(std::string_view text) {
  const auto slash = text.find('/');
  Parsed parsed;
  if (!parse_address(text.substr(0, slash), parsed)) {
    return invalid(fmt::format(
        "expected an IPv4 or IPv6 address or CIDR block (10.0.0.0/8, 2001:db8::/32), got `{}`",
        text));
  }
  const unsigned max_length = parsed.ipv4 ? 32 : 128;
  unsigned length = max_length;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const char* end = digits.data() + digits.size();
    auto [ptr, ec] = std::from_chars(digits.data(), end, length);
    if (digits.empty() || ec != std::errc{} || ptr != end || length > max_length) {
      return invalid(fmt::format("prefix length must be 0-{} for an {} block, got `/{}`",
                                 max_length, parsed.ipv4 ? "IPv4" : "IPv6", digits));
    }
  }
  IpNetwork network;
  network.address = parsed.address;
  network.prefix_length = parsed.ipv4 ? kIpv4MappedPrefix + length : length;
  clear_host_bits(network.address, network.prefix_length);
  return network;
}

core::Result<IpAddress> parse_ip_address(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (const auto zone = text.find('%'); zone != std::string_view::npos) {
    text = text.substr(0, zone);
  }
  Parsed parsed;
  if (!parse_address(text, parsed)) {
    return invalid(fmt::format("not an IP address: `{}`", text));
  }
  return parsed.address;
}

}  // namespace gw::config
