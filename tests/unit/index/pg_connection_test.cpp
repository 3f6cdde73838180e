// The PostgreSQL backend's start-up check for connections that may travel in plaintext over a
// network (libpq's default sslmode=prefer falls back to plaintext silently).

#include "index/postgres/pg_connection.h"

#include <gtest/gtest.h>

namespace gw::index::pg {
namespace {

TEST(MayUsePlaintextOverNetwork, RemoteHostsWithoutRequiredTlsAreFlagged) {
  for (const char* mode : {"", "prefer", "allow", "disable"}) {
    EXPECT_TRUE(may_use_plaintext_over_network("db.example.org", "", mode)) << mode;
    EXPECT_TRUE(may_use_plaintext_over_network("10.0.0.5", "", mode)) << mode;
  }
}

TEST(MayUsePlaintextOverNetwork, RequiredTlsIsNotFlagged) {
  for (const char* mode : {"require", "verify-ca", "verify-full"}) {
    EXPECT_FALSE(may_use_plaintext_over_network("db.example.org", "", mode)) << mode;
  }
}

TEST(MayUsePlaintextOverNetwork, SocketsAndLoopbackAreNotFlagged) {
  EXPECT_FALSE(may_use_plaintext_over_network("", "", ""));  // libpq's default socket
  EXPECT_FALSE(may_use_plaintext_over_network("/run/postgresql", "", "prefer"));
  EXPECT_FALSE(may_use_plaintext_over_network("@abstract", "", "disable"));
  EXPECT_FALSE(may_use_plaintext_over_network("localhost", "", "prefer"));
  EXPECT_FALSE(may_use_plaintext_over_network("127.0.0.1", "", "prefer"));
  EXPECT_FALSE(may_use_plaintext_over_network("::1", "", "prefer"));
}

TEST(MayUsePlaintextOverNetwork, HostaddrAndHostListsDecide) {
  // hostaddr is where libpq connects; host then only names the server.
  EXPECT_FALSE(may_use_plaintext_over_network("db.example.org", "127.0.0.1", "prefer"));
  EXPECT_TRUE(may_use_plaintext_over_network("localhost", "10.0.0.5", "prefer"));
  // One remote host in a list is enough.
  EXPECT_TRUE(may_use_plaintext_over_network("/run/postgresql,db.example.org", "", "prefer"));
  EXPECT_FALSE(may_use_plaintext_over_network("/run/postgresql,localhost", "", "prefer"));
}

}  // namespace
}  // namespace gw::index::pg
