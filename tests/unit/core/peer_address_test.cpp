// The host part of recorded peer addresses.
#include "core/peer_address.h"

#include <gtest/gtest.h>

namespace gw::core {
namespace {

TEST(PeerAddress, HostOfIpv4AndIpv6AddressesWithAndWithoutPort) {
  EXPECT_EQ(host_of_peer("10.0.0.5:40112"), "10.0.0.5");
  EXPECT_EQ(host_of_peer("[::1]:5678"), "::1");
  EXPECT_EQ(host_of_peer("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(host_of_peer("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(host_of_peer("pacs.example.org"), "pacs.example.org");
  EXPECT_EQ(host_of_peer(""), "");
}

}  // namespace
}  // namespace gw::core
