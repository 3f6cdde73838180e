// `dicom-gw user add|passwd|token|list|revoke-token|delete` on an in-memory index, and through a
// configuration file the way the binary runs them (including what ends up in the file).
#include "app/user_commands.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli.h"
#include "crypto/password.h"
#include "crypto/token.h"
#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::app {
namespace {

using index::AuditEvent;
using index::Role;

constexpr std::int64_t kNow = 1'700'000'000'000;
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;
constexpr const char* kPassword = "purple-elephant-42";

class UserCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = index::SqliteIndex::open(":memory:");
    ASSERT_TRUE(opened.ok());
    index_ = std::move(opened).value();
  }

  void clear() {
    out_.str({});
    err_.str({});
  }

  /// A user without the cost of argon2id (the tests of `add` pay it).
  std::int64_t quick_user(const std::string& name, Role role = Role::kViewer,
                          bool disabled = false) {
    index::User u;
    u.name = name;
    u.role = role;
    u.disabled = disabled;
    u.created_at_ms = kNow;
    auto id = index_->create_user(u, nullptr);
    EXPECT_TRUE(id.ok());
    return id.ok() ? *id : 0;
  }

  /// `user token` for `name`; the printed token ("" on failure).
  std::string token_for(const std::string& name, const std::string& ttl = "90d") {
    clear();
    UserTokenArgs args;
    args.name = name;
    args.ttl = ttl;
    if (user_token(*index_, args, kNow, out_, err_) != 0) return {};
    std::string token = out_.str();
    if (!token.empty() && token.back() == '\n') token.pop_back();
    return token;
  }

  std::vector<AuditEvent> audit() {
    auto rows = index_->list_audit({});
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<AuditEvent>{};
  }

  std::unique_ptr<index::SqliteIndex> index_;
  std::ostringstream out_, err_;
};

TEST_F(UserCommandsTest, AddStoresAnArgon2idHashAndAuditsIt) {
  UserAddArgs args;
  args.name = "alice";
  args.role = "admin";
  ASSERT_EQ(user_add(*index_, args, kPassword, kNow, out_, err_), 0) << err_.str();
  EXPECT_NE(out_.str().find("created user alice (admin"), std::string::npos) << out_.str();

  auto user = index_->find_user("alice");
  ASSERT_TRUE(user.ok() && user->has_value());
  EXPECT_EQ((*user)->role, Role::kAdmin);
  EXPECT_FALSE((*user)->disabled);
  EXPECT_EQ((*user)->created_at_ms, kNow);
  EXPECT_TRUE((*user)->password_hash.starts_with("$argon2id$"));
  EXPECT_TRUE(crypto::verify_password(kPassword, (*user)->password_hash));

  auto rows = audit();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].actor, "cli");
  EXPECT_EQ(rows[0].action, "user.create");
  EXPECT_EQ(rows[0].target, "user:alice");
  EXPECT_EQ(rows[0].at_ms, kNow);
  auto details = nlohmann::json::parse(rows[0].details);
  EXPECT_EQ(details["role"], "admin");
  EXPECT_TRUE(details.contains("os_user"));
  EXPECT_EQ(rows[0].details.find(kPassword), std::string::npos);
}

TEST_F(UserCommandsTest, AddRefusesATakenNameBadInputAndWeakPasswords) {
  quick_user("alice");
  UserAddArgs args;
  args.name = "Alice";  // names are unique whatever their case
  args.role = "viewer";
  EXPECT_EQ(user_add(*index_, args, kPassword, kNow, out_, err_), 1);
  EXPECT_NE(err_.str().find("already exists"), std::string::npos) << err_.str();

  args.name = "bob";
  args.role = "root";
  EXPECT_EQ(user_add(*index_, args, kPassword, kNow, out_, err_), 2);
  args.role = "viewer";
  args.name = "bob smith";
  EXPECT_EQ(user_add(*index_, args, kPassword, kNow, out_, err_), 2);
  args.name = "bob";
  EXPECT_EQ(user_add(*index_, args, "short", kNow, out_, err_), 2);
  EXPECT_EQ(user_add(*index_, args, "", kNow, out_, err_), 2);
  EXPECT_EQ(
      user_add(*index_, args, std::string(crypto::kMaxPasswordBytes + 1, 'x'), kNow, out_, err_),
      2);
  EXPECT_FALSE(index_->find_user("bob")->has_value());
  EXPECT_TRUE(audit().empty());
}

TEST_F(UserCommandsTest, PasswdSetsANewHashRevokesTokensAndAuditsWithoutThePassword) {
  const auto id = quick_user("alice", Role::kAdmin, /*disabled=*/true);
  const std::string token = token_for("alice");
  EXPECT_TRUE(token.empty()) << "a disabled user gets no token";
  UserPasswdArgs args;
  args.name = "alice";
  ASSERT_EQ(user_passwd(*index_, args, kPassword, kNow + 5, out_, err_), 0) << err_.str();
  EXPECT_NE(out_.str().find("still disabled"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("tokens were revoked"), std::string::npos) << out_.str();
  auto user = index_->find_user("alice");
  ASSERT_TRUE(user.ok() && user->has_value());
  EXPECT_TRUE(crypto::verify_password(kPassword, (*user)->password_hash));
  EXPECT_TRUE((*user)->disabled);
  EXPECT_EQ((*user)->updated_at_ms, kNow + 5);

  clear();
  args.enable = true;
  ASSERT_EQ(user_passwd(*index_, args, "another-long-secret", kNow + 9, out_, err_), 0);
  EXPECT_NE(out_.str().find("enabled again"), std::string::npos) << out_.str();
  user = index_->find_user("alice");
  ASSERT_TRUE(user.ok() && user->has_value());
  EXPECT_FALSE((*user)->disabled);
  EXPECT_EQ((*user)->id, id);
  EXPECT_TRUE(crypto::verify_password("another-long-secret", (*user)->password_hash));
  EXPECT_FALSE(crypto::verify_password(kPassword, (*user)->password_hash));

  auto rows = audit();
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_EQ(row.actor, "cli");
    EXPECT_EQ(row.action, "user.update");
    EXPECT_EQ(row.target, "user:alice");
    EXPECT_EQ(row.details.find(kPassword), std::string::npos) << row.details;
    EXPECT_EQ(row.details.find("another-long-secret"), std::string::npos) << row.details;
    EXPECT_EQ(nlohmann::json::parse(row.details).value("password", ""), "changed");
  }

  // A password reset shuts out whoever held the old credentials' tokens.
  ASSERT_FALSE(token_for("alice").empty());
  clear();
  ASSERT_EQ(user_passwd(*index_, args, "a third long secret", kNow + 12, out_, err_), 0);
  auto tokens = index_->list_tokens(id);
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].revoked_at_ms, kNow + 12);
}

TEST_F(UserCommandsTest, PasswdRefusesUnknownUsersAndWeakPasswords) {
  quick_user("bob");
  UserPasswdArgs args;
  args.name = "nobody";
  EXPECT_EQ(user_passwd(*index_, args, kPassword, kNow, out_, err_), 1);
  EXPECT_NE(err_.str().find("no user nobody"), std::string::npos) << err_.str();
  args.name = "bob smith";
  EXPECT_EQ(user_passwd(*index_, args, kPassword, kNow, out_, err_), 2);
  args.name = "bob";
  EXPECT_EQ(user_passwd(*index_, args, "short", kNow, out_, err_), 2);
  EXPECT_EQ(
      user_passwd(*index_, args, std::string(crypto::kMaxPasswordBytes + 1, 'x'), kNow, out_, err_),
      2);
  EXPECT_TRUE(audit().empty());
}

TEST_F(UserCommandsTest, TokenPrintsOnlyTheTokenAndStoresItsHash) {
  quick_user("alice", Role::kOperator);
  const std::string token = token_for("alice");
  ASSERT_FALSE(token.empty()) << err_.str();
  EXPECT_EQ(out_.str(), token + "\n");  // nothing else on stdout: `$(dicom-gw user token ...)`
  EXPECT_TRUE(crypto::looks_like_api_token(token)) << token;
  EXPECT_EQ(err_.str().find(token), std::string::npos);

  auto found = index_->find_token(crypto::token_hash(token));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->user.name, "alice");
  EXPECT_EQ((*found)->token.created_at_ms, kNow);
  EXPECT_EQ((*found)->token.expires_at_ms, kNow + 90 * kDayMs);  // the default TTL
  EXPECT_EQ((*found)->token.description, "created by dicom-gw user token");

  auto rows = audit();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].action, "token.create");
  EXPECT_EQ(rows[0].target, "token:" + std::to_string((*found)->token.id));
  auto details = nlohmann::json::parse(rows[0].details);
  EXPECT_EQ(details["user"], "alice");
  EXPECT_EQ(details["expires_at_ms"], kNow + 90 * kDayMs);
  EXPECT_EQ(rows[0].details.find(token.substr(4)), std::string::npos);

  EXPECT_NE(token_for("alice"), token);  // a new one every time
}

TEST_F(UserCommandsTest, TokenLifetimes) {
  quick_user("alice");
  const std::string twelve_hours = token_for("alice", "12h");
  ASSERT_FALSE(twelve_hours.empty()) << err_.str();
  EXPECT_EQ((*index_->find_token(crypto::token_hash(twelve_hours)))->token.expires_at_ms,
            kNow + std::int64_t{12} * 3600 * 1000);
  EXPECT_EQ(err_.str().find("warning"), std::string::npos);

  const std::string forever = token_for("alice", "0");
  ASSERT_FALSE(forever.empty()) << err_.str();
  EXPECT_EQ((*index_->find_token(crypto::token_hash(forever)))->token.expires_at_ms, 0);
  EXPECT_NE(err_.str().find("warning: this token never expires"), std::string::npos) << err_.str();

  for (const char* bad : {"90", "abc", "-1d", "1y", "", "d", "3651d"}) {
    UserTokenArgs args;
    args.name = "alice";
    args.ttl = bad;
    EXPECT_EQ(user_token(*index_, args, kNow, out_, err_), 2) << bad;
  }
}

TEST_F(UserCommandsTest, TokenNeedsAnExistingEnabledUser) {
  quick_user("carol", Role::kViewer, /*disabled=*/true);
  EXPECT_TRUE(token_for("nobody").empty());
  EXPECT_NE(err_.str().find("no user nobody"), std::string::npos);
  UserTokenArgs args;
  args.name = "nobody";
  EXPECT_EQ(user_token(*index_, args, kNow, out_, err_), 1);
  args.name = "carol";
  EXPECT_EQ(user_token(*index_, args, kNow, out_, err_), 1);
  EXPECT_TRUE(index_->list_tokens(0)->empty());
}

TEST(UserCommandsParse, Ttl) {
  EXPECT_EQ(parse_ttl("0"), 0);
  EXPECT_EQ(parse_ttl("0d"), 0);
  EXPECT_EQ(parse_ttl("45s"), 45);
  EXPECT_EQ(parse_ttl("30m"), 1800);
  EXPECT_EQ(parse_ttl("12h"), 43200);
  EXPECT_EQ(parse_ttl("90d"), 90 * 86400);
  EXPECT_EQ(parse_ttl("3650d"), 3650LL * 86400);
  EXPECT_FALSE(parse_ttl("3651d"));
  EXPECT_FALSE(parse_ttl("99999999999999999999d"));
  EXPECT_FALSE(parse_ttl("90"));
  EXPECT_FALSE(parse_ttl("+5d"));
  EXPECT_FALSE(parse_ttl("5 d"));
  EXPECT_FALSE(parse_ttl("5D"));
}

TEST(UserCommandsParse, PasswordLine) {
  auto read = [](const std::string& text) {
    std::istringstream in(text);
    return read_password_line(in);
  };
  EXPECT_EQ(*read("secret one\n"), "secret one");
  EXPECT_EQ(*read("secret\r\n"), "secret");
  EXPECT_EQ(*read("no newline"), "no newline");
  EXPECT_EQ(*read("first\nsecond\n"), "first");
  EXPECT_EQ(*read("\n"), "");
  EXPECT_FALSE(read("").ok());
}

/// The words of the line of `text` that starts with `first`, without the date and time.
std::vector<std::string> words_of_line(const std::string& text, const std::string& first) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(first + " ")) continue;
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) {
      if (w.find_first_of("-:") == std::string::npos) words.push_back(w);
    }
    return words;
  }
  return {};
}

TEST_F(UserCommandsTest, ListUsersAndTokens) {
  const std::int64_t alice = quick_user("alice", Role::kAdmin);
  quick_user("bob", Role::kViewer, /*disabled=*/true);
  const std::int64_t gone = quick_user("gone");
  ASSERT_FALSE(token_for("alice").empty());
  ASSERT_FALSE(token_for("alice", "1m").empty());
  ASSERT_FALSE(token_for("gone").empty());
  index::ApiToken expired;
  expired.user_id = alice;
  expired.token_hash = crypto::token_hash("expired");
  expired.expires_at_ms = kNow - 1;
  ASSERT_TRUE(index_->create_token(expired, nullptr).ok());
  ASSERT_TRUE(index_->delete_user(gone, nullptr).ok());

  clear();
  UserListArgs args;
  ASSERT_EQ(user_list(*index_, args, kNow, out_, err_), 0) << err_.str();
  const std::string table = out_.str();
  EXPECT_TRUE(table.starts_with("NAME   ROLE    DISABLED  CREATED")) << table;
  EXPECT_EQ(words_of_line(table, "alice"), (std::vector<std::string>{"alice", "admin", "no", "2"}))
      << table;
  EXPECT_EQ(words_of_line(table, "bob"), (std::vector<std::string>{"bob", "viewer", "yes", "0"}))
      << table;
  EXPECT_EQ(table.find("gone"), std::string::npos) << table;
  EXPECT_EQ(table.find("argon2"), std::string::npos);

  clear();
  args.json = true;
  ASSERT_EQ(user_list(*index_, args, kNow, out_, err_), 0);
  auto users = nlohmann::json::parse(out_.str());
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0]["name"], "alice");
  EXPECT_EQ(users[0]["role"], "admin");
  EXPECT_EQ(users[0]["active_tokens"], 2);  // not the expired one
  EXPECT_EQ(users[1]["disabled"], true);
  EXPECT_EQ(users[1]["active_tokens"], 0);
  EXPECT_FALSE(users[0].contains("password_hash"));

  clear();
  args.tokens = true;
  ASSERT_EQ(user_list(*index_, args, kNow + 120'000, out_, err_), 0);
  auto tokens = nlohmann::json::parse(out_.str());
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[0]["state"], "expired");  // newest first
  EXPECT_EQ(tokens[1]["user"], "(deleted user " + std::to_string(gone) + ")");
  EXPECT_EQ(tokens[1]["state"], "revoked");
  EXPECT_EQ(tokens[2]["state"], "expired");  // the 1-minute one, two minutes later
  EXPECT_EQ(tokens[3]["state"], "active");
  EXPECT_FALSE(tokens[0].contains("token_hash"));

  clear();
  args.json = false;
  ASSERT_EQ(user_list(*index_, args, kNow, out_, err_), 0);
  EXPECT_NE(out_.str().find("ID  USER"), std::string::npos) << out_.str();
}

TEST_F(UserCommandsTest, RevokeToken) {
  quick_user("alice");
  const std::string token = token_for("alice");
  const std::int64_t id = (*index_->find_token(crypto::token_hash(token)))->token.id;

  clear();
  UserRevokeTokenArgs args;
  args.id = id;
  ASSERT_EQ(user_revoke_token(*index_, args, kNow + 5, out_, err_), 0) << err_.str();
  EXPECT_EQ((*index_->find_token(crypto::token_hash(token)))->token.revoked_at_ms, kNow + 5);
  auto rows = audit();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].action, "token.revoke");
  EXPECT_EQ(rows[0].target, "token:" + std::to_string(id));

  clear();
  ASSERT_EQ(user_revoke_token(*index_, args, kNow + 9, out_, err_), 0);
  EXPECT_NE(out_.str().find("already revoked"), std::string::npos);
  EXPECT_EQ(audit().size(), 2u);  // nothing changed, nothing audited

  args.id = 999;
  EXPECT_EQ(user_revoke_token(*index_, args, kNow, out_, err_), 1);
  args.id = 0;
  EXPECT_EQ(user_revoke_token(*index_, args, kNow, out_, err_), 2);
}

TEST_F(UserCommandsTest, DeleteRevokesTheUsersTokens) {
  const std::int64_t alice = quick_user("alice");
  const std::string token = token_for("alice");
  clear();
  UserDeleteArgs args;
  args.name = "alice";
  ASSERT_EQ(user_delete(*index_, args, kNow + 3, out_, err_), 0) << err_.str();
  EXPECT_NE(out_.str().find("deleted user alice; 1 token(s) revoked"), std::string::npos)
      << out_.str();
  EXPECT_FALSE(index_->find_user("alice")->has_value());
  EXPECT_FALSE(index_->find_token(crypto::token_hash(token))->has_value());
  auto kept = index_->list_tokens(alice);
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].revoked_at_ms, kNow + 3);
  auto rows = audit();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].action, "user.delete");
  EXPECT_EQ(rows[0].target, "user:alice");

  EXPECT_EQ(user_delete(*index_, args, kNow, out_, err_), 1);
  args.name = "";
  EXPECT_EQ(user_delete(*index_, args, kNow, out_, err_), 2);
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The binary's path: config file, password on standard input, token on standard output; then
/// the database files hold the hashes and neither secret.
TEST(UserCommandsFile, TheDatabaseNeverHoldsThePasswordOrTheToken) {
  test::TempDir dir("gw-user-test");
  const auto config = dir / "config.yaml";
  const auto data = dir.subdir("data");
  std::ofstream(config) << "data_dir: " << data.string()
                        << "\nlisteners:\n  - {name: plain, port: 11112}\n";
  // Held open so that the commands' connections are not the last: their commits stay in the
  // WAL file (the last close would checkpoint it into index.db and remove it).
  auto watcher = index::open_index("", data);
  ASSERT_TRUE(watcher.ok()) << watcher.error().message;

  UserAddArgs add;
  add.config = config;
  add.name = "admin";
  add.role = "admin";
  std::istringstream password(std::string(kPassword) + "\n");
  testing::internal::CaptureStdout();
  ASSERT_EQ(run_user_add(add, password, /*terminal=*/false), 0);
  testing::internal::GetCapturedStdout();

  UserTokenArgs token_args;
  token_args.config = config;
  token_args.name = "admin";
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  ASSERT_EQ(run_user_token(token_args), 0);
  std::string token = testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  ASSERT_TRUE(token.ends_with("\n"));
  token.pop_back();
  ASSERT_TRUE(crypto::looks_like_api_token(token)) << token;

  std::string bytes;
  for (const char* suffix : {"", "-wal", "-journal"}) {
    bytes += file_bytes(data / (std::string("index.db") + suffix));
  }
  // What was written is there (the scan reads the right files)...
  EXPECT_NE(bytes.find(crypto::token_hash(token)), std::string::npos);
  EXPECT_NE(bytes.find("$argon2id$"), std::string::npos);
  // ... and the secrets are not, whole or as the token's random part.
  EXPECT_EQ(bytes.find(kPassword), std::string::npos);
  EXPECT_EQ(bytes.find(token), std::string::npos);
  EXPECT_EQ(bytes.find(token.substr(4)), std::string::npos);

  auto owner = (*watcher)->find_token(crypto::token_hash(token));
  ASSERT_TRUE(owner.ok() && owner->has_value());
  EXPECT_TRUE(crypto::verify_password(kPassword, (*owner)->user.password_hash));
}

TEST(UserCommandsFile, ThroughTheCommandLine) {
  test::TempDir dir("gw-user-test");
  const auto config = dir / "config.yaml";
  const auto data = dir.subdir("data");
  std::ofstream(config) << "data_dir: " << data.string()
                        << "\nlisteners:\n  - {name: plain, port: 11112}\n";
  {
    auto index = index::open_index("", data);
    ASSERT_TRUE(index.ok());
    index::User u;
    u.name = "ops";
    u.role = Role::kOperator;
    ASSERT_TRUE((*index)->create_user(u, nullptr).ok());
  }
  auto run = [](std::vector<std::string> words) {
    std::vector<char*> argv;
    argv.reserve(words.size());
    for (auto& w : words) argv.push_back(w.data());
    return run_cli(static_cast<int>(argv.size()), argv.data());
  };
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  EXPECT_EQ(run({"dicom-gw", "user", "token", "--config", config.string(), "--name", "ops", "--ttl",
                 "1d", "--description", "monitoring"}),
            0);
  const std::string token = testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(crypto::looks_like_api_token(token.substr(0, token.size() - 1))) << token;

  testing::internal::CaptureStdout();
  EXPECT_EQ(run({"dicom-gw", "user", "list", "--config", config.string(), "--tokens"}), 0);
  const std::string listing = testing::internal::GetCapturedStdout();
  EXPECT_NE(listing.find("monitoring"), std::string::npos) << listing;

  testing::internal::CaptureStderr();
  EXPECT_EQ(run({"dicom-gw", "user", "add", "--config", config.string(), "--name", "x"}), 2);
  EXPECT_EQ(run({"dicom-gw", "user", "token", "--config", config.string(), "--name", "ops", "--ttl",
                 "forever"}),
            2);
  EXPECT_EQ(run({"dicom-gw", "user", "list", "--config", (dir / "missing.yaml").string()}), 2);
  EXPECT_EQ(run({"dicom-gw", "user", "passwd", "--config", config.string(), "--name", "nobody"}),
            1);
  testing::internal::GetCapturedStderr();
}

}  // namespace
}  // namespace gw::app
