// The outbox of the SQLite index, what only SQLite has: the schema upgrade that added it and the
// query plans of the claim. Enqueue, claims, leases, state transitions and the operator's
// retry/delete run on every backend in tests/e2e/index_contract_outbox_test.cpp.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <utility>
#include <vector>

#include "index/index.h"
#include "index/sqlite/migrations.h"
#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::index {
namespace {

using test::TempDir;

constexpr std::int64_t kLease = 60'000;

/// A synthetic record (no patient data) in study 5.1, series 5.1.1, received at `received_at_ms`.
InstanceRecord make_record(const std::string& sop, std::vector<std::string> destinations,
                           std::int64_t received_at_ms = 1000) {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.size_bytes = 1234;
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.received_at_ms = received_at_ms;
  r.series_instance_uid = "5.1.1";
  r.study_instance_uid = "5.1";
  r.patient_id = "PID-TEST-1";
  r.destinations = std::move(destinations);
  return r;
}

/// The SQL of the migrations up to and including `version`.
void apply_migrations_up_to(sqlite3* db, int version) {
  for (const auto& m : sqlite_migrations()) {
    if (m.version > version) break;
    ASSERT_EQ(sqlite3_exec(db, m.sql, nullptr, nullptr, nullptr), SQLITE_OK) << m.version;
    const std::string pragma = "PRAGMA user_version = " + std::to_string(m.version);
    ASSERT_EQ(sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
}

TEST(OutboxMigration, AVersion2DatabaseUpgradesKeepingItsInstances) {
  TempDir dir("gw-outbox-test");
  const auto path = dir.path() / "index.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    apply_migrations_up_to(db, 2);
    const char* rows = R"sql(
INSERT INTO patients (id, patient_id) VALUES (1, 'PID-OLD');
INSERT INTO studies (id, study_instance_uid, patient_pk) VALUES (1, '15.1', 1);
INSERT INTO series (id, series_instance_uid, study_pk) VALUES (1, '15.1.1', 1);
INSERT INTO instances (sop_instance_uid, series_pk, storage_path, size_bytes)
VALUES ('15.1.1.1', 1, 'storage/old.dcm', 10);
)sql";
    ASSERT_EQ(sqlite3_exec(db, rows, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  auto opened = SqliteIndex::open(path);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  EXPECT_EQ(*index.schema_version(), sqlite_migrations().back().version);
  EXPECT_EQ(*index.count_instances(), 1);
  auto old = index.find_instance("15.1.1.1");
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ((*old)->storage_path, "storage/old.dcm");

  // A resend of the old instance is forwarded from the file it has.
  auto resend = make_record("15.1.1.1", {"PACS"});
  resend.series_instance_uid = "15.1.1";
  resend.study_instance_uid = "15.1";
  auto inserted = index.insert_instance(resend, DuplicatePolicy::kKeepFirst);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  auto claimed = index.claim_outbox("PACS", 10, "node-a", 5000, kLease);
  ASSERT_TRUE(claimed.ok()) << claimed.error().message;
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].storage_path, "storage/old.dcm");
  EXPECT_EQ((*claimed)[0].study_instance_uid, "15.1");
}

std::string query_plan(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    plan += "\n";
  }
  sqlite3_finalize(stmt);
  return plan;
}

/// The claim walks outbox_queue in id order (a backlog is never sorted) and the next due time is
/// one index probe: both run with mu_ held, so ingest would wait for a slow one.
TEST(OutboxQueryPlan, ClaimAndNextDueUseTheirIndexes) {
  TempDir dir("gw-outbox-test");
  const auto path = dir.path() / "plan.db";
  { ASSERT_TRUE(SqliteIndex::open(path).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const auto claim = query_plan(db, R"sql(
SELECT id FROM outbox WHERE destination = ?1 AND state = 'pending' AND next_attempt_at_ms <= ?2
ORDER BY id LIMIT 10)sql");
  EXPECT_NE(claim.find("COVERING INDEX outbox_queue"), std::string::npos) << claim;
  EXPECT_EQ(claim.find("TEMP B-TREE"), std::string::npos) << claim;
  const auto due = query_plan(
      db,
      "SELECT min(next_attempt_at_ms) FROM outbox WHERE destination = ?1 AND state = 'pending'");
  EXPECT_NE(due.find("outbox_pending_due"), std::string::npos) << due;
  sqlite3_close(db);
}

}  // namespace
}  // namespace gw::index
