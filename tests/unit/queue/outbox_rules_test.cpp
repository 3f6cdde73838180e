// The queue's rules on a real SQLite index: what an operator's retry, an overwrite while a row
// is in flight, a lease renewal and a deleted API destination do to outbox rows, and what the
// retry policy then decides. The index side runs on PostgreSQL too
// (tests/e2e/index_contract_outbox_test.cpp); the forwarder side against real peers in
// tests/e2e/forwarder_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "index/index.h"
#include "queue/retry_policy.h"
#include "support/temp_dir.h"

namespace gw::queue {
namespace {

using namespace std::chrono_literals;
using index::OutboxItem;
using index::OutboxState;

constexpr std::int64_t kHour = 3600 * 1000;
constexpr std::int64_t kLease = 60'000;

index::InstanceRecord make_record(const std::string& sop, std::vector<std::string> destinations,
                                  std::int64_t received_at_ms) {
  index::InstanceRecord r;
  r.sop_instance_uid = sop;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.size_bytes = 1234;
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.received_at_ms = received_at_ms;
  r.series_instance_uid = "5.1.1";
  r.study_instance_uid = "5.1";
  r.destinations = std::move(destinations);
  return r;
}

config::Retry retry_72h() {
  config::Retry r;
  r.max_attempts = 100;
  r.max_age = 72h;
  r.initial_backoff = 5s;
  r.max_backoff = 600s;
  return r;
}

Random fixed(double value) {
  return [value]() { return value; };
}

/// The finish a forwarder's OutboxWriter writes for a decision.
index::OutboxFinish finish_of(std::int64_t id, const Decision& d) {
  index::OutboxFinish f;
  f.id = id;
  f.result = d.result;
  switch (d.action) {
    case Decision::Action::kComplete:
      f.to = OutboxState::kDelivered;
      break;
    case Decision::Action::kReschedule:
      f.to = OutboxState::kPending;
      f.next_attempt_at_ms = d.next_attempt_at_ms;
      break;
    case Decision::Action::kFail:
      f.to = OutboxState::kDead;
      break;
  }
  return f;
}

class OutboxRules : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = index::open_index("sqlite://" + (dir_.path() / "index.db").string(), dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    index_ = std::move(opened).value();
  }

  void insert(const index::InstanceRecord& r,
              index::DuplicatePolicy policy = index::DuplicatePolicy::kKeepFirst) {
    auto inserted = index_->insert_instance(r, policy);
    ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  }

  std::vector<OutboxItem> claim(const std::string& destination, std::size_t max,
                                std::int64_t now_ms, std::int64_t lease_ms = kLease) {
    auto items = index_->claim_outbox(destination, max, "node-1/" + destination, now_ms, lease_ms);
    EXPECT_TRUE(items.ok()) << (items.ok() ? "" : items.error().message);
    return items.ok() ? std::move(items).value() : std::vector<OutboxItem>{};
  }

  void write(const OutboxItem& item, const Decision& d, std::int64_t now_ms) {
    const std::vector<index::OutboxFinish> rows = {finish_of(item.id, d)};
    const auto st = index_->finish_outbox_rows(rows, "node-1/" + item.destination, now_ms);
    ASSERT_EQ(st.size(), 1u);
    ASSERT_TRUE(st[0].ok()) << st[0].error().message;
  }

  OutboxItem find(std::int64_t id) {
    auto item = index_->find_outbox(id);
    EXPECT_TRUE(item.ok() && item->has_value()) << "outbox row " << id;
    return item.ok() && item->has_value() ? **item : OutboxItem{};
  }

  test::TempDir dir_{"gw-outbox-rules"};
  std::unique_ptr<index::Index> index_;
};

TEST_F(OutboxRules, AnOperatorsRetryGivesARowThatDiedOfOldAgeAFreshMaxAge) {
  const std::int64_t t0 = 1000;
  insert(make_record("1.1", {"PACS"}, t0));
  const auto timeout =
      classify_association_failure(core::make_error(core::ErrorCode::kTimeout, "timed out"));

  // Three days of failures: dead of old age.
  auto first = claim("PACS", 1, t0 + 72 * kHour);
  ASSERT_EQ(first.size(), 1u);
  auto d = decide(timeout, first[0], retry_72h(), t0 + 72 * kHour, fixed(0.5));
  ASSERT_EQ(d.action, Decision::Action::kFail);
  write(first[0], d, t0 + 72 * kHour);

  // A week later the operator retries it (`queue retry`, POST /queue/{id}/retry); the next
  // attempt fails transiently again: that is its first attempt of a new period, not the end.
  const std::int64_t t1 = t0 + 240 * kHour;
  ASSERT_TRUE(index_->retry_outbox(first[0].id, t1, nullptr).ok());
  auto again = claim("PACS", 1, t1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].created_at_ms, t0);
  EXPECT_EQ(again[0].retried_at_ms, t1);
  d = decide(timeout, again[0], retry_72h(), t1 + 1000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kReschedule) << d.result.comment;
  EXPECT_LE(d.next_attempt_at_ms, t1 + 72 * kHour);
  write(again[0], d, t1 + 1000);
  EXPECT_EQ(find(first[0].id).state, OutboxState::kPending);

  // The bulk retry of dead rows restarts the clock the same way.
  auto third = claim("PACS", 1, t1 + 72 * kHour);
  ASSERT_EQ(third.size(), 1u);
  d = decide(timeout, third[0], retry_72h(), t1 + 72 * kHour, fixed(0.5));
  ASSERT_EQ(d.action, Decision::Action::kFail);
  write(third[0], d, t1 + 72 * kHour);
  const std::int64_t t2 = t1 + 100 * kHour;
  ASSERT_EQ(*index_->retry_dead_outbox("PACS", t2, nullptr), 1);
  auto fourth = claim("PACS", 1, t2);
  ASSERT_EQ(fourth.size(), 1u);
  d = decide(timeout, fourth[0], retry_72h(), t2 + 1000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kReschedule) << d.result.comment;
}

TEST_F(OutboxRules, AnOverwriteWhileInFlightQueuesTheNewVersionAndSupersedesTheOldRow) {
  insert(make_record("2.1", {"PACS"}, 1000));
  const auto in_flight = claim("PACS", 1, 2000);
  ASSERT_EQ(in_flight.size(), 1u);

  // storage.duplicates: overwrite; ingest then removes the replaced file, which the claimed
  // row was about to send.
  auto newer = make_record("2.1", {"PACS"}, 3000);
  newer.storage_path = "storage/cd/new.dcm";
  insert(newer, index::DuplicatePolicy::kOverwrite);
  const auto fresh = index_->newer_outbox_row(in_flight[0].id);
  ASSERT_TRUE(fresh.ok() && fresh->has_value()) << "the new version was not queued";

  // What the forwarder checks when the claimed file is missing: the instance names another
  // file now, and a newer row sends it. The old row ends superseded, not dead.
  const auto missing = unreadable_file(
      core::make_error(core::ErrorCode::kNotFound, "cannot open storage/ab/2.1.dcm"));
  ASSERT_TRUE(missing.file_missing);
  EXPECT_NE(find(in_flight[0].id).storage_path, in_flight[0].storage_path);
  write(in_flight[0], superseded(**fresh), 3100);
  const auto old_row = find(in_flight[0].id);
  EXPECT_EQ(old_row.state, OutboxState::kDelivered);
  EXPECT_EQ(old_row.last_status, -1);
  EXPECT_EQ(old_row.last_error.rfind("superseded: ", 0), 0u) << old_row.last_error;

  const auto next = claim("PACS", 10, 3200);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, **fresh);
  EXPECT_EQ(next[0].storage_path, "storage/cd/new.dcm");
}

TEST_F(OutboxRules, OnlyTheRowsABatchHoldsAreRenewed) {
  for (const auto* sop : {"3.1", "3.2"}) insert(make_record(sop, {"PACS"}, 1000));
  const auto rows = claim("PACS", 2, 1000, 500);
  ASSERT_EQ(rows.size(), 2u);
  // The batch ends: the first row's result is written, the second's write fails, so that row
  // stays in flight under node-1's lease. Another batch keeps the forwarder busy: only its
  // row is renewed.
  ASSERT_TRUE(index_->complete_outbox(rows[0].id, "node-1/PACS", {0, false, ""}, 1050).ok());
  insert(make_record("3.3", {"PACS"}, 1000));
  const auto busy = claim("PACS", 1, 1100, 500);
  ASSERT_EQ(busy.size(), 1u);
  for (std::int64_t now = 1300; now <= 2500; now += 300) {
    const std::vector<std::int64_t> held = {busy[0].id};
    ASSERT_TRUE(index_->renew_outbox_leases("node-1/PACS", held, now, 500).ok());
  }
  EXPECT_EQ(find(rows[1].id).lease_expires_at_ms, 1500);
  const auto back = claim("PACS", 10, 2500);
  std::vector<std::int64_t> ids;
  for (const auto& r : back) ids.push_back(r.id);
  EXPECT_EQ(ids, std::vector<std::int64_t>{rows[1].id});
}

TEST_F(OutboxRules, RowsQueuedForADeletedDestinationAfterItsDeleteGoDeadLikeItsOthers) {
  index::ApiDestination api;
  api.name = "API_PACS";
  api.ae_title = "PACS";
  api.host = "127.0.0.1";
  api.port = 11112;
  ASSERT_TRUE(index_->create_destination(api, nullptr).ok());
  insert(make_record("4.1", {"API_PACS"}, 1000));
  ASSERT_EQ(*index_->delete_destination("API_PACS", /*force=*/true, 2000, nullptr), 1);
  // Routed with the routing of before the delete, committed after it.
  insert(make_record("4.2", {"API_PACS"}, 2001));
  index::OutboxQuery q;
  q.destination = "API_PACS";
  auto rows = index_->list_outbox(q);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].state, OutboxState::kPending);

  const std::vector<std::string> deleted = {"API_PACS"};
  EXPECT_EQ(*index_->dead_letter_deleted_outbox(deleted, 3000), 1);
  rows = index_->list_outbox(q);
  ASSERT_EQ(rows->size(), 2u);
  for (const auto& row : *rows) {
    EXPECT_EQ(row.state, OutboxState::kDead);
    EXPECT_EQ(row.last_error, (*rows)[0].last_error) << "the forced delete's words";
  }
  EXPECT_EQ((*rows)[1].last_error, "destination deleted");
}

}  // namespace
}  // namespace gw::queue
