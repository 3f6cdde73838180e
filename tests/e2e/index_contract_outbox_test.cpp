// The index contract, outbox: enqueue on insert, claims and leases, the state transitions, the
// operator's retry/delete, depths. Ported from tests/unit/index/outbox_test.cpp; runs on SQLite
// and on PostgreSQL (index_contract.h). Also: two index instances ("nodes") on one database
// claiming the same destination concurrently never get the same row.
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "index_contract.h"

namespace gw::index {
namespace {

using core::ErrorCode;

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
  r.digest = "xxh128:00112233445566778899aabbccddeeff";
  r.received_at_ms = received_at_ms;
  r.series_instance_uid = "5.1.1";
  r.study_instance_uid = "5.1";
  r.patient_id = "PID-TEST-1";
  r.destinations = std::move(destinations);
  return r;
}

OutboxResult result(int status, std::string comment = {}, bool warning = false) {
  return OutboxResult{status, warning, std::move(comment)};
}

std::vector<std::int64_t> ids_of(const std::vector<OutboxItem>& items) {
  std::vector<std::int64_t> ids;
  for (const auto& i : items) ids.push_back(i.id);
  return ids;
}

class IndexOutbox : public IndexContract {
 protected:
  InsertOutcome insert(const InstanceRecord& r,
                       DuplicatePolicy policy = DuplicatePolicy::kKeepFirst) {
    auto inserted = index_->insert_instance(r, policy);
    EXPECT_TRUE(inserted.ok()) << (inserted.ok() ? "" : inserted.error().message);
    return inserted.ok() ? inserted->outcome : InsertOutcome::kInserted;
  }

  std::vector<OutboxItem> list(const std::string& destination = {},
                               std::optional<OutboxState> state = std::nullopt,
                               std::int64_t limit = 100, std::int64_t offset = 0) {
    OutboxQuery q;
    q.destination = destination;
    q.state = state;
    q.limit = limit;
    q.offset = offset;
    auto items = index_->list_outbox(q);
    EXPECT_TRUE(items.ok()) << (items.ok() ? "" : items.error().message);
    return items.ok() ? std::move(items).value() : std::vector<OutboxItem>{};
  }

  std::vector<OutboxItem> claim(const std::string& destination, std::size_t max,
                                const std::string& owner, std::int64_t now_ms,
                                std::int64_t lease_ms = kLease) {
    auto items = index_->claim_outbox(destination, max, owner, now_ms, lease_ms);
    EXPECT_TRUE(items.ok()) << (items.ok() ? "" : items.error().message);
    return items.ok() ? std::move(items).value() : std::vector<OutboxItem>{};
  }

  OutboxItem find(std::int64_t id) {
    auto item = index_->find_outbox(id);
    EXPECT_TRUE(item.ok() && item->has_value()) << "outbox row " << id;
    return item.ok() && item->has_value() ? **item : OutboxItem{};
  }
};

INSTANTIATE_INDEX_CONTRACT(IndexOutbox);

TEST_P(IndexOutbox, InsertQueuesOnePendingRowPerDestination) {
  insert(make_record("1.1", {"PACS", "ARCHIVE"}, 5000));
  insert(make_record("1.2", {}, 5000));  // not routed

  auto items = list();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].destination, "PACS");
  EXPECT_EQ(items[1].destination, "ARCHIVE");
  for (const auto& item : items) {
    EXPECT_EQ(item.state, OutboxState::kPending);
    EXPECT_EQ(item.attempts, 0);
    EXPECT_EQ(item.created_at_ms, 5000);
    EXPECT_EQ(item.next_attempt_at_ms, 5000) << "due when received";
    EXPECT_EQ(item.updated_at_ms, 5000);
    EXPECT_EQ(item.lease_owner, "");
    EXPECT_EQ(item.last_status, -1);
    EXPECT_EQ(item.last_error, "");
    EXPECT_FALSE(item.warning);
    // Joined from the instance row: what the forwarder needs.
    EXPECT_EQ(item.sop_instance_uid, "1.1");
    EXPECT_EQ(item.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
    EXPECT_EQ(item.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    EXPECT_EQ(item.study_instance_uid, "5.1");
    EXPECT_EQ(item.storage_path, "storage/ab/1.1.dcm");
    EXPECT_EQ(item.size_bytes, 1234);
    EXPECT_EQ(item.digest, "xxh128:00112233445566778899aabbccddeeff");
  }
  EXPECT_LT(items[0].id, items[1].id);
  EXPECT_EQ(find(items[0].id), items[0]);
  EXPECT_FALSE(index_->find_outbox(999)->has_value());

  // A destination named twice in one record is queued once.
  insert(make_record("1.3", {"PACS", "PACS"}));
  EXPECT_EQ(list("PACS").size(), 2u);
}

TEST_P(IndexOutbox, EmptyDestinationNameFailsTheRecord) {
  auto inserted =
      index_->insert_instance(make_record("1.1", {"PACS", ""}), DuplicatePolicy::kKeepFirst);
  ASSERT_FALSE(inserted.ok());
  EXPECT_EQ(inserted.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(*index_->count_instances(), 0);
  EXPECT_TRUE(list().empty());
}

TEST_P(IndexOutbox, ClaimTakesTheOldestDueRowsUpToMax) {
  for (int i = 1; i <= 5; ++i) insert(make_record("2." + std::to_string(i), {"PACS"}));
  insert(make_record("2.9", {"OTHER"}));
  const auto all = ids_of(list("PACS"));
  ASSERT_EQ(all.size(), 5u);

  auto first = claim("PACS", 3, "node-a", 10'000);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(ids_of(first), (std::vector<std::int64_t>{all[0], all[1], all[2]}));
  for (const auto& item : first) {
    EXPECT_EQ(item.destination, "PACS");
    EXPECT_EQ(item.state, OutboxState::kInFlight);
    EXPECT_EQ(item.attempts, 1);
    EXPECT_EQ(item.lease_owner, "node-a");
    EXPECT_EQ(item.lease_expires_at_ms, 10'000 + kLease);
    EXPECT_EQ(item.updated_at_ms, 10'000);
    EXPECT_EQ(item.storage_path, "storage/ab/" + item.sop_instance_uid + ".dcm");
    EXPECT_EQ(item.digest, "xxh128:00112233445566778899aabbccddeeff") << "the forwarder checks it";
  }
  auto second = claim("PACS", 3, "node-a", 10'000);
  EXPECT_EQ(ids_of(second), (std::vector<std::int64_t>{all[3], all[4]}));
  EXPECT_TRUE(claim("PACS", 3, "node-a", 10'000).empty());
  EXPECT_TRUE(claim("PACS", 0, "node-a", 10'000).empty());
  EXPECT_TRUE(claim("NOBODY", 3, "node-a", 10'000).empty());
  EXPECT_EQ(list("OTHER", OutboxState::kPending).size(), 1u) << "other destinations untouched";

  // Rows received later than `now` are not due yet.
  insert(make_record("2.10", {"LATE"}, 50'000));
  EXPECT_TRUE(claim("LATE", 1, "node-a", 49'999).empty());
  EXPECT_EQ(claim("LATE", 1, "node-a", 50'000).size(), 1u);

  auto bad = index_->claim_outbox("PACS", 1, "", 10'000, kLease);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IndexOutbox, AClaimedRowIsClaimableAgainOnlyWhenItsLeaseExpires) {
  insert(make_record("3.1", {"PACS"}));
  auto first = claim("PACS", 10, "node-a", 1000, 500);
  ASSERT_EQ(first.size(), 1u);
  const auto id = first[0].id;
  EXPECT_TRUE(claim("PACS", 10, "node-b", 1499).empty()) << "lease held until 1500";

  auto second = claim("PACS", 10, "node-b", 1500, 500);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, id);
  EXPECT_EQ(second[0].lease_owner, "node-b");
  EXPECT_EQ(second[0].attempts, 2);
  EXPECT_EQ(second[0].lease_expires_at_ms, 2000);

  // node-a lost its lease: none of its reports change the row.
  const auto before = find(id);
  for (const auto& st :
       {index_->complete_outbox(id, "node-a", result(0x0000), 1600),
        index_->reschedule_outbox(id, "node-a", 9000, result(0xA700, "busy"), 1600),
        index_->fail_outbox(id, "node-a", result(0xC000, "bad"), 1600)}) {
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kConflict);
    EXPECT_NE(st.error().message.find("lease lost"), std::string::npos) << st.error().message;
  }
  EXPECT_EQ(find(id), before);

  auto missing = index_->complete_outbox(12345, "node-b", result(0), 1600);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_P(IndexOutbox, FinishRowsWritesABatchAndReportsEachRow) {
  for (const auto* sop : {"6.1", "6.2", "6.3", "6.4"}) insert(make_record(sop, {"PACS"}));
  const auto items = claim("PACS", 3, "node-a", 2000);
  ASSERT_EQ(items.size(), 3u);
  const auto other = claim("PACS", 1, "node-b", 2000);  // 6.4: not node-a's
  ASSERT_EQ(other.size(), 1u);

  std::vector<OutboxFinish> rows(5);
  rows[0] = {items[0].id, OutboxState::kDelivered, std::nullopt, result(0xB000, "coerced", true)};
  rows[1] = {items[1].id, OutboxState::kPending, 7000, result(-1, "connection refused")};
  rows[2] = {other[0].id, OutboxState::kDelivered, std::nullopt, result(0)};  // lease is node-b's
  rows[3] = {98765, OutboxState::kDelivered, std::nullopt, result(0)};        // no such row
  rows[4] = {items[2].id, OutboxState::kDead, std::nullopt, result(0x0122, "not supported")};
  const auto before_other = find(other[0].id);
  const auto st = index_->finish_outbox_rows(rows, "node-a", 2500);
  ASSERT_EQ(st.size(), rows.size());
  EXPECT_TRUE(st[0].ok());
  EXPECT_TRUE(st[1].ok());
  ASSERT_FALSE(st[2].ok());
  EXPECT_EQ(st[2].error().code, ErrorCode::kConflict);
  ASSERT_FALSE(st[3].ok());
  EXPECT_EQ(st[3].error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(st[4].ok()) << "a refused row does not stop the ones after it";

  const auto delivered = find(items[0].id);
  EXPECT_EQ(delivered.state, OutboxState::kDelivered);
  EXPECT_EQ(delivered.last_status, 0xB000);
  EXPECT_TRUE(delivered.warning);
  EXPECT_EQ(delivered.updated_at_ms, 2500);
  EXPECT_EQ(delivered.lease_owner, "");
  const auto retry = find(items[1].id);
  EXPECT_EQ(retry.state, OutboxState::kPending);
  EXPECT_EQ(retry.next_attempt_at_ms, 7000);
  EXPECT_EQ(retry.last_error, "connection refused");
  EXPECT_EQ(find(items[2].id).state, OutboxState::kDead);
  EXPECT_EQ(find(other[0].id), before_other);

  EXPECT_TRUE(index_->finish_outbox_rows({}, "node-a", 2600).empty());
}

TEST_P(IndexOutbox, RenewExtendsTheOwnersLeasesOnly) {
  insert(make_record("4.1", {"PACS"}));
  insert(make_record("4.2", {"PACS"}));
  const auto a = claim("PACS", 1, "node-a", 1000, 500);
  const auto b = claim("PACS", 1, "node-b", 1000, 500);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  const std::vector<std::int64_t> both = {a[0].id, b[0].id};
  ASSERT_TRUE(index_->renew_outbox_leases("node-a", both, 1400, 500).ok());
  EXPECT_EQ(find(a[0].id).lease_expires_at_ms, 1900);
  EXPECT_EQ(find(b[0].id).lease_expires_at_ms, 1500);
  const auto stolen = claim("PACS", 10, "node-c", 1600);
  EXPECT_EQ(ids_of(stolen), std::vector<std::int64_t>{b[0].id});
}

/// A row the owner still holds but no batch works on any more (its result could not be
/// written) is not renewed with the others: its lease runs out and the row is claimable again,
/// however busy the owner stays.
TEST_P(IndexOutbox, RenewExtendsOnlyTheNamedRows) {
  for (const auto* sop : {"4.1", "4.2", "4.3"}) insert(make_record(sop, {"PACS"}));
  const auto held = claim("PACS", 3, "node-a", 1000, 500);
  ASSERT_EQ(held.size(), 3u);
  // node-a works on the first two only; the third's result write failed.
  for (std::int64_t now = 1400; now <= 2600; now += 400) {
    const std::vector<std::int64_t> working = {held[0].id, held[1].id};
    ASSERT_TRUE(index_->renew_outbox_leases("node-a", working, now, 500).ok());
  }
  EXPECT_EQ(find(held[0].id).lease_expires_at_ms, 3100);
  EXPECT_EQ(find(held[1].id).lease_expires_at_ms, 3100);
  EXPECT_EQ(find(held[2].id).lease_expires_at_ms, 1500);
  const auto back = claim("PACS", 10, "node-a", 2600);
  ASSERT_EQ(ids_of(back), std::vector<std::int64_t>{held[2].id});
  EXPECT_EQ(back[0].attempts, 2);

  // Nothing named: nothing changes. Many ids (a few batches' worth) in one statement.
  ASSERT_TRUE(index_->renew_outbox_leases("node-a", {}, 2700, 500).ok());
  EXPECT_EQ(find(held[0].id).lease_expires_at_ms, 3100);
  std::vector<std::int64_t> many(500);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<std::int64_t>(i + 1);
  ASSERT_TRUE(index_->renew_outbox_leases("node-a", many, 2800, 500).ok());
  EXPECT_EQ(find(held[0].id).lease_expires_at_ms, 3300);
  EXPECT_EQ(find(held[2].id).lease_expires_at_ms, 3300) << "claimed again by node-a";
  auto bad = index_->renew_outbox_leases("", many, 2800, 500);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IndexOutbox, CompleteRescheduleAndFailRecordTheOutcome) {
  for (const auto* sop : {"5.1", "5.2", "5.3"}) insert(make_record(sop, {"PACS"}));
  const auto items = claim("PACS", 3, "node-a", 2000);
  ASSERT_EQ(items.size(), 3u);

  ASSERT_TRUE(
      index_->complete_outbox(items[0].id, "node-a", result(0xB000, "coercion", true), 2100).ok());
  auto delivered = find(items[0].id);
  EXPECT_EQ(delivered.state, OutboxState::kDelivered);
  EXPECT_EQ(delivered.last_status, 0xB000);
  EXPECT_EQ(delivered.last_error, "coercion");
  EXPECT_TRUE(delivered.warning);
  EXPECT_EQ(delivered.updated_at_ms, 2100);
  EXPECT_EQ(delivered.attempts, 1);
  EXPECT_EQ(delivered.lease_owner, "");
  EXPECT_EQ(delivered.lease_expires_at_ms, 0);

  ASSERT_TRUE(
      index_->reschedule_outbox(items[1].id, "node-a", 7000, result(-1, "connection refused"), 2200)
          .ok());
  auto retry = find(items[1].id);
  EXPECT_EQ(retry.state, OutboxState::kPending);
  EXPECT_EQ(retry.next_attempt_at_ms, 7000);
  EXPECT_EQ(retry.last_status, -1);
  EXPECT_EQ(retry.last_error, "connection refused");
  EXPECT_EQ(retry.attempts, 1);
  EXPECT_EQ(retry.lease_owner, "");
  EXPECT_EQ(retry.updated_at_ms, 2200);

  ASSERT_TRUE(
      index_->fail_outbox(items[2].id, "node-a", result(0x0122, "SOP class not supported"), 2300)
          .ok());
  auto dead = find(items[2].id);
  EXPECT_EQ(dead.state, OutboxState::kDead);
  EXPECT_EQ(dead.last_status, 0x0122);
  EXPECT_EQ(dead.last_error, "SOP class not supported");
  EXPECT_EQ(dead.lease_owner, "");

  // Finished rows are no longer held: a second report is a conflict.
  auto again = index_->complete_outbox(items[0].id, "node-a", result(0), 2400);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);

  // The rescheduled row is due at its next attempt, not before; the others never again.
  EXPECT_TRUE(claim("PACS", 10, "node-a", 6999).empty());
  auto later = claim("PACS", 10, "node-a", 7000);
  ASSERT_EQ(ids_of(later), std::vector<std::int64_t>{items[1].id});
  EXPECT_EQ(later[0].attempts, 2);
  EXPECT_EQ(later[0].last_error, "connection refused") << "kept until the attempt ends";
}

TEST_P(IndexOutbox, ReleaseReturnsTheOwnersRowsAsIfNeverAttempted) {
  for (const auto* sop : {"6.1", "6.2", "6.3"}) insert(make_record(sop, {"PACS"}));
  const auto mine = claim("PACS", 2, "node-a", 1000);
  const auto theirs = claim("PACS", 1, "node-b", 1000);
  ASSERT_EQ(mine.size(), 2u);
  ASSERT_EQ(theirs.size(), 1u);

  ASSERT_TRUE(index_->release_outbox_leases("node-a", 3000).ok());
  for (const auto& item : mine) {
    auto row = find(item.id);
    EXPECT_EQ(row.state, OutboxState::kPending);
    EXPECT_EQ(row.attempts, 0);
    EXPECT_EQ(row.next_attempt_at_ms, 3000);
    EXPECT_EQ(row.lease_owner, "");
  }
  EXPECT_EQ(find(theirs[0].id).state, OutboxState::kInFlight);
  EXPECT_EQ(ids_of(claim("PACS", 10, "node-c", 3000)), ids_of(mine));
}

TEST_P(IndexOutbox, RetryAndDeleteRules) {
  for (const auto* sop : {"7.1", "7.2", "7.3", "7.4"}) insert(make_record(sop, {"PACS"}));
  insert(make_record("7.5", {"ARCHIVE"}));
  const auto items = claim("PACS", 4, "node-a", 1000);
  ASSERT_EQ(items.size(), 4u);
  ASSERT_TRUE(index_->fail_outbox(items[0].id, "node-a", result(0xC000, "refused"), 1100).ok());
  ASSERT_TRUE(index_->complete_outbox(items[1].id, "node-a", result(0), 1100).ok());
  ASSERT_TRUE(index_->fail_outbox(items[3].id, "node-a", result(0xA900, "mismatch"), 1100).ok());
  // items[2] stays in flight.

  EXPECT_EQ(find(items[0].id).retried_at_ms, 0) << "never retried";
  ASSERT_TRUE(index_->retry_outbox(items[0].id, 5000, nullptr).ok());
  auto dead_retried = find(items[0].id);
  EXPECT_EQ(dead_retried.state, OutboxState::kPending);
  EXPECT_EQ(dead_retried.attempts, 0);
  EXPECT_EQ(dead_retried.next_attempt_at_ms, 5000);
  EXPECT_EQ(dead_retried.updated_at_ms, 5000);
  EXPECT_EQ(dead_retried.retried_at_ms, 5000) << "retry.max_age counts from here";
  EXPECT_EQ(dead_retried.created_at_ms, 1000) << "when it was queued stays";
  EXPECT_EQ(dead_retried.last_error, "refused") << "why it failed stays visible";
  EXPECT_EQ(dead_retried.last_status, 0xC000);

  ASSERT_TRUE(index_->retry_outbox(items[1].id, 5000, nullptr).ok()) << "delivered: send again";
  EXPECT_EQ(find(items[1].id).state, OutboxState::kPending);
  ASSERT_TRUE(index_->retry_outbox(items[1].id, 5000, nullptr).ok()) << "pending: due now";

  auto in_flight = index_->retry_outbox(items[2].id, 5000, nullptr);
  ASSERT_FALSE(in_flight.ok());
  EXPECT_EQ(in_flight.error().code, ErrorCode::kConflict);
  EXPECT_EQ(find(items[2].id).state, OutboxState::kInFlight);
  auto missing = index_->retry_outbox(999, 5000, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  auto del_in_flight = index_->delete_outbox(items[2].id, 5000, nullptr);
  ASSERT_FALSE(del_in_flight.ok());
  EXPECT_EQ(del_in_flight.error().code, ErrorCode::kConflict);
  auto del_missing = index_->delete_outbox(999, 5000, nullptr);
  ASSERT_FALSE(del_missing.ok());
  EXPECT_EQ(del_missing.error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(index_->delete_outbox(items[0].id, 5000, nullptr).ok());
  EXPECT_FALSE(index_->find_outbox(items[0].id)->has_value());
  EXPECT_EQ(*index_->count_instances(), 5) << "deleting a delivery keeps the instance";

  // Bulk retry of dead rows, per destination or all.
  const auto archive = claim("ARCHIVE", 1, "node-a", 1000);
  ASSERT_EQ(archive.size(), 1u);
  ASSERT_TRUE(index_->fail_outbox(archive[0].id, "node-a", result(0xC000), 1100).ok());
  auto none = index_->retry_dead_outbox("ELSEWHERE", 6000, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  auto pacs = index_->retry_dead_outbox("PACS", 6000, nullptr);
  ASSERT_TRUE(pacs.ok());
  EXPECT_EQ(*pacs, 1);
  EXPECT_EQ(find(items[3].id).state, OutboxState::kPending);
  EXPECT_EQ(find(items[3].id).next_attempt_at_ms, 6000);
  EXPECT_EQ(find(items[3].id).retried_at_ms, 6000);
  EXPECT_EQ(find(items[3].id).created_at_ms, 1000);
  EXPECT_EQ(find(archive[0].id).state, OutboxState::kDead);
  auto all = index_->retry_dead_outbox("", 6000, nullptr);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 1);
  EXPECT_EQ(find(archive[0].id).state, OutboxState::kPending);
  EXPECT_EQ(find(archive[0].id).retried_at_ms, 6000);
  EXPECT_TRUE(list({}, OutboxState::kDead).empty());
}

/// A retried row keeps its place: claims go by id, not by when it was queued or retried.
// A crash leaves a row in flight; if its destination is then removed, no forwarder ever claims
// it again. Once its lease has expired, nobody is sending it: the operator can retry it.
TEST_P(IndexOutbox, AnInFlightRowWhoseLeaseExpiredCanBeRetried) {
  insert(make_record("7.9", {"GONE"}));
  const auto items = claim("GONE", 1, "node-a", 1000);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(index_->retry_outbox(items[0].id, 1000 + kLease - 1, nullptr).error().code,
            ErrorCode::kConflict)
      << "the lease still runs";
  ASSERT_TRUE(index_->retry_outbox(items[0].id, 1000 + kLease, nullptr).ok());
  const auto row = find(items[0].id);
  EXPECT_EQ(row.state, OutboxState::kPending);
  EXPECT_EQ(row.attempts, 0);
  EXPECT_EQ(row.next_attempt_at_ms, 1000 + kLease);
  EXPECT_EQ(row.lease_owner, "");
  EXPECT_EQ(row.lease_expires_at_ms, 0);
  // The old owner's late result changes nothing.
  EXPECT_EQ(
      index_->complete_outbox(items[0].id, "node-a", result(0), 1000 + kLease + 1).error().code,
      ErrorCode::kConflict);
  EXPECT_EQ(find(items[0].id).state, OutboxState::kPending);
}

TEST_P(IndexOutbox, AnInFlightRowWhoseLeaseExpiredCanBeDeleted) {
  insert(make_record("7.11", {"GONE"}));
  const auto items = claim("GONE", 1, "node-a", 1000);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(index_->delete_outbox(items[0].id, 1000 + kLease - 1, nullptr).error().code,
            ErrorCode::kConflict)
      << "the lease still runs";
  ASSERT_TRUE(index_->delete_outbox(items[0].id, 1000 + kLease, nullptr).ok());
  EXPECT_FALSE(index_->find_outbox(items[0].id)->has_value());
  EXPECT_EQ(
      index_->complete_outbox(items[0].id, "node-a", result(0), 1000 + kLease + 1).error().code,
      ErrorCode::kNotFound);
}

// `queue retry --dead` without a destination leaves the rows of deleted destinations dead
// (nobody would send them); named, they are retried.
TEST_P(IndexOutbox, BulkRetryOfEveryDestinationLeavesDeletedDestinationsDead) {
  insert(make_record("7.10", {"PACS", "GONE"}));
  const auto pacs = claim("PACS", 1, "node-a", 1000);
  ASSERT_EQ(pacs.size(), 1u);
  ASSERT_TRUE(index_->fail_outbox(pacs[0].id, "node-a", result(0xC000, "refused"), 1100).ok());
  const std::vector<std::string> gone = {"GONE"};
  ASSERT_EQ(*index_->dead_letter_deleted_outbox(gone, 1200), 1);
  auto n = index_->retry_dead_outbox("", 2000, nullptr);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(find(pacs[0].id).state, OutboxState::kPending);
  const auto gone_rows = list("GONE");
  ASSERT_EQ(gone_rows.size(), 1u);
  EXPECT_EQ(gone_rows[0].state, OutboxState::kDead);
  EXPECT_EQ(*index_->retry_dead_outbox("GONE", 2000, nullptr), 1) << "named: retried";
  EXPECT_EQ(list("GONE")[0].state, OutboxState::kPending);
}

// A paused destination claims nothing, so no attempt ever ends its rows: the forwarder's probe
// dead-letters those older than retry.max_age, a bounded number per call.
TEST_P(IndexOutbox, DeadLetterExpiredTakesOldPendingRowsOfOneDestinationOnly) {
  insert(make_record("7.20", {"PACS", "OTHER"}, 1000));
  insert(make_record("7.21", {"PACS"}, 1000));
  insert(make_record("7.22", {"PACS"}, 1000));
  insert(make_record("7.23", {"PACS"}, 6000));
  const auto in_flight = claim("PACS", 1, "node-a", 1000);  // 7.20's row: in flight, untouched
  ASSERT_EQ(in_flight.size(), 1u);
  auto rows = list("PACS");
  ASSERT_EQ(rows.size(), 4u);
  ASSERT_TRUE(index_->retry_outbox(rows[1].id, 4000, nullptr).ok());  // 7.21: max_age from 4000

  auto n = index_->dead_letter_expired_outbox("PACS", 3000, 10, "gave up: paused", 9000);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1) << "only 7.22: 7.21 was retried since, 7.23 is young, 7.20 in flight";
  rows = list("PACS");
  EXPECT_EQ(rows[0].state, OutboxState::kInFlight);
  EXPECT_EQ(rows[1].state, OutboxState::kPending);
  EXPECT_EQ(rows[2].state, OutboxState::kDead);
  EXPECT_EQ(rows[2].last_error, "gave up: paused");
  EXPECT_EQ(rows[2].updated_at_ms, 9000);
  EXPECT_EQ(rows[3].state, OutboxState::kPending);
  EXPECT_EQ(list("OTHER")[0].state, OutboxState::kPending) << "another destination";

  // Bounded: at most max_rows of the oldest pending rows are looked at.
  EXPECT_EQ(*index_->dead_letter_expired_outbox("PACS", 10'000, 1, "later", 11'000), 1);
  rows = list("PACS");
  EXPECT_EQ(rows[1].state, OutboxState::kDead);
  EXPECT_EQ(rows[3].state, OutboxState::kPending);
  EXPECT_EQ(*index_->dead_letter_expired_outbox("PACS", 10'000, 0, "none", 11'000), 0);
}

TEST_P(IndexOutbox, ARetriedRowIsClaimedInItsOriginalOrder) {
  for (const auto* sop : {"7.1", "7.2", "7.3"}) insert(make_record(sop, {"PACS"}));
  const auto first = claim("PACS", 1, "node-a", 2000);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(index_->fail_outbox(first[0].id, "node-a", result(0xA700, "gave up"), 2100).ok());
  ASSERT_TRUE(index_->retry_outbox(first[0].id, 9000, nullptr).ok());
  const auto again = claim("PACS", 3, "node-a", 9000);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0].id, first[0].id);
  EXPECT_EQ(again[0].retried_at_ms, 9000);
  EXPECT_EQ(again[1].retried_at_ms, 0);
}

TEST_P(IndexOutbox, KeptDuplicateEnqueuesOnlyWhatIsNotAlreadyQueued) {
  auto first = make_record("8.1", {"PACS"});
  EXPECT_EQ(insert(first), InsertOutcome::kInserted);

  // A resend while PACS is still pending: no doubling; a new destination is added.
  auto resend = make_record("8.1", {"PACS", "ARCHIVE"}, 2000);
  resend.storage_path = "storage/cd/resend.dcm";
  EXPECT_EQ(insert(resend), InsertOutcome::kDuplicateKept);
  ASSERT_EQ(list("PACS").size(), 1u);
  ASSERT_EQ(list("ARCHIVE").size(), 1u);
  EXPECT_EQ(list("ARCHIVE")[0].storage_path, first.storage_path) << "the kept file";

  // In flight: still no doubling.
  auto claimed = claim("PACS", 1, "node-a", 3000);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(insert(resend), InsertOutcome::kDuplicateKept);
  ASSERT_EQ(list("PACS").size(), 1u);

  // Once delivered, a resend forwards again.
  ASSERT_TRUE(index_->complete_outbox(claimed[0].id, "node-a", result(0), 3100).ok());
  EXPECT_EQ(insert(resend), InsertOutcome::kDuplicateKept);
  auto pacs = list("PACS");
  ASSERT_EQ(pacs.size(), 2u);
  EXPECT_EQ(pacs[0].state, OutboxState::kDelivered);
  EXPECT_EQ(pacs[1].state, OutboxState::kPending);
  EXPECT_EQ(pacs[1].created_at_ms, 2000);
  // Likewise after it went dead.
  auto again = claim("PACS", 1, "node-a", 4000);
  ASSERT_EQ(again.size(), 1u);
  ASSERT_TRUE(index_->fail_outbox(again[0].id, "node-a", result(0xC000), 4100).ok());
  EXPECT_EQ(insert(resend), InsertOutcome::kDuplicateKept);
  EXPECT_EQ(list("PACS", OutboxState::kPending).size(), 1u);
  EXPECT_EQ(list("PACS").size(), 3u);
}

TEST_P(IndexOutbox, OverwriteKeepsTheRowsOnTheCurrentFile) {
  auto first = make_record("9.1", {"PACS"});
  insert(first);
  auto claimed = claim("PACS", 1, "node-a", 1500);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(index_->complete_outbox(claimed[0].id, "node-a", result(0), 1600).ok());
  insert(make_record("9.1", {"ARCHIVE"}));
  const auto archive_id = list("ARCHIVE").at(0).id;

  auto second = make_record("9.1", {"PACS", "ARCHIVE"}, 2000);
  second.storage_path = "storage/cd/second.dcm";
  second.size_bytes = 99;
  second.digest = "xxh128:ffeeddccbbaa99887766554433221100";
  second.transfer_syntax_uid = "1.2.840.10008.1.2.4.50";
  EXPECT_EQ(insert(second, DuplicatePolicy::kOverwrite), InsertOutcome::kReplaced);

  // ARCHIVE was still pending: not doubled, and it now sends the new file.
  auto archive = list("ARCHIVE");
  ASSERT_EQ(archive.size(), 1u);
  EXPECT_EQ(archive[0].id, archive_id);
  EXPECT_EQ(archive[0].storage_path, "storage/cd/second.dcm");
  EXPECT_EQ(archive[0].size_bytes, 99);
  EXPECT_EQ(archive[0].digest, "xxh128:ffeeddccbbaa99887766554433221100") << "the new file's";
  EXPECT_EQ(archive[0].transfer_syntax_uid, "1.2.840.10008.1.2.4.50");
  // PACS had delivered the old version: the new one is queued.
  auto pacs = list("PACS", OutboxState::kPending);
  ASSERT_EQ(pacs.size(), 1u);
  EXPECT_EQ(pacs[0].storage_path, "storage/cd/second.dcm");
  // Even the delivered row names the current file (history is per instance, not per file).
  EXPECT_EQ(find(claimed[0].id).storage_path, "storage/cd/second.dcm");
}

/// storage.duplicates: overwrite while a row is in flight: that row is sending the old file
/// (which ingest then removes), so the new version gets a row of its own. A pending row is
/// enough as it is: it reads the instance's storage_path when claimed.
TEST_P(IndexOutbox, OverwriteWhileInFlightQueuesTheNewVersion) {
  insert(make_record("9.1", {"PACS", "ARCHIVE"}));
  const auto in_flight = claim("PACS", 1, "node-a", 1500);
  ASSERT_EQ(in_flight.size(), 1u);
  EXPECT_EQ(in_flight[0].storage_path, "storage/ab/9.1.dcm");
  EXPECT_FALSE(index_->newer_outbox_row(in_flight[0].id)->has_value());

  auto second = make_record("9.1", {"PACS", "ARCHIVE"}, 2000);
  second.storage_path = "storage/cd/second.dcm";
  EXPECT_EQ(insert(second, DuplicatePolicy::kOverwrite), InsertOutcome::kReplaced);
  auto pacs = list("PACS");
  ASSERT_EQ(pacs.size(), 2u);
  EXPECT_EQ(pacs[0].id, in_flight[0].id);
  EXPECT_EQ(pacs[0].state, OutboxState::kInFlight);
  EXPECT_EQ(pacs[1].state, OutboxState::kPending);
  EXPECT_EQ(pacs[1].created_at_ms, 2000);
  EXPECT_EQ(pacs[1].storage_path, "storage/cd/second.dcm");
  EXPECT_EQ(*index_->newer_outbox_row(in_flight[0].id), pacs[1].id);
  EXPECT_FALSE(index_->newer_outbox_row(pacs[1].id)->has_value());
  EXPECT_FALSE(index_->newer_outbox_row(99999)->has_value());
  // ARCHIVE's row was pending: it stays the only one, and sends the new file when claimed.
  ASSERT_EQ(list("ARCHIVE").size(), 1u);
  const auto archive = claim("ARCHIVE", 1, "node-a", 2100);
  ASSERT_EQ(archive.size(), 1u);
  EXPECT_EQ(archive[0].storage_path, "storage/cd/second.dcm");

  // Another overwrite while the new row is still pending: nothing more to queue for PACS.
  auto third = make_record("9.1", {"PACS"}, 3000);
  third.storage_path = "storage/ef/third.dcm";
  EXPECT_EQ(insert(third, DuplicatePolicy::kOverwrite), InsertOutcome::kReplaced);
  EXPECT_EQ(list("PACS").size(), 2u);
  EXPECT_EQ(list("PACS")[1].storage_path, "storage/ef/third.dcm");
  // An overwrite by the same file (nothing replaced) while ARCHIVE's row is in flight, and a
  // kept duplicate: that row already sends this file.
  auto same_file = third;
  same_file.destinations = {"PACS", "ARCHIVE"};
  EXPECT_EQ(insert(same_file, DuplicatePolicy::kOverwrite), InsertOutcome::kReplaced);
  EXPECT_EQ(list("PACS").size(), 2u);
  auto resend = make_record("9.1", {"ARCHIVE"}, 4000);
  resend.storage_path = "storage/gh/resend.dcm";
  EXPECT_EQ(insert(resend), InsertOutcome::kDuplicateKept);
  EXPECT_EQ(list("ARCHIVE").size(), 1u);
}

/// Rows queued for an API destination after its delete (ForwardingService's sweep): pending
/// ones and in-flight ones nobody holds any more go dead as a forced delete leaves them.
TEST_P(IndexOutbox, DeadLetterDeletedOutboxTakesWhatNobodyIsSending) {
  for (const auto* sop : {"15.1", "15.2", "15.3", "15.4"}) insert(make_record(sop, {"GONE"}));
  insert(make_record("15.5", {"KEPT"}));
  insert(make_record("15.6", {"ALSO_GONE"}));
  const auto live = claim("GONE", 1, "node-b", 1000, 60'000);  // another node still sends it
  const auto expired = claim("GONE", 1, "node-c", 1000, 500);  // that node died
  ASSERT_EQ(live.size(), 1u);
  ASSERT_EQ(expired.size(), 1u);

  const std::vector<std::string> names = {"GONE", "ALSO_GONE", "NEVER_SEEN"};
  auto changed = index_->dead_letter_deleted_outbox(names, 5000);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_EQ(*changed, 4);  // two pending and one expired of GONE, one of ALSO_GONE
  for (const auto& item : list("GONE")) {
    if (item.id == live[0].id) {
      EXPECT_EQ(item.state, OutboxState::kInFlight);
      EXPECT_EQ(item.lease_owner, "node-b");
      continue;
    }
    EXPECT_EQ(item.state, OutboxState::kDead) << item.id;
    EXPECT_EQ(item.last_error, "destination deleted");
    EXPECT_EQ(item.updated_at_ms, 5000);
    EXPECT_EQ(item.lease_owner, "");
  }
  EXPECT_EQ(list("ALSO_GONE", OutboxState::kDead).size(), 1u);
  EXPECT_EQ(list("KEPT", OutboxState::kPending).size(), 1u);
  // node-c's late report changes nothing; node-b's delivery still counts.
  auto late = index_->complete_outbox(expired[0].id, "node-c", result(0), 5100);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(index_->complete_outbox(live[0].id, "node-b", result(0), 5100).ok());

  EXPECT_EQ(*index_->dead_letter_deleted_outbox(names, 6000), 0);
  EXPECT_EQ(*index_->dead_letter_deleted_outbox({}, 6000), 0);
}

TEST_P(IndexOutbox, AFailedRecordQueuesNothing) {
  insert(make_record("10.1", {"PACS"}));
  auto rejected =
      index_->insert_instance(make_record("10.1", {"ARCHIVE"}), DuplicatePolicy::kReject);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(list("ARCHIVE").empty());
  EXPECT_EQ(list("PACS").size(), 1u);

  // In a batch, the failed record's rows are rolled back with it; the others stay.
  std::vector<InstanceRecord> batch = {make_record("10.2", {"A"}), make_record("10.1", {"B"}),
                                       make_record("10.3", {"C"})};
  auto results = index_->insert_instances(batch, DuplicatePolicy::kReject);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_FALSE(results[1].ok());
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(list("A").size(), 1u);
  EXPECT_TRUE(list("B").empty());
  EXPECT_EQ(list("C").size(), 1u);
}

TEST_P(IndexOutbox, ListFiltersAndPages) {
  for (int i = 1; i <= 6; ++i) {
    insert(make_record("11." + std::to_string(i), {i % 2 == 0 ? "EVEN" : "ODD"}));
  }
  auto odd = claim("ODD", 1, "node-a", 1000);
  ASSERT_EQ(odd.size(), 1u);

  EXPECT_EQ(list().size(), 6u);
  EXPECT_EQ(list("EVEN").size(), 3u);
  EXPECT_EQ(list("ODD", OutboxState::kPending).size(), 2u);
  EXPECT_EQ(ids_of(list({}, OutboxState::kInFlight)), ids_of(odd));
  EXPECT_TRUE(list("EVEN", OutboxState::kDead).empty());

  const auto all = ids_of(list());
  EXPECT_EQ(ids_of(list({}, std::nullopt, 2, 0)), (std::vector<std::int64_t>{all[0], all[1]}));
  EXPECT_EQ(ids_of(list({}, std::nullopt, 2, 4)), (std::vector<std::int64_t>{all[4], all[5]}));
  EXPECT_TRUE(list({}, std::nullopt, 2, 6).empty());
  OutboxQuery bad;
  bad.limit = -1;
  EXPECT_FALSE(index_->list_outbox(bad).ok());
}

TEST_P(IndexOutbox, QueueDepthsPerDestination) {
  EXPECT_TRUE(index_->queue_depths()->empty());
  insert(make_record("12.1", {"PACS"}, 1000));
  insert(make_record("12.2", {"PACS"}, 2000));
  insert(make_record("12.3", {"PACS"}, 3000));
  insert(make_record("12.4", {"PACS", "ARCHIVE"}, 4000));
  insert(make_record("12.5", {"ARCHIVE"}, 5000));
  auto claimed = claim("PACS", 3, "node-a", 6000);
  ASSERT_EQ(claimed.size(), 3u);
  ASSERT_TRUE(index_->complete_outbox(claimed[0].id, "node-a", result(0), 6100).ok());
  ASSERT_TRUE(index_->fail_outbox(claimed[1].id, "node-a", result(0xC000), 6100).ok());
  auto archive = claim("ARCHIVE", 2, "node-a", 6000);
  ASSERT_EQ(archive.size(), 2u);
  ASSERT_TRUE(index_->complete_outbox(archive[0].id, "node-a", result(0), 6100).ok());
  ASSERT_TRUE(index_->complete_outbox(archive[1].id, "node-a", result(0), 6100).ok());

  auto depths = index_->queue_depths();
  ASSERT_TRUE(depths.ok()) << depths.error().message;
  ASSERT_EQ(depths->size(), 2u);
  const auto& a = (*depths)[0];
  EXPECT_EQ(a.destination, "ARCHIVE");
  EXPECT_EQ(a.pending, 0);
  EXPECT_EQ(a.in_flight, 0);
  EXPECT_EQ(a.delivered, 2);
  EXPECT_EQ(a.dead, 0);
  EXPECT_EQ(a.oldest_pending_created_at_ms, 0) << "nothing waiting";
  const auto& p = (*depths)[1];
  EXPECT_EQ(p.destination, "PACS");
  EXPECT_EQ(p.pending, 1);
  EXPECT_EQ(p.in_flight, 1);
  EXPECT_EQ(p.delivered, 1);
  EXPECT_EQ(p.dead, 1);
  EXPECT_EQ(p.oldest_pending_created_at_ms, 3000) << "the in-flight row, older than the pending";
}

TEST_P(IndexOutbox, NextDueIsTheEarliestAttemptOrLeaseExpiry) {
  EXPECT_FALSE(index_->next_outbox_due("PACS")->has_value());
  insert(make_record("13.1", {"PACS"}, 1000));
  insert(make_record("13.2", {"PACS"}, 2000));
  EXPECT_EQ(*index_->next_outbox_due("PACS"), 1000);

  auto claimed = claim("PACS", 2, "node-a", 3000, 500);
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(*index_->next_outbox_due("PACS"), 3500) << "the leases' expiry";
  ASSERT_TRUE(index_->reschedule_outbox(claimed[0].id, "node-a", 3200, result(0xA700), 3100).ok());
  EXPECT_EQ(*index_->next_outbox_due("PACS"), 3200);
  ASSERT_TRUE(index_->reschedule_outbox(claimed[1].id, "node-a", 9000, result(0xA700), 3100).ok());
  EXPECT_EQ(*index_->next_outbox_due("PACS"), 3200);

  // Delivered and dead rows are never due.
  auto again = claim("PACS", 2, "node-a", 9000);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_TRUE(index_->complete_outbox(again[0].id, "node-a", result(0), 9100).ok());
  ASSERT_TRUE(index_->fail_outbox(again[1].id, "node-a", result(0xC000), 9100).ok());
  EXPECT_FALSE(index_->next_outbox_due("PACS")->has_value());
  EXPECT_FALSE(index_->next_outbox_due("OTHER")->has_value());
}

TEST_P(IndexOutbox, RowsSurviveReopen) {
  insert(make_record("14.1", {"PACS", "ARCHIVE"}));
  auto claimed = claim("PACS", 1, "node-a", 2000);
  ASSERT_EQ(claimed.size(), 1u);
  const auto before = list();
  index_.reset();
  index_ = open();
  ASSERT_NE(index_, nullptr);
  EXPECT_EQ(list(), before);
  // A restarted node finds the dead node's lease expired and takes the row over.
  auto taken = claim("PACS", 1, "node-b", 2000 + kLease);
  ASSERT_EQ(ids_of(taken), ids_of(claimed));
  EXPECT_EQ(taken[0].attempts, 2);
}

/// Two gateway nodes on one database: each has its own Index (its own connections) and claims
/// the same destination's rows in small batches at the same time, completing what it got. No
/// row is ever handed to both, and every row is delivered exactly once.
TEST_P(IndexOutbox, TwoNodesClaimingConcurrentlyNeverShareARow) {
  constexpr int kRows = 120;
  for (int i = 1; i <= kRows; ++i) insert(make_record("20." + std::to_string(i), {"PACS"}));
  auto other = open();
  ASSERT_NE(other, nullptr);

  std::vector<std::int64_t> claimed_by[2];
  std::atomic<int> errors{0};
  auto node = [&](Index& index, const std::string& owner, std::vector<std::int64_t>& mine) {
    // Bounded: kRows claims would be enough even if this node got every row one at a time.
    for (int round = 0; round < kRows + 10; ++round) {
      auto items = index.claim_outbox("PACS", 3, owner, 5000, kLease);
      if (!items.ok()) {
        ++errors;
        return;
      }
      if (items->empty()) return;
      for (const auto& item : *items) {
        mine.push_back(item.id);
        if (!index.complete_outbox(item.id, owner, result(0), 5001).ok()) ++errors;
      }
    }
  };
  {
    std::jthread a([&] { node(*index_, "node-a/PACS", claimed_by[0]); });
    std::jthread b([&] { node(*other, "node-b/PACS", claimed_by[1]); });
  }
  EXPECT_EQ(errors.load(), 0);
  std::set<std::int64_t> a(claimed_by[0].begin(), claimed_by[0].end());
  std::set<std::int64_t> b(claimed_by[1].begin(), claimed_by[1].end());
  EXPECT_EQ(a.size(), claimed_by[0].size()) << "node-a got a row twice";
  EXPECT_EQ(b.size(), claimed_by[1].size()) << "node-b got a row twice";
  std::vector<std::int64_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  EXPECT_TRUE(both.empty()) << both.size() << " rows were claimed by both nodes";
  EXPECT_EQ(a.size() + b.size(), static_cast<std::size_t>(kRows));
  const auto delivered = list("PACS", OutboxState::kDelivered, kRows + 1);
  EXPECT_EQ(delivered.size(), static_cast<std::size_t>(kRows));
  for (const auto& item : delivered) EXPECT_EQ(item.attempts, 1) << item.id;
}

/// A node that dies holding leases (no release): its rows stay invisible until the leases
/// expire, then the surviving nodes take them over, again without sharing a row.
TEST_P(IndexOutbox, ExpiredLeasesOfADeadNodeReturnToTheQueue) {
  constexpr int kRows = 30;
  for (int i = 1; i <= kRows; ++i) insert(make_record("21." + std::to_string(i), {"PACS"}));
  {
    auto dead = open();
    ASSERT_NE(dead, nullptr);
    auto items = dead->claim_outbox("PACS", kRows, "node-dead/PACS", 1000, 500);
    ASSERT_TRUE(items.ok()) << items.error().message;
    ASSERT_EQ(items->size(), static_cast<std::size_t>(kRows));
  }  // the node is gone; its leases run until 1500
  auto other = open();
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(claim("PACS", kRows, "node-a/PACS", 1499).empty()) << "leases still running";
  EXPECT_EQ(*index_->next_outbox_due("PACS"), 1500);

  std::vector<OutboxItem> taken[2];
  {
    std::jthread a([&] {
      for (int round = 0; round < kRows; ++round) {
        auto items = index_->claim_outbox("PACS", 2, "node-a/PACS", 1500, kLease);
        if (!items.ok() || items->empty()) return;
        taken[0].insert(taken[0].end(), items->begin(), items->end());
      }
    });
    std::jthread b([&] {
      for (int round = 0; round < kRows; ++round) {
        auto items = other->claim_outbox("PACS", 2, "node-b/PACS", 1500, kLease);
        if (!items.ok() || items->empty()) return;
        taken[1].insert(taken[1].end(), items->begin(), items->end());
      }
    });
  }
  std::set<std::int64_t> ids;
  for (const auto& batch : taken) {
    for (const auto& item : batch) {
      EXPECT_TRUE(ids.insert(item.id).second) << "row " << item.id << " taken twice";
      EXPECT_EQ(item.attempts, 2);
      EXPECT_EQ(item.lease_expires_at_ms, 1500 + kLease);
    }
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kRows));
  EXPECT_TRUE(list("PACS", OutboxState::kPending).empty());
  for (const auto& item : list("PACS", OutboxState::kInFlight, kRows + 1)) {
    EXPECT_NE(item.lease_owner, "node-dead/PACS");
  }
}

}  // namespace
}  // namespace gw::index
