#include "index/sqlite/sqlite_index.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <utility>

#include "index/index.h"
#include "index/sqlite/migrations.h"
#include "support/temp_dir.h"

namespace gw::index {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;

using test::TempDir;

/// A record with every field set to a distinct value (no patient data: all synthetic).
InstanceRecord make_record(const std::string& sop, const std::string& series,
                           const std::string& study, std::int64_t received_at_ms = 1000) {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.instance_number = "7";
  r.size_bytes = 1234;
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.digest = "xxh128:99aa06d3014798d86001c324468d497f";
  r.received_at_ms = received_at_ms;
  r.calling_ae = "CT1";
  r.called_ae = "DICOM_GW";
  r.peer_address = "127.0.0.1:40000";
  r.series_instance_uid = series;
  r.modality = "CT";
  r.series_description = "Axial 5mm";
  r.series_number = "3";
  r.body_part_examined = "CHEST";
  r.study_instance_uid = study;
  r.study_date = "20240115";
  r.study_time = "101500";
  r.study_description = "CT Chest";
  r.accession_number = "ACC-" + study;
  r.study_id = "S1";
  r.referring_physician = "REF^DOCTOR";
  r.patient_id = "PID-TEST-1";
  r.patient_name = "TEST^PATIENT";
  r.patient_birth_date = "19700101";
  r.patient_sex = "O";
  r.station_name = "STATION1";
  r.institution_name = "Test Institution";
  return r;
}

/// Runs every test against an in-memory database and a database file.
class SqliteIndexTest : public ::testing::TestWithParam<bool> {
 protected:
  bool file_backed() const { return GetParam(); }
  fs::path db_path() const { return file_backed() ? dir_.path() / "index.db" : ":memory:"; }

  void SetUp() override { index_ = open(); }

  std::unique_ptr<SqliteIndex> open() {
    auto index = SqliteIndex::open(db_path());
    EXPECT_TRUE(index.ok()) << (index.ok() ? "" : index.error().message);
    return index.ok() ? std::move(index).value() : nullptr;
  }

  void insert(const InstanceRecord& r) {
    auto result = index_->insert_instance(r, DuplicatePolicy::kKeepFirst);
    ASSERT_TRUE(result.ok()) << result.error().message;
    ASSERT_EQ(result->outcome, InsertOutcome::kInserted);
  }

  TempDir dir_{"gw-index-test"};
  std::unique_ptr<SqliteIndex> index_;
};

INSTANTIATE_TEST_SUITE_P(Backends, SqliteIndexTest, ::testing::Values(false, true),
                         [](const auto& param_info) {
                           return param_info.param ? "File" : "Memory";
                         });

TEST_P(SqliteIndexTest, MigratesFromScratch) {
  ASSERT_NE(index_, nullptr);
  auto version = index_->schema_version();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, sqlite_migrations().back().version);
  EXPECT_EQ(*index_->count_instances(), 0);
  // Versions are ascending without gaps.
  int expected = 1;
  for (const auto& m : sqlite_migrations()) EXPECT_EQ(m.version, expected++);
}

/// Reopening only means something for a database file (an in-memory one ends with its
/// connection), so this suite runs on the file backend alone.
class SqliteFileIndexTest : public SqliteIndexTest {};
INSTANTIATE_TEST_SUITE_P(File, SqliteFileIndexTest, ::testing::Values(true));

TEST_P(SqliteFileIndexTest, DataSurvivesReopen) {
  auto r = make_record("8.1", "8.100", "8.1000");
  insert(r);
  index_.reset();
  index_ = open();
  ASSERT_NE(index_, nullptr);
  EXPECT_EQ(*index_->schema_version(), sqlite_migrations().back().version);
  EXPECT_EQ(**index_->find_instance("8.1"), r);
  EXPECT_EQ(*index_->count_instances(), 1);
}

TEST(SqliteIndexOpen, RefusesANewerSchema) {
  TempDir dir("gw-index-test");
  const auto path = dir.path() / "index.db";
  { ASSERT_TRUE(SqliteIndex::open(path).ok()); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto index = SqliteIndex::open(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code, ErrorCode::kDatabase);
}

TEST(SqliteIndexOpen, UsesWalForFiles) {
  TempDir dir("gw-index-test");
  const auto path = dir.path() / "index.db";
  { ASSERT_TRUE(SqliteIndex::open(path).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SqliteIndexOpen, MissingDirectoryIsADatabaseError) {
  TempDir dir("gw-index-test");
  auto index = SqliteIndex::open(dir.path() / "missing" / "index.db");
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().code, ErrorCode::kDatabase);
}

TEST(OpenIndex, UrlDispatch) {
  TempDir dir("gw-index-test");
  ASSERT_TRUE(open_index(":memory:", dir.path()).ok());
  ASSERT_TRUE(open_index("sqlite://:memory:", dir.path()).ok());

  ASSERT_TRUE(open_index("", dir.path()).ok());
  EXPECT_TRUE(fs::exists(dir.path() / "index.db"));
  ASSERT_TRUE(open_index("sqlite://", dir.path()).ok());

  const auto abs = dir.path() / "abs.db";
  ASSERT_TRUE(open_index("sqlite://" + abs.string(), "/nonexistent").ok());
  EXPECT_TRUE(fs::exists(abs));

  // PostgreSQL (tests/e2e/index_postgres_test.cpp): nothing listens on port 1.
  auto pg = open_index("postgresql://user:secret@127.0.0.1:1/gw", dir.path());
  ASSERT_FALSE(pg.ok());
  EXPECT_EQ(pg.error().code, ErrorCode::kDatabase);
  EXPECT_NE(pg.error().message.find("127.0.0.1:1"), std::string::npos) << pg.error().message;
  EXPECT_EQ(pg.error().message.find("secret"), std::string::npos);

  auto other = open_index("mysql://user:secret@db/gw", dir.path());
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(other.error().message.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace gw::index
