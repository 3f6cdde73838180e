// The index contract, API destinations and the operator's audited outbox writes. Ported from
// tests/unit/index/destinations_test.cpp and outbox_audit_test.cpp; runs on SQLite and on
// PostgreSQL (index_contract.h).
#include <string>
#include <vector>

#include "index_contract.h"

namespace gw::index {
namespace {

using core::ErrorCode;

constexpr std::int64_t kNow = 1'700'000'000'000;

ApiDestination make_destination(const std::string& name) {
  ApiDestination d;
  d.name = name;
  d.ae_title = "PACS_AE";
  d.host = "127.0.0.1";
  d.port = 11112;
  d.match = R"({"calling_ae":"CT1"})";
  d.created_at_ms = kNow;
  d.created_by = "user:admin";
  d.updated_at_ms = kNow;
  d.updated_by = "user:admin";
  return d;
}

AuditEvent make_event(const std::string& action, const std::string& target) {
  AuditEvent e;
  e.at_ms = kNow;
  e.actor = "user:admin";
  e.action = action;
  e.target = target;
  e.details = "{}";
  return e;
}

InstanceRecord make_record(const std::string& sop, std::vector<std::string> destinations) {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.received_at_ms = 1000;
  r.series_instance_uid = "5.1.1";
  r.study_instance_uid = "5.1";
  r.destinations = std::move(destinations);
  return r;
}

class IndexDestinations : public IndexContract {
 protected:
  std::vector<AuditEvent> audit(const std::string& action) {
    AuditQuery q;
    q.action = action;
    auto rows = index_->list_audit(q);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<AuditEvent>{};
  }
};

INSTANTIATE_INDEX_CONTRACT(IndexDestinations);

TEST_P(IndexDestinations, CreateFindListRoundTripEveryField) {
  ApiDestination d = make_destination("Remote_PACS");
  d.calling_ae_title = "GW_OUT";
  d.tls_enabled = true;
  d.tls_cert_path = "/etc/dicom-gw/tls/cert.pem";
  d.tls_key_path = "/etc/dicom-gw/tls/key.pem";
  d.tls_ca_path = "/etc/dicom-gw/tls/ca.pem";
  d.verify_hostname = false;
  d.max_associations = 4;
  d.max_async_operations = 8;
  d.tls_profile = "modern";
  d.retry_max_attempts = 7;
  d.retry_initial_backoff_s = 2;
  const auto event = make_event("destination.create", "destination:Remote_PACS");
  auto id = index_->create_destination(d, &event);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_GT(*id, 0);

  auto found = index_->find_destination("remote_pacs");  // any case
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, d);
  EXPECT_FALSE((*found)->retry_max_age_s.has_value());  // NULL: the config's value

  ASSERT_TRUE(index_->create_destination(make_destination("Another"), nullptr).ok());
  auto all = index_->list_destinations();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "Another");  // sorted by name
  EXPECT_EQ((*all)[1].name, "Remote_PACS");
  EXPECT_EQ(audit("destination.create").size(), 1u);
}

TEST_P(IndexDestinations, NamesAreUniqueWithoutRegardToCaseAndAFailedCreateLeavesNoAuditRow) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  const auto event = make_event("destination.create", "destination:pacs");
  auto again = index_->create_destination(make_destination("pacs"), &event);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(audit("destination.create").empty());
}

TEST_P(IndexDestinations, UpdateReplacesFieldsButKeepsNameSpellingAndCreation) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  ApiDestination changed = make_destination("pacs");
  changed.port = 104;
  changed.match = "";
  changed.retry_max_backoff_s = 60;
  changed.max_async_operations = 16;
  changed.created_at_ms = 1;  // ignored
  changed.created_by = "user:other";
  changed.updated_at_ms = kNow + 5;
  changed.updated_by = "user:bob";
  const auto event = make_event("destination.update", "destination:PACS");
  ASSERT_TRUE(index_->update_destination(changed, &event).ok());
  auto found = index_->find_destination("PACS");
  ASSERT_TRUE(found.ok() && found->has_value());
  const ApiDestination& d = **found;
  EXPECT_EQ(d.name, "PACS");
  EXPECT_EQ(d.port, 104);
  EXPECT_EQ(d.match, "");
  EXPECT_EQ(d.retry_max_backoff_s, 60);
  EXPECT_EQ(d.max_async_operations, 16);
  EXPECT_EQ(d.created_at_ms, kNow);
  EXPECT_EQ(d.created_by, "user:admin");
  EXPECT_EQ(d.updated_at_ms, kNow + 5);
  EXPECT_EQ(d.updated_by, "user:bob");
  EXPECT_EQ(audit("destination.update").size(), 1u);

  auto missing = index_->update_destination(make_destination("nope"), &event);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(audit("destination.update").size(), 1u);
}

TEST_P(IndexDestinations, DeleteRefusesQueuedRowsUnlessForcedThenDeadLettersThem) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  for (const char* sop : {"1.1", "1.2", "1.3"}) {
    ASSERT_TRUE(
        index_->insert_instance(make_record(sop, {"PACS", "OTHER"}), DuplicatePolicy::kKeepFirst)
            .ok());
  }
  // One in flight, one delivered, one pending.
  auto claimed = index_->claim_outbox("PACS", 2, "node/PACS", 2000, 60'000);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 2u);
  ASSERT_TRUE(index_->complete_outbox((*claimed)[0].id, "node/PACS", {0, false, ""}, 2001).ok());

  const auto event = make_event("destination.delete", "destination:PACS");
  auto refused = index_->delete_destination("pacs", false, 3000, &event);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(index_->find_destination("PACS")->has_value());
  EXPECT_TRUE(audit("destination.delete").empty());

  auto forced = index_->delete_destination("pacs", true, 3000, &event);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(*forced, 2);
  EXPECT_FALSE(index_->find_destination("PACS")->has_value());
  EXPECT_EQ(audit("destination.delete").size(), 1u);

  OutboxQuery q;
  q.destination = "PACS";
  auto rows = index_->list_outbox(q);
  ASSERT_TRUE(rows.ok());
  int dead = 0;
  for (const auto& r : *rows) {
    if (r.state != OutboxState::kDead) continue;
    ++dead;
    EXPECT_EQ(r.last_error, "destination deleted");
    EXPECT_EQ(r.lease_owner, "");
  }
  EXPECT_EQ(dead, 2);
  // The lease holder of the formerly in-flight row lost it.
  auto late = index_->complete_outbox((*claimed)[1].id, "node/PACS", {0, false, ""}, 3001);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kConflict);
  // Other destinations' rows are untouched.
  q.destination = "OTHER";
  q.state = OutboxState::kPending;
  EXPECT_EQ(index_->list_outbox(q)->size(), 3u);
}

TEST_P(IndexDestinations, DeleteWithoutQueuedRowsAndUnknownNames) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  auto deleted = index_->delete_destination("PACS", false, 3000, nullptr);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0);
  auto again = index_->delete_destination("PACS", true, 3000, nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST_P(IndexDestinations, InvalidAuditEventFailsTheWrite) {
  auto event = make_event("destination.create", "destination:PACS");
  event.details = "[1]";
  auto created = index_->create_destination(make_destination("PACS"), &event);
  ASSERT_FALSE(created.ok());
  EXPECT_FALSE(index_->find_destination("PACS")->has_value());
}

class IndexOutboxAudit : public IndexContract {
 protected:
  void SetUp() override {
    IndexContract::SetUp();
    ASSERT_NE(index_, nullptr);
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
};

INSTANTIATE_INDEX_CONTRACT(IndexOutboxAudit);

TEST_P(IndexOutboxAudit, ChangeAndRowCommitTogether) {
  const auto rows = items();
  ASSERT_EQ(rows.size(), 3u);
  const auto retry = event("queue.retry", "queue:" + std::to_string(rows[0].id));
  ASSERT_TRUE(index_->retry_outbox(rows[0].id, 3000, &retry).ok());
  EXPECT_EQ(audit_rows(), 1u);

  const auto del = event("queue.delete", "queue:" + std::to_string(rows[1].id));
  ASSERT_TRUE(index_->delete_outbox(rows[1].id, 3000, &del).ok());
  EXPECT_EQ(audit_rows(), 2u);
  EXPECT_EQ(items().size(), 2u);

  const auto dead = event("queue.retry", "queue:dead");
  auto n = index_->retry_dead_outbox("PACS", 3000, &dead);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(audit_rows(), 3u) << "the operator's action is audited even when nothing was dead";
}

TEST_P(IndexOutboxAudit, RefusedChangeLeavesNoRow) {
  const auto missing = event("queue.retry", "queue:999");
  EXPECT_EQ(index_->retry_outbox(999, 3000, &missing).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(index_->delete_outbox(999, 3000, &missing).error().code, ErrorCode::kNotFound);
  // In flight: claimed by a forwarder.
  auto claimed = index_->claim_outbox("PACS", 1, "node/PACS", 3000, 60'000);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  const auto id = claimed->front().id;
  const auto busy = event("queue.delete", "queue:" + std::to_string(id));
  EXPECT_EQ(index_->delete_outbox(id, 3000, &busy).error().code, ErrorCode::kConflict);
  EXPECT_EQ(index_->retry_outbox(id, 3000, &busy).error().code, ErrorCode::kConflict);
  EXPECT_EQ(audit_rows(), 0u);
}

TEST_P(IndexOutboxAudit, InvalidAuditEventRefusesTheChange) {
  const auto rows = items();
  AuditEvent bad = event("queue.delete", "queue:x");
  bad.actor.clear();
  EXPECT_EQ(index_->delete_outbox(rows[0].id, 3000, &bad).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(items().size(), 3u) << "rolled back with its audit row";
}

}  // namespace
}  // namespace gw::index
