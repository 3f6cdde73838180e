// What only the PostgreSQL backend has: connecting (errors name host:port, never the password;
// a password file), the migrations table and pgcrypto, the audit trigger seen from another
// session, a newer schema refused, reconnecting after the server dropped the connection, and
// nodes starting at once on an empty database.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "index_contract.h"
#include "support/net.h"

namespace gw::index {
namespace {

using core::ErrorCode;

class IndexPostgres : public ::testing::Test {
 protected:
  void SetUp() override { database_ = server_.create_database(); }

  Result<std::unique_ptr<Index>> open(const std::string& url,
                                      const std::filesystem::path& password_file = {}) {
    OpenOptions options;
    options.url = url;
    options.password_file = password_file;
    options.pool_size = 2;
    return open_index(options);
  }

  test::PostgresServer& server_ = test::PostgresServer::shared();
  test::TempDir dir_{"gw-index-pg"};
  std::string database_;
};

TEST_F(IndexPostgres, AnUnreachableServerIsNamedWithoutThePassword) {
  const std::uint16_t closed = test::free_tcp_port();
  const std::string url =
      "postgresql://gw:s3cret-pw-xyz@127.0.0.1:" + std::to_string(closed) + "/gw";
  auto index = open(url);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code, ErrorCode::kDatabase);
  EXPECT_NE(index.error().message.find("127.0.0.1:" + std::to_string(closed)), std::string::npos)
      << index.error().message;
  EXPECT_EQ(index.error().message.find("s3cret-pw-xyz"), std::string::npos)
      << index.error().message;
}

TEST_F(IndexPostgres, AWrongPasswordIsRefusedWithoutRepeatingIt) {
  const std::string url = "postgresql://" + server_.user() +
                          ":wrong-pw-123@127.0.0.1:" + std::to_string(server_.port()) + "/" +
                          database_;
  auto index = open(url);
  ASSERT_FALSE(index.ok());
  EXPECT_NE(index.error().message.find("authentication failed"), std::string::npos)
      << index.error().message;
  EXPECT_EQ(index.error().message.find("wrong-pw-123"), std::string::npos);
  EXPECT_EQ(index.error().message.find(server_.password()), std::string::npos);

  auto garbled = open("postgresql://user:p%ZZ@127.0.0.1:1/x");
  ASSERT_FALSE(garbled.ok());
  EXPECT_EQ(garbled.error().message.find("p%ZZ"), std::string::npos) << garbled.error().message;
}

TEST_F(IndexPostgres, PasswordFromAFileOnlyWhenOthersCannotReadIt) {
  const auto file = dir_.path() / "db-password";
  std::ofstream(file) << server_.password() << "\n";
  ::chmod(file.c_str(), 0600);
  auto index = open(server_.url_without_password(database_), file);
  ASSERT_TRUE(index.ok()) << index.error().message;
  EXPECT_TRUE((*index)->count_instances().ok());

  ::chmod(file.c_str(), 0644);
  auto loose = open(server_.url_without_password(database_), file);
  ASSERT_FALSE(loose.ok());
  EXPECT_EQ(loose.error().code, ErrorCode::kConfig);
  EXPECT_NE(loose.error().message.find("chmod"), std::string::npos);
}

TEST_F(IndexPostgres, MigrationsAreRecordedAndPgcryptoIsThere) {
  auto index = open(server_.url(database_));
  ASSERT_TRUE(index.ok()) << index.error().message;
  auto version = (*index)->schema_version();
  ASSERT_TRUE(version.ok());
  auto recorded = server_.psql(database_, "SELECT max(version) FROM schema_migrations");
  ASSERT_TRUE(recorded.ok()) << recorded.err;
  EXPECT_EQ(recorded.out, std::to_string(*version) + "\n");
  auto extension = server_.psql(database_,
                                "SELECT extname FROM pg_extension WHERE extname = "
                                "'pgcrypto'");
  ASSERT_TRUE(extension.ok()) << extension.err;
  EXPECT_EQ(extension.out, "pgcrypto\n");
}

TEST_F(IndexPostgres, AuditRowsAreAppendOnlyForEverySession) {
  auto index = open(server_.url(database_));
  ASSERT_TRUE(index.ok()) << index.error().message;
  AuditEvent event;
  event.actor = "user:alice";
  event.action = "auth.login";
  event.at_ms = 100;
  ASSERT_TRUE((*index)->append_audit(event).ok());
  for (const char* sql :
       {"UPDATE audit SET actor = 'user:mallory'", "DELETE FROM audit WHERE id = 1",
        "DELETE FROM audit", "TRUNCATE audit"}) {
    auto refused = server_.psql(database_, sql);
    EXPECT_FALSE(refused.ok()) << sql;
    EXPECT_NE(refused.err.find("append-only"), std::string::npos) << sql << ": " << refused.err;
  }
  auto appended = server_.psql(
      database_, "INSERT INTO audit (at_ms, actor, action) VALUES (200, 'system', 'x')");
  EXPECT_TRUE(appended.ok()) << appended.err;
  auto bad_details = server_.psql(
      database_,
      "INSERT INTO audit (at_ms, actor, action, details) VALUES (300, 'system', 'x', '[1]')");
  EXPECT_FALSE(bad_details.ok());
  auto rows = (*index)->list_audit({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].actor, "user:alice");
}

TEST_F(IndexPostgres, RefusesANewerSchema) {
  { ASSERT_TRUE(open(server_.url(database_)).ok()); }
  ASSERT_TRUE(server_.psql(database_, "INSERT INTO schema_migrations (version) VALUES (999)").ok());
  auto index = open(server_.url(database_));
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code, ErrorCode::kDatabase);
  EXPECT_NE(index.error().message.find("newer"), std::string::npos) << index.error().message;
}

TEST_F(IndexPostgres, ReconnectsAfterTheServerDroppedTheConnection) {
  auto opened = open(server_.url(database_));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  ASSERT_TRUE(index.count_instances().ok());
  auto killed = server_.psql("postgres",
                             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = '" +
                                 database_ + "'");
  ASSERT_TRUE(killed.ok()) << killed.err;
  // The first call on a dropped connection may fail, saying so; the next one reconnects.
  auto first = index.count_instances();
  if (!first.ok()) {
    EXPECT_NE(first.error().message.find("lost the connection"), std::string::npos)
        << first.error().message;
    EXPECT_EQ(first.error().message.find(server_.password()), std::string::npos);
  }
  auto second = index.count_instances();
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(*second, 0);
}

TEST_F(IndexPostgres, NodesStartingAtOnceMigrateOnce) {
  constexpr int kNodes = 4;
  std::vector<Result<std::unique_ptr<Index>>> opened;
  for (int i = 0; i < kNodes; ++i) opened.emplace_back(core::make_error(ErrorCode::kInternal, ""));
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kNodes; ++i) {
      threads.emplace_back([&, i] { opened[i] = open(server_.url(database_)); });
    }
  }
  for (const auto& index : opened) ASSERT_TRUE(index.ok()) << index.error().message;
  auto count = server_.psql(database_, "SELECT count(*) FROM schema_migrations");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count.out, std::to_string(*(*opened[0])->schema_version()) + "\n");
}

}  // namespace
}  // namespace gw::index
