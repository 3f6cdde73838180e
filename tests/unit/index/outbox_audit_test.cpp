// The operator's outbox writes take their audit row into the same transaction: a refused change
// (no such row, in flight) leaves no row; an invalid audit event refuses the change.
#include <gtest/gtest.h>

#include "index/index.h"
#include "index/sqlite/sqlite_index.h"

namespace gw::index {
namespace {

using core::ErrorCode;

class OutboxAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteIndex::open(":memory:");
    ASSERT_TRUE(opened.ok());
    index_ = std::move(opened).value();
    for (const char* sop : {"9.1", "9.2", "9.3"}) {
      InstanceRecord r;
      r.sop_instance_uid = sop;
      r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
      r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
      r.storage_path = std::string("storage/ab/") + sop + ".dcm";
      r.received_at_ms = 1000;
      r.study_instance_uid = "9";
      r.series_instance_uid = "9.0";
      r.destinations = {"PACS"};
      ASSERT_TRUE(index_->insert_instance(r, DuplicatePolicy::kKeepFirst).ok());
    }
  }

  static AuditEvent event(const std::string& action, const std::string& target) {
    AuditEvent e;
    e.at_ms = 2000;
    e.actor = "user:olga";
    e.action = action;
    e.target = target;
    e.details = "{}";
    return e;
  }

  std::size_t audit_rows() {
    AuditQuery q;
    q.action = "queue.*";
    auto rows = index_->list_audit(q);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? rows->size() : 0;
  }

  std::vector<OutboxItem> items() {
    auto listed = index_->list_outbox(OutboxQuery{});
    EXPECT_TRUE(listed.ok());
    return listed.ok() ? *listed : std::vector<OutboxItem>{};
  }

  std::unique_ptr<SqliteIndex> index_;
};

TEST_F(OutboxAuditTest, ChangeAndRowCommitTogether) {
  const auto rows = items();
  ASSERT_EQ(rows.size(), 3u);
  const auto retry = event("queue.retry", "queue:" + std::to_string(rows[0].id));
  ASSERT_TRUE(index_->retry_outbox(rows[0].id, 3000, &retry).ok());
  EXPECT_EQ(audit_rows(), 1u);

  const auto del = event("queue.delete", "queue:" + std::to_string(rows[1].id));
  ASSERT_TRUE(index_->delete_outbox(rows[1].id, &del).ok());
  EXPECT_EQ(audit_rows(), 2u);
  EXPECT_EQ(items().size(), 2u);

  const auto dead = event("queue.retry", "queue:dead");
  auto n = index_->retry_dead_outbox("PACS", 3000, &dead);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(audit_rows(), 3u) << "the operator's action is audited even when nothing was dead";
}

TEST_F(OutboxAuditTest, RefusedChangeLeavesNoRow) {
  const auto missing = event("queue.retry", "queue:999");
  EXPECT_EQ(index_->retry_outbox(999, 3000, &missing).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(index_->delete_outbox(999, &missing).error().code, ErrorCode::kNotFound);
  // In flight: claimed by a forwarder.
  auto claimed = index_->claim_outbox("PACS", 1, "node/PACS", 3000, 60'000);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  const auto id = claimed->front().id;
  const auto busy = event("queue.delete", "queue:" + std::to_string(id));
  EXPECT_EQ(index_->delete_outbox(id, &busy).error().code, ErrorCode::kConflict);
  EXPECT_EQ(index_->retry_outbox(id, 3000, &busy).error().code, ErrorCode::kConflict);
  EXPECT_EQ(audit_rows(), 0u);
}

TEST_F(OutboxAuditTest, InvalidAuditEventRefusesTheChange) {
  const auto rows = items();
  AuditEvent bad = event("queue.delete", "queue:x");
  bad.actor.clear();
  EXPECT_EQ(index_->delete_outbox(rows[0].id, &bad).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(items().size(), 3u) << "rolled back with its audit row";
}

}  // namespace
}  // namespace gw::index
