// Users, API tokens and the audit trail of the SQLite index, what only SQLite shows: a second
// connection refused by the audit triggers, and migration 3 -> 4. Their behaviour through the
// Index interface runs on every backend in tests/e2e/index_contract_auth_test.cpp.
#include "index/auth.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "index/index.h"
#include "index/sqlite/migrations.h"
#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::index {
namespace {

using test::TempDir;

constexpr std::int64_t kNow = 1'700'000'000'000;

User make_user(const std::string& name, Role role = Role::kViewer) {
  User u;
  u.name = name;
  u.role = role;
  u.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  u.created_at_ms = kNow;
  u.updated_at_ms = kNow;
  return u;
}

AuditEvent make_event(std::string actor, std::string action, std::int64_t at_ms,
                      std::string target = "") {
  AuditEvent e;
  e.at_ms = at_ms;
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.peer_address = "127.0.0.1:5000";
  e.details = R"({"n":1})";
  return e;
}

// ---- on a file only ----

int exec(sqlite3* db, const char* sql, std::string* error = nullptr) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  if (error != nullptr) *error = message == nullptr ? "" : message;
  sqlite3_free(message);
  return rc;
}

TEST(AuditAppendOnly, UpdateAndDeleteAreRefusedOnAnyConnection) {
  TempDir dir("gw-auth-test");
  const auto path = dir.path() / "index.db";
  auto opened = SqliteIndex::open(path);
  ASSERT_TRUE(opened.ok());
  auto& index = **opened;
  ASSERT_TRUE(index.append_audit(make_event("user:alice", "auth.login", 100)).ok());
  ASSERT_TRUE(index.append_audit(make_event("user:bob", "auth.login", 200)).ok());

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"UPDATE audit SET actor = 'user:mallory'",
        "UPDATE audit SET outcome = 'denied' WHERE id = 1", "DELETE FROM audit WHERE id = 1",
        "DELETE FROM audit",
        "INSERT OR REPLACE INTO audit (id, at_ms, actor, action) VALUES (1, 1, 'x', 'y')"}) {
    std::string error;
    EXPECT_NE(exec(db, sql, &error), SQLITE_OK) << sql;
    EXPECT_NE(error.find("append-only"), std::string::npos) << sql << ": " << error;
  }
  // Appending is what the table is for.
  EXPECT_EQ(exec(db, "INSERT INTO audit (at_ms, actor, action) VALUES (300, 'system', 'x')"),
            SQLITE_OK);
  sqlite3_close(db);

  auto rows = index.list_audit({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[2].actor, "user:alice");
  EXPECT_EQ((*rows)[2].outcome, "ok");
}

TEST(AuthMigration, AVersion3DatabaseUpgradesKeepingItsData) {
  TempDir dir("gw-auth-test");
  const auto path = dir.path() / "index.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    for (const auto& m : sqlite_migrations()) {
      if (m.version > 3) break;
      ASSERT_EQ(exec(db, m.sql), SQLITE_OK) << m.version;
      const std::string pragma = "PRAGMA user_version = " + std::to_string(m.version);
      ASSERT_EQ(exec(db, pragma.c_str()), SQLITE_OK);
    }
    std::string error;
    ASSERT_EQ(exec(db, R"sql(
INSERT INTO patients (id, patient_id) VALUES (1, 'PID-OLD');
INSERT INTO studies (id, study_instance_uid, patient_pk) VALUES (1, '15.1', 1);
INSERT INTO series (id, series_instance_uid, study_pk) VALUES (1, '15.1.1', 1);
INSERT INTO instances (id, sop_instance_uid, series_pk, storage_path, size_bytes)
VALUES (1, '15.1.1.1', 1, 'storage/old.dcm', 10);
INSERT INTO outbox (instance_pk, destination, state) VALUES (1, 'PACS', 'dead');
)sql",
                   &error),
              SQLITE_OK)
        << error;
    sqlite3_close(db);
  }
  auto opened = SqliteIndex::open(path);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  EXPECT_EQ(*index.schema_version(), sqlite_migrations().back().version);
  auto old = index.find_instance("15.1.1.1");
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ((*old)->storage_path, "storage/old.dcm");
  auto row = index.find_outbox(1);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->state, OutboxState::kDead);
  EXPECT_EQ(*index.count_users(), 0);  // no default account
  EXPECT_TRUE(index.create_user(make_user("admin", Role::kAdmin), nullptr).ok());
}

// A rehash at login is written only over the hash it verified (the contract, on both backends,
// is in tests/e2e/index_contract_auth_test.cpp).
TEST(ReplacePasswordHash, AnAdminsChangeMadeMeanwhileStands) {
  auto opened = SqliteIndex::open(":memory:");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  const User read = make_user("alice", Role::kAdmin);
  auto id = index.create_user(read, nullptr);
  ASSERT_TRUE(id.ok()) << id.error().message;
  User disabled = read;
  disabled.id = *id;
  disabled.disabled = true;
  disabled.updated_at_ms = kNow + 1;
  ASSERT_TRUE(index.update_user(disabled, nullptr, false).ok());

  // Same hash (the admin only disabled her): the hash changes, nothing else.
  auto replaced = index.replace_password_hash(*id, read.password_hash, "$argon2id$new");
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_TRUE(*replaced);
  auto after = index.find_user_by_id(*id);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_TRUE((*after)->disabled);
  EXPECT_EQ((*after)->updated_at_ms, kNow + 1);
  EXPECT_EQ((*after)->password_hash, "$argon2id$new");
  // A stale hash changes nothing.
  replaced = index.replace_password_hash(*id, read.password_hash, "$argon2id$stale");
  ASSERT_TRUE(replaced.ok());
  EXPECT_FALSE(*replaced);
  EXPECT_EQ((*index.find_user_by_id(*id))->password_hash, "$argon2id$new");
}

}  // namespace
}  // namespace gw::index
