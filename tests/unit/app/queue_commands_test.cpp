// `dicom-gw queue list|retry|delete` on an in-memory index, and once through a configuration
// file the way the binary runs it.
#include "app/queue_commands.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::app {
namespace {

using index::DuplicatePolicy;
using index::InstanceRecord;
using index::OutboxResult;

constexpr std::int64_t kNow = 1'700'000'000'000;

InstanceRecord make_record(const std::string& sop, std::vector<std::string> destinations) {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.series_instance_uid = "5.1.1";
  r.study_instance_uid = "5.1";
  r.storage_path = "storage/" + sop + ".dcm";
  r.received_at_ms = kNow - 1000;
  r.destinations = std::move(destinations);
  return r;
}

class QueueCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = index::SqliteIndex::open(":memory:");
    ASSERT_TRUE(opened.ok());
    index_ = std::move(opened).value();
    for (const auto* sop : {"1.1", "1.2", "1.3"}) {
      ASSERT_TRUE(
          index_->insert_instance(make_record(sop, {"PACS"}), DuplicatePolicy::kKeepFirst).ok());
    }
    ASSERT_TRUE(
        index_->insert_instance(make_record("1.4", {"ARCHIVE"}), DuplicatePolicy::kKeepFirst).ok());
    // 1: delivered with a warning, 2: dead, 3: pending with a retry in the future, 4: in flight.
    auto pacs = index_->claim_outbox("PACS", 3, "node-a", kNow, 60'000);
    ASSERT_TRUE(pacs.ok() && pacs->size() == 3);
    ASSERT_TRUE(
        index_->complete_outbox(1, "node-a", OutboxResult{0xB000, true, "coerced"}, kNow).ok());
    ASSERT_TRUE(
        index_->fail_outbox(2, "node-a", OutboxResult{0x0122, false, "SOP class\nrefused"}, kNow)
            .ok());
    ASSERT_TRUE(index_
                    ->reschedule_outbox(3, "node-a", kNow + 3'600'000,
                                        OutboxResult{0xA700, false, "out of resources"}, kNow)
                    .ok());
    ASSERT_TRUE(index_->claim_outbox("ARCHIVE", 1, "node-a", kNow, 60'000).ok());
  }

  int list(const QueueListArgs& args) {
    out_.str({});
    err_.str({});
    return queue_list(*index_, args, kNow, out_, err_);
  }

  std::unique_ptr<index::SqliteIndex> index_;
  std::ostringstream out_, err_;
};

TEST_F(QueueCommandsTest, ListShowsTheSummaryThenTheOldestEntries) {
  ASSERT_EQ(list({}), 0) << err_.str();
  const std::string text = out_.str();
  EXPECT_NE(text.find("ARCHIVE: 0 pending, 1 in flight, 0 delivered, 0 dead"), std::string::npos)
      << text;
  EXPECT_NE(text.find("PACS: 1 pending, 0 in flight, 1 delivered, 1 dead"), std::string::npos)
      << text;
  EXPECT_NE(text.find("ID  DESTINATION  STATE"), std::string::npos) << text;
  EXPECT_NE(text.find("0x0122  SOP class refused"), std::string::npos) << "one line per row";
  EXPECT_NE(text.find("0xA700  out of resources"), std::string::npos) << text;
  EXPECT_NE(text.find("delivered (warning)"), std::string::npos) << text;
  EXPECT_NE(text.find("0xB000  coerced"), std::string::npos) << text;
  EXPECT_NE(text.find("in_flight"), std::string::npos) << text;

  QueueListArgs dead;
  dead.state = "dead";
  ASSERT_EQ(list(dead), 0);
  EXPECT_EQ(out_.str().find("coerced"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("SOP class refused"), std::string::npos) << out_.str();

  QueueListArgs limited;
  limited.limit = 1;
  ASSERT_EQ(list(limited), 0);
  EXPECT_NE(out_.str().find("(the oldest 1 of 4; see more with --limit)"), std::string::npos)
      << out_.str();

  QueueListArgs other;
  other.destination = "NOWHERE";
  ASSERT_EQ(list(other), 0);
  EXPECT_EQ(out_.str(), "nothing queued for NOWHERE\n");
}

TEST_F(QueueCommandsTest, ListAsJson) {
  QueueListArgs args;
  args.json = true;
  args.destination = "PACS";
  args.state = "dead";
  ASSERT_EQ(list(args), 0) << err_.str();
  const auto rows = nlohmann::json::parse(out_.str());
  ASSERT_TRUE(rows.is_array());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["id"], 2);
  EXPECT_EQ(rows[0]["state"], "dead");
  EXPECT_EQ(rows[0]["destination"], "PACS");
  EXPECT_EQ(rows[0]["sop_instance_uid"], "1.2");
  EXPECT_EQ(rows[0]["last_status"], 0x0122);
  EXPECT_EQ(rows[0]["last_error"], "SOP class\nrefused");
  EXPECT_EQ(rows[0]["attempts"], 1);

  args.state = "pending";
  ASSERT_EQ(list(args), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())[0]["next_attempt_at_ms"], kNow + 3'600'000);
}

TEST_F(QueueCommandsTest, ListRejectsBadUsage) {
  QueueListArgs args;
  args.state = "stuck";
  EXPECT_EQ(list(args), 2);
  EXPECT_NE(err_.str().find("--state stuck"), std::string::npos);
  args.state.clear();
  args.limit = 0;
  EXPECT_EQ(list(args), 2);
}

TEST_F(QueueCommandsTest, RetryAndDeleteReportEachId) {
  std::ostringstream out, err;
  QueueRetryArgs retry;
  retry.ids = {2, 4, 99};
  EXPECT_EQ(queue_retry(*index_, retry, kNow, out, err), 1) << "4 is in flight, 99 unknown";
  EXPECT_EQ(out.str(), "2: queued again, due now\n");
  EXPECT_NE(err.str().find("4: being sent right now"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("99: no such queue entry"), std::string::npos) << err.str();
  EXPECT_EQ((*index_->find_outbox(2))->state, index::OutboxState::kPending);

  QueueRetryArgs ok;
  ok.ids = {1, 3};
  EXPECT_EQ(queue_retry(*index_, ok, kNow, out, err), 0);

  QueueRetryArgs both;
  both.ids = {1};
  both.dead = true;
  EXPECT_EQ(queue_retry(*index_, both, kNow, out, err), 2);
  QueueRetryArgs neither;
  EXPECT_EQ(queue_retry(*index_, neither, kNow, out, err), 2);
  QueueRetryArgs destination_alone;
  destination_alone.ids = {1};
  destination_alone.destination = "PACS";
  EXPECT_EQ(queue_retry(*index_, destination_alone, kNow, out, err), 2);

  std::ostringstream dead_out;
  auto claimed = index_->claim_outbox("PACS", 1, "node-b", kNow, 60'000);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1);
  ASSERT_TRUE(
      index_->fail_outbox((*claimed)[0].id, "node-b", OutboxResult{0xC000, false, "refused"}, kNow)
          .ok());
  QueueRetryArgs dead;
  dead.dead = true;
  dead.destination = "PACS";
  EXPECT_EQ(queue_retry(*index_, dead, kNow, dead_out, err), 0);
  EXPECT_EQ(dead_out.str(), "queued 1 dead delivery to PACS again, due now\n");

  std::ostringstream del_out, del_err;
  QueueDeleteArgs del;
  del.ids = {1, 4};
  EXPECT_EQ(queue_delete(*index_, del, kNow, del_out, del_err), 1);
  EXPECT_EQ(del_out.str(), "1: deleted\n");
  EXPECT_NE(del_err.str().find("4: being sent right now; delete it"), std::string::npos);
  EXPECT_FALSE(index_->find_outbox(1)->has_value());
  EXPECT_EQ(queue_delete(*index_, QueueDeleteArgs{}, kNow, del_out, del_err), 2);
}

TEST_F(QueueCommandsTest, BulkRetrySaysWhatItLeftDeadForDeletedDestinations) {
  // Row 2 (PACS) is dead; ARCHIVE's in-flight row 4 is dead-lettered as its destination goes.
  ASSERT_TRUE(index_->release_outbox_leases("node-a", kNow).ok());
  const std::vector<std::string> gone = {"ARCHIVE"};
  ASSERT_EQ(*index_->dead_letter_deleted_outbox(gone, kNow), 1);
  QueueRetryArgs all;
  all.dead = true;
  ASSERT_EQ(queue_retry(*index_, all, kNow, out_, err_), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "queued 1 dead delivery again, due now\n"
            "left 1 dead delivery of deleted destinations dead; retry them with --destination "
            "once the destination exists again\n");
  out_.str({});
  ASSERT_EQ(queue_retry(*index_, all, kNow, out_, err_), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "left 1 dead delivery of deleted destinations dead; retry them with --destination "
            "once the destination exists again\n")
      << "nothing to retry, but not \"no dead deliveries\"";
}

TEST(QueueCommandsRun, OpensTheIndexTheConfigurationNames) {
  test::TempDir dir("gw-queue-cli");
  const auto config = dir / "config.yaml";
  std::ofstream(config) << "data_dir: " << dir.subdir("data").string()
                        << "\nlisteners:\n  - {name: plain, port: 11112}\n";
  {
    auto opened = index::open_index("", dir / "data");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    ASSERT_TRUE(
        (*opened)->insert_instance(make_record("2.1", {"PACS"}), DuplicatePolicy::kKeepFirst).ok());
  }
  QueueListArgs args;
  args.config = config;
  testing::internal::CaptureStdout();
  const int rc = run_queue_list(args);
  const std::string text = testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  EXPECT_NE(text.find("PACS: 1 pending"), std::string::npos) << text;
  EXPECT_NE(text.find("2.1"), std::string::npos) << text;
  EXPECT_FALSE(std::filesystem::exists(dir / "data" / ".lock")) << "never the store's lock";

  args.config = dir / "missing.yaml";
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_queue_list(args), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("configuration error"), std::string::npos);
}

}  // namespace
}  // namespace gw::app
