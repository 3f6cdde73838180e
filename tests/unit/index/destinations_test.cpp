// API destinations of the SQLite index: create/update/delete with their audit rows in the same
// transaction, names unique without regard to case, NULL retry overrides, and DELETE's handling
// of queued outbox rows (refused, or dead-lettered with force).
#include "index/destinations.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "index/index.h"
#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using test::TempDir;

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

/// Every test against an in-memory database and a database file.
class DestinationsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto index = SqliteIndex::open(GetParam() ? dir_.path() / "index.db" : ":memory:");
    ASSERT_TRUE(index.ok()) << index.error().message;
    index_ = std::move(index).value();
  }

  std::vector<AuditEvent> audit(const std::string& action) {
    AuditQuery q;
    q.action = action;
    auto rows = index_->list_audit(q);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<AuditEvent>{};
  }

  TempDir dir_;
  std::unique_ptr<SqliteIndex> index_;
};

INSTANTIATE_TEST_SUITE_P(Backends, DestinationsTest, ::testing::Values(false, true),
                         [](const auto& param_info) {
                           return param_info.param ? "File" : "Memory";
                         });

TEST_P(DestinationsTest, CreateFindListRoundTripEveryField) {
  ApiDestination d = make_destination("Remote_PACS");
  d.calling_ae_title = "GW_OUT";
  d.tls_enabled = true;
  d.tls_cert_path = "/etc/dicom-gw/tls/cert.pem";
  d.tls_key_path = "/etc/dicom-gw/tls/key.pem";
  d.tls_ca_path = "/etc/dicom-gw/tls/ca.pem";
  d.verify_hostname = false;
  d.max_associations = 4;
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

TEST_P(DestinationsTest, NamesAreUniqueWithoutRegardToCaseAndAFailedCreateLeavesNoAuditRow) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  const auto event = make_event("destination.create", "destination:pacs");
  auto again = index_->create_destination(make_destination("pacs"), &event);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(audit("destination.create").empty());
}

TEST_P(DestinationsTest, UpdateReplacesFieldsButKeepsNameSpellingAndCreation) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  ApiDestination changed = make_destination("pacs");
  changed.port = 104;
  changed.match = "";
  changed.retry_max_backoff_s = 60;
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

TEST_P(DestinationsTest, DeleteRefusesQueuedRowsUnlessForcedThenDeadLettersThem) {
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

TEST_P(DestinationsTest, DeleteWithoutQueuedRowsAndUnknownNames) {
  ASSERT_TRUE(index_->create_destination(make_destination("PACS"), nullptr).ok());
  auto deleted = index_->delete_destination("PACS", false, 3000, nullptr);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0);
  auto again = index_->delete_destination("PACS", true, 3000, nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST_P(DestinationsTest, InvalidAuditEventFailsTheWrite) {
  auto event = make_event("destination.create", "destination:PACS");
  event.details = "[1]";
  auto created = index_->create_destination(make_destination("PACS"), &event);
  ASSERT_FALSE(created.ok());
  EXPECT_FALSE(index_->find_destination("PACS")->has_value());
}

}  // namespace
}  // namespace gw::index
