#include "config/ip_network.h"

#include <gtest/gtest.h>

#include <string>

namespace gw::config {
namespace {

IpAddress address(const std::string& text) {
  auto parsed = parse_ip_address(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : IpAddress{};
}

bool in(const std::string& network, const std::string& peer) {
  auto n = parse_ip_network(network);
  EXPECT_TRUE(n.ok()) << network << ": " << (n.ok() ? "" : n.error().message);
  return n.ok() && n->contains(address(peer));
}

TEST(IpNetworkTest, Ipv4Blocks) {
  EXPECT_TRUE(in("10.0.0.0/8", "10.1.2.3"));
  EXPECT_FALSE(in("10.0.0.0/8", "11.1.2.3"));
  EXPECT_TRUE(in("192.168.1.0/25", "192.168.1.127"));
  EXPECT_FALSE(in("192.168.1.0/25", "192.168.1.128"));
  EXPECT_TRUE(in("192.168.1.7", "192.168.1.7"));  // a host is /32
  EXPECT_FALSE(in("192.168.1.7", "192.168.1.8"));
  EXPECT_TRUE(in("0.0.0.0/0", "203.0.113.9"));
  EXPECT_FALSE(in("0.0.0.0/0", "2001:db8::1"));  // /0 of IPv4 is every IPv4 address, not IPv6
  EXPECT_TRUE(in("10.1.2.3/8", "10.200.0.1"));   // host bits ignored
}

TEST(IpNetworkTest, Ipv6BlocksAndMappedIpv4Peers) {
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8:1::5"));
  EXPECT_FALSE(in("2001:db8::/32", "2001:db9::5"));
  EXPECT_TRUE(in("::1", "::1"));
  EXPECT_TRUE(in("fe80::/10", "fe80::1%eth0"));  // zone ignored
  EXPECT_TRUE(in("::/0", "10.1.2.3"));
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  EXPECT_TRUE(in("10.0.0.0/8", "::ffff:10.1.2.3"));
  EXPECT_FALSE(in("10.0.0.0/8", "::ffff:11.1.2.3"));
  EXPECT_TRUE(in("::ffff:10.0.0.0/104", "10.9.9.9"));
  EXPECT_TRUE(in("2001:db8::1", "[2001:db8::1]"));
}

TEST(IpNetworkTest, Refused) {
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                          "10.0.0", "host.example.com", "10.0.0.0/8/8", "300.1.1.1"}) {
    EXPECT_FALSE(parse_ip_network(bad).ok()) << bad;
  }
  EXPECT_EQ(parse_ip_network("10.0.0.0/33").error().message,
            "prefix length must be 0-32 for an IPv4 block, got `/33`");
  EXPECT_FALSE(parse_ip_address("10.0.0.1:104").ok());
  EXPECT_FALSE(parse_ip_address("").ok());
}

}  // namespace
}  // namespace gw::config
