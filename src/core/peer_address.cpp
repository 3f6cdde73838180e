#include "core/peer_address.h"

namespace gw::core {

std::string host_of_peer(std::string_view peer) {
  if (peer.starts_with('[')) {  // [ipv6]:port
    const auto close = peer.find(']');
    if (close != std::string_view::npos) return std::string(peer.substr(1, close - 1));
  }
  const auto colon = peer.rfind(':');
  // A bare IPv6 address has several colons and no port.
  if (colon == std::string_view::npos || peer.find(':') != colon) return std::string(peer);
  return std::string(peer.substr(0, colon));
}

}  // namespace gw::core
