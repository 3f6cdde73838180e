// Unflushed inserts and their unconfirmed markers (ADR 012) on the SQLite backend.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <utility>
#include <vector>

#include "index/index.h"
#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::index {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using test::TempDir;

InstanceRecord record(const std::string& sop, const std::string& series, const std::string& study,
                      const std::string& patient = "PID-1") {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.series_instance_uid = series;
  r.study_instance_uid = study;
  r.patient_id = patient;
  r.patient_name = "TEST^" + patient;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.size_bytes = static_cast<std::int64_t>(100 + sop.size());
  r.digest = "xxh128:" + std::string(32, 'a');
  r.received_at_ms = 1000;
  return r;
}

class UnflushedTest : public ::testing::Test {
 protected:
  void SetUp() override { index_ = open(); }

  std::int64_t count_rows(const char* sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(
        sqlite3_open_v2((dir_.path() / "index.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
        SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  }

  std::size_t queued(const std::string& destination) {
    OutboxQuery query;
    query.destination = destination;
    auto rows = index_->list_outbox(query);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? rows->size() : 0;
  }

  std::unique_ptr<SqliteIndex> open() {
    auto index = SqliteIndex::open(dir_.path() / "index.db");
    EXPECT_TRUE(index.ok()) << (index.ok() ? "" : index.error().message);
    return index.ok() ? std::move(index).value() : nullptr;
  }

  /// Inserts unflushed; every record must be inserted or kept.
  std::vector<InsertResult> insert(const std::vector<InstanceRecord>& records,
                                   DuplicatePolicy policy = DuplicatePolicy::kKeepFirst) {
    std::vector<InsertResult> out;
    for (auto& r : index_->insert_instances_unflushed(records, policy)) {
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (r.ok()) out.push_back(*r);
    }
    return out;
  }

  std::vector<std::string> unconfirmed_paths(Index& index) {
    auto listed = index.list_unconfirmed();
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    std::vector<std::string> out;
    if (listed.ok()) {
      for (const auto& u : *listed) out.push_back(u.storage_path);
    }
    return out;
  }

  TempDir dir_{"gw-unflushed-test"};
  std::unique_ptr<SqliteIndex> index_;
};

TEST_F(UnflushedTest, TheIndexNamesItsFile) {
  ASSERT_TRUE(index_->local_file().has_value());
  EXPECT_EQ(*index_->local_file(), dir_.path() / "index.db");
}

TEST_F(UnflushedTest, NewRowsAreUnconfirmedWithWhatTheirCheckNeeds) {
  const auto a = record("1.1", "2.1", "3.1");
  const auto b = record("1.2", "2.1", "3.1");
  auto results = insert({a, b});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].outcome, InsertOutcome::kInserted);

  auto listed = index_->list_unconfirmed();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_NE((*listed)[0].instance_id, 0);
  EXPECT_NE((*listed)[0].instance_id, (*listed)[1].instance_id);
  EXPECT_EQ((*listed)[0].storage_path, a.storage_path);
  EXPECT_EQ((*listed)[0].size_bytes, a.size_bytes);
  EXPECT_EQ((*listed)[0].digest, a.digest);
  EXPECT_LT((*listed)[0].marker_id, (*listed)[1].marker_id);
  EXPECT_EQ(results[0].marker, (*listed)[0].marker_id);
  EXPECT_EQ(results[1].marker, (*listed)[1].marker_id);
  // The rows are ordinary rows meanwhile.
  auto found = index_->find_instance("1.2");
  ASSERT_TRUE(found.ok() && found->has_value());
}

TEST_F(UnflushedTest, MarkersGoOnceTheyAndEveryOlderOneAreConfirmed) {
  const auto first = insert({record("1.1", "2.1", "3.1")}).at(0).marker;
  const auto second = insert({record("1.2", "2.1", "3.1")}).at(0).marker;
  ASSERT_LT(first, second);
  // The second flush returned first: the first row's flush is still out, so both stay listed.
  index_->confirm_unflushed(second);
  EXPECT_EQ(unconfirmed_paths(*index_).size(), 2u);
  insert({record("1.3", "2.1", "3.1")});  // a write: nothing is cleared past an open marker
  EXPECT_EQ(unconfirmed_paths(*open()).size(), 3u);

  index_->confirm_unflushed(first);
  // Confirmed markers go with the next write transaction; before it, a new process (which knows
  // of no confirmation) would check them all.
  EXPECT_EQ(unconfirmed_paths(*open()).size(), 3u);
  const auto fourth = insert({record("1.4", "2.1", "3.1")}).at(0).marker;
  EXPECT_EQ(unconfirmed_paths(*open()),
            (std::vector<std::string>{"storage/ab/1.3.dcm", "storage/ab/1.4.dcm"}));
  // An ordinary (flushed) write clears confirmed markers too.
  index_->confirm_unflushed(fourth);
  index_->confirm_unflushed(fourth - 1);
  ASSERT_TRUE(
      index_->insert_instance(record("1.5", "2.1", "3.1"), DuplicatePolicy::kKeepFirst).ok());
  EXPECT_TRUE(unconfirmed_paths(*open()).empty());
  // Marker ids never go back, even once the table was emptied (AUTOINCREMENT).
  EXPECT_GT(insert({record("1.6", "2.1", "3.1")}).at(0).marker, fourth);
}

TEST_F(UnflushedTest, ARecordThatFailsLeavesNoMarker) {
  auto invalid = record("1.2", "2.1", "3.1");
  invalid.storage_path.clear();
  auto results = index_->insert_instances_unflushed({record("1.1", "2.1", "3.1"), invalid},
                                                    DuplicatePolicy::kKeepFirst);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(unconfirmed_paths(*open()), std::vector<std::string>{"storage/ab/1.1.dcm"});
}

/// A kept duplicate of a row whose flush is not confirmed is refused (kConflict) through
/// `insert_again`, and kept once the row's marker is confirmed (its result in `*kept_out`).
template <class Insert>
void expect_kept_duplicate_waits_for_its_row(Index& index, std::int64_t marker,
                                             const InstanceRecord& again, Insert insert_again,
                                             InsertResult* kept_out = nullptr) {
  auto refused = insert_again(again);
  ASSERT_EQ(refused.size(), 1u);
  ASSERT_FALSE(refused[0].ok());
  EXPECT_EQ(refused[0].error().code, ErrorCode::kConflict);
  index.confirm_unflushed(marker);
  auto kept = insert_again(again);
  ASSERT_EQ(kept.size(), 1u);
  ASSERT_TRUE(kept[0].ok());
  EXPECT_EQ(kept[0]->outcome, InsertOutcome::kDuplicateKept);
  if (kept_out != nullptr) *kept_out = *kept[0];
}

TEST_F(UnflushedTest, AKeptDuplicateWaitsForTheRowItIsKeptFor) {
  const auto marker = insert({record("1.1", "2.1", "3.1")}).at(0).marker;
  auto again = record("1.1", "2.1", "3.1");
  again.storage_path = "storage/cd/other.dcm";
  // While the first copy's flush is out, "kept" would rest on a flush nobody has confirmed.
  expect_kept_duplicate_waits_for_its_row(*index_, marker, again, [&](const InstanceRecord& r) {
    return index_->insert_instances_unflushed({r}, DuplicatePolicy::kKeepFirst);
  });
}

// A pipelined instance flushes its file apart (ADR 013) and commits flushed: its kept
// duplicate of an unconfirmed row would rest on that row's flush just the same.
TEST_F(UnflushedTest, AFlushedKeptDuplicateWaitsForTheRowItIsKeptFor) {
  const auto marker = insert({record("1.1", "2.1", "3.1")}).at(0).marker;
  auto again = record("1.1", "2.1", "3.1");
  again.storage_path = "storage/cd/other.dcm";
  InsertResult kept;
  expect_kept_duplicate_waits_for_its_row(
      *index_, marker, again,
      [&](const InstanceRecord& r) {
        return index_->insert_instances({r}, DuplicatePolicy::kKeepFirst);
      },
      &kept);
  EXPECT_EQ(kept.marker, 0);
}

// Two associations send the same instance and both land in one group: the second is not kept
// on the first one's flush, which is not done either (its marker is not committed yet).
TEST_F(UnflushedTest, ADuplicateInTheSameGroupWaitsForTheRowItWouldBeKeptFor) {
  auto again = record("1.1", "2.1", "3.1");
  again.storage_path = "storage/cd/other.dcm";
  auto results = index_->insert_instances_unflushed({record("1.1", "2.1", "3.1"), again},
                                                    DuplicatePolicy::kKeepFirst);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].ok()) << results[0].error().message;
  EXPECT_EQ(results[0]->outcome, InsertOutcome::kInserted);
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, ErrorCode::kConflict);
  // The refusal left the group's own row and marker alone.
  EXPECT_EQ(unconfirmed_paths(*index_), std::vector<std::string>{"storage/ab/1.1.dcm"});
}

// Under `reject`, "already stored" would tell the sender its copy is safe: not before the
// stored row's flush is confirmed. Until then the duplicate is sent again (0xA700).
TEST_F(UnflushedTest, ARejectedDuplicateOfAnUnconfirmedRowIsToBeSentAgain) {
  const auto marker = insert({record("1.1", "2.1", "3.1")}).at(0).marker;
  auto again = record("1.1", "2.1", "3.1");
  again.storage_path = "storage/cd/other.dcm";
  auto early = index_->insert_instances_unflushed({again}, DuplicatePolicy::kReject);
  ASSERT_EQ(early.size(), 1u);
  ASSERT_FALSE(early[0].ok());
  EXPECT_EQ(early[0].error().code, ErrorCode::kConflict);
  index_->confirm_unflushed(marker);
  auto later = index_->insert_instances_unflushed({again}, DuplicatePolicy::kReject);
  ASSERT_EQ(later.size(), 1u);
  ASSERT_FALSE(later[0].ok());
  EXPECT_EQ(later[0].error().code, ErrorCode::kAlreadyExists);
}

TEST_F(UnflushedTest, AKeptDuplicateMakesNoMarkerAndOverwriteIsRefused) {
  index_->confirm_unflushed(insert({record("1.1", "2.1", "3.1")}).at(0).marker);
  auto again = record("1.1", "2.1", "3.1");
  again.storage_path = "storage/cd/other.dcm";
  auto kept = insert({again});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].outcome, InsertOutcome::kDuplicateKept);
  EXPECT_EQ(kept[0].marker, 0);
  EXPECT_TRUE(unconfirmed_paths(*index_).empty());

  auto refused = index_->insert_instances_unflushed({again}, DuplicatePolicy::kOverwrite);
  ASSERT_EQ(refused.size(), 1u);
  ASSERT_FALSE(refused[0].ok());
  EXPECT_EQ(refused[0].error().code, ErrorCode::kInvalidArgument);
  auto found = index_->find_instance("1.1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->storage_path, "storage/ab/1.1.dcm");
}

TEST_F(UnflushedTest, SettleDeletesBrokenRowsTheirQueueAndWhatIsLeftEmpty) {
  auto kept = record("1.1", "2.1", "3.1");
  auto sibling = record("1.2", "2.1", "3.1");         // same series: the series stays
  auto own_series = record("1.3", "2.3", "3.1");      // its series goes, the study stays
  auto alone = record("1.4", "2.4", "3.4", "PID-2");  // its own study goes, not the patient
  auto patients_other = record("1.5", "2.5", "3.5", "PID-2");  // kept: PID-2 stays
  auto lone = record("1.6", "2.6", "3.6", "PID-3");            // series, study and patient all go
  alone.destinations = {"PACS"};
  auto results = insert({kept, sibling, own_series, alone, patients_other, lone});
  ASSERT_EQ(results.size(), 6u);
  ASSERT_EQ(queued("PACS"), 1u);

  auto listed = index_->list_unconfirmed();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 6u);
  const std::int64_t broken[] = {(*listed)[1].instance_id, (*listed)[2].instance_id,
                                 (*listed)[3].instance_id, (*listed)[5].instance_id};
  ASSERT_TRUE(index_->settle_unconfirmed(broken, listed->back().marker_id).ok());

  EXPECT_TRUE(unconfirmed_paths(*index_).empty());
  EXPECT_TRUE(unconfirmed_paths(*open()).empty());
  EXPECT_EQ(*index_->count_instances(), 2);
  EXPECT_TRUE(index_->find_instance("1.1")->has_value());
  EXPECT_FALSE(index_->find_instance("1.2")->has_value());
  auto series = index_->list_series("3.1");
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);  // 2.3 went with its only instance
  EXPECT_EQ((*series)[0].series_instance_uid, "2.1");
  EXPECT_EQ((*series)[0].instance_count, 1);
  EXPECT_FALSE(index_->find_study("3.4")->has_value());
  EXPECT_FALSE(index_->find_study("3.6")->has_value());
  StudyQuery by_patient;
  by_patient.patient_id = "PID-2";
  auto studies = index_->list_studies(by_patient);
  ASSERT_TRUE(studies.ok());
  ASSERT_EQ(studies->size(), 1u);
  EXPECT_EQ((*studies)[0].study_instance_uid, "3.5");
  EXPECT_EQ(queued("PACS"), 0u);
  // The lone patient's row went too (read with a connection of our own).
  EXPECT_EQ(count_rows("SELECT count(*) FROM patients"), 2);
  EXPECT_EQ(count_rows("SELECT count(*) FROM patients WHERE patient_id = 'PID-3'"), 0);
  // The resend of a removed instance is a new instance again.
  auto resent = insert({record("1.4", "2.4", "3.4", "PID-2")});
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].outcome, InsertOutcome::kInserted);
}

TEST_F(UnflushedTest, SettleWithoutAThroughIdKeepsTheOtherMarkers) {
  insert({record("1.1", "2.1", "3.1"), record("1.2", "2.1", "3.1")});
  auto listed = index_->list_unconfirmed();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  const std::int64_t broken[] = {(*listed)[0].instance_id};
  ASSERT_TRUE(index_->settle_unconfirmed(broken, 0).ok());
  EXPECT_EQ(unconfirmed_paths(*index_), std::vector<std::string>{"storage/ab/1.2.dcm"});
}

TEST(UnflushedInMemoryTest, AnInMemoryIndexCannotDeferItsFlush) {
  auto index = SqliteIndex::open(":memory:");
  ASSERT_TRUE(index.ok());
  EXPECT_FALSE((*index)->local_file().has_value());
  auto results = (*index)->insert_instances_unflushed({record("1.1", "2.1", "3.1")},
                                                      DuplicatePolicy::kKeepFirst);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace gw::index
