// ActivityAudit: what the listeners and forwarders report becomes per-association/study audit
// rows (ADR 006), written by the background writer into a real (in-memory) SQLite index.
#include "app/activity_audit.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "index/sqlite/sqlite_index.h"

namespace gw::app {
namespace {

using Json = nlohmann::json;

class ActivityAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = index::SqliteIndex::open(":memory:");
    ASSERT_TRUE(opened.ok());
    index_ = std::move(opened).value();
    writer_ = std::make_unique<audit::AuditWriter>(*index_);
    audit_ = std::make_unique<ActivityAudit>(*writer_, [this] { return now_; });
  }

  std::vector<index::AuditEvent> rows(const std::string& action) {
    writer_->flush();
    index::AuditQuery q;
    q.action = action;
    q.limit = 1000;
    auto listed = index_->list_audit(q);
    EXPECT_TRUE(listed.ok());
    auto out = listed.ok() ? *listed : std::vector<index::AuditEvent>{};
    std::reverse(out.begin(), out.end());  // oldest first
    return out;
  }

  static dicom::AssociationInfo association(std::uint64_t id) {
    dicom::AssociationInfo info;
    info.id = id;
    info.listener = "plain";
    info.calling_ae = "CT1";
    info.called_ae = "DICOM_GW";
    info.peer_address = "127.0.0.1:40000";
    return info;
  }

  static dicom::InstanceOutcome instance(const std::string& study, const std::string& uid,
                                         bool stored = true) {
    dicom::InstanceOutcome o;
    o.sop_instance_uid = uid;
    o.study_instance_uid = study;
    o.bytes = 100;
    o.stored = stored;
    o.status = stored ? 0x0000 : 0xA700;
    return o;
  }

  std::int64_t now_ = 1'700'000'000'000;
  std::unique_ptr<index::Index> index_;
  std::unique_ptr<audit::AuditWriter> writer_;
  std::unique_ptr<ActivityAudit> audit_;
};

TEST_F(ActivityAuditTest, OneRowPerAssociationAndStudyWhenItEnds) {
  const auto info = association(7);
  audit_->association_accepted(info);
  audit_->instance_received(info, instance("1.2.1", "1.2.1.1"));
  audit_->instance_received(info, instance("1.2.1", "1.2.1.2"));
  audit_->instance_received(info, instance("1.2.2", "1.2.2.1"));
  audit_->instance_received(info, instance("1.2.2", "1.2.2.2", false));
  EXPECT_TRUE(rows("instances.received").empty()) << "written when the association ends";
  audit_->association_ended(info, dicom::AssociationEnd::kReleased);

  ASSERT_EQ(rows("association.accepted").size(), 1u);
  EXPECT_EQ(rows("association.accepted")[0].actor, "ae:CT1");
  auto received = rows("instances.received");
  ASSERT_EQ(received.size(), 2u);
  std::map<std::string, Json> by_study;
  for (const auto& r : received) by_study[r.target] = Json::parse(r.details);
  EXPECT_EQ(by_study["1.2.1"]["instances"], 2);
  EXPECT_EQ(by_study["1.2.1"]["bytes"], 200);
  EXPECT_EQ(by_study["1.2.1"]["sop_instance_uids"], Json({"1.2.1.1", "1.2.1.2"}));
  EXPECT_EQ(by_study["1.2.1"]["end"], "released");
  EXPECT_EQ(by_study["1.2.1"]["association"], 7);
  EXPECT_EQ(by_study["1.2.2"]["instances"], 1);
  EXPECT_EQ(by_study["1.2.2"]["failed"], 1);
  EXPECT_EQ(by_study["1.2.2"]["failed_sop_instance_uids"], Json({"1.2.2.2"}));
  for (const auto& r : received) {
    EXPECT_EQ(r.peer_address, "127.0.0.1:40000");
    EXPECT_EQ(r.outcome, r.target == "1.2.2" ? "failed" : "ok");
  }
}

TEST_F(ActivityAuditTest, LongAssociationsAreSummarisedInParts) {
  const auto info = association(8);
  audit_->association_accepted(info);
  for (std::size_t i = 0; i < ActivityAudit::kFlushInstances + 3; ++i) {
    audit_->instance_received(info, instance("1.3", "1.3." + std::to_string(i)));
  }
  auto partial = rows("instances.received");
  ASSERT_EQ(partial.size(), 1u) << "written at kFlushInstances, before the end";
  EXPECT_EQ(Json::parse(partial[0].details)["partial"], true);
  EXPECT_EQ(Json::parse(partial[0].details)["instances"], ActivityAudit::kFlushInstances);
  // Time passes: the next instance flushes what has waited kFlushInterval.
  now_ += std::chrono::milliseconds(ActivityAudit::kFlushInterval).count();
  audit_->instance_received(info, instance("1.3", "1.3.x"));
  EXPECT_EQ(rows("instances.received").size(), 2u);
  audit_->association_ended(info, dicom::AssociationEnd::kAborted);
  EXPECT_EQ(rows("instances.received").size(), 2u) << "nothing left to summarise";
}

TEST_F(ActivityAuditTest, ShutdownFlushesOpenSummaries) {
  const auto info = association(9);
  audit_->association_accepted(info);
  audit_->instance_received(info, instance("1.4", "1.4.1"));
  audit_->flush_all();
  auto received = rows("instances.received");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(Json::parse(received[0].details)["end"], "shutdown");
  audit_->association_ended(info, dicom::AssociationEnd::kError);  // the frame dies later
  EXPECT_EQ(rows("instances.received").size(), 1u);
}

TEST_F(ActivityAuditTest, RejectionsAndHandshakeFailuresAreFoldedPerPeer) {
  auto info = association(0);
  for (int i = 0; i < 5; ++i) {
    info.peer_address = "10.0.0.5:" + std::to_string(50000 + i);  // a new port each time
    audit_->association_rejected(info, dicom::RejectCategory::kCallingAeNotAllowed,
                                 "calling AE title not in accept.calling_ae_titles");
  }
  dicom::AssociationInfo tls;
  tls.listener = "secure";
  tls.peer_address = "10.0.0.6:1234";
  tls.tls_subject = "CN=intruder";
  audit_->tls_handshake_failed(tls, tls::HandshakeReason::kUnknownCa,
                               "client certificate: unknown CA");
  auto rejected = rows("association.rejected");
  ASSERT_EQ(rejected.size(), 2u) << "one row per peer and reason per minute";
  const auto ae = Json::parse(rejected[0].details);
  EXPECT_EQ(ae["stage"], "associate");
  EXPECT_EQ(ae["reason"], "calling_ae_not_allowed");
  EXPECT_EQ(rejected[0].outcome, "denied");
  const auto hs = Json::parse(rejected[1].details);
  EXPECT_EQ(hs["stage"], "tls_handshake");
  EXPECT_EQ(hs["reason"], "unknown_ca");
  EXPECT_EQ(hs["tls_subject"], "CN=intruder");
  // The four folded AE refusals are written at shutdown (or when the minute is over).
  audit_->flush_all();
  rejected = rows("association.rejected");
  ASSERT_EQ(rejected.size(), 3u);
  EXPECT_EQ(Json::parse(rejected[2].details)["attempts"], 4);
}

TEST_F(ActivityAuditTest, ForwardedPerAssociationAndStudyWithFailures) {
  queue::ForwardAssociation a;
  a.serial = 42;
  a.destination = "PACS";
  a.host = "127.0.0.1";
  a.port = 11113;
  a.called_ae = "PACS";
  audit_->association_opened(a);
  auto item = [](std::int64_t id, const std::string& study, const std::string& uid) {
    index::OutboxItem i;
    i.id = id;
    i.destination = "PACS";
    i.study_instance_uid = study;
    i.sop_instance_uid = uid;
    i.size_bytes = 10;
    return i;
  };
  queue::Decision ok;
  ok.action = queue::Decision::Action::kComplete;
  queue::Decision dead;
  dead.action = queue::Decision::Action::kFail;
  dead.result.comment = "0xA900: data set does not match SOP class";
  audit_->row_finished("PACS", 42, item(1, "1.5", "1.5.1"), ok);
  audit_->row_finished("PACS", 42, item(2, "1.5", "1.5.2"), dead);
  audit_->row_finished("PACS", 42, item(3, "1.6", "1.6.1"), ok);
  audit_->association_ended("PACS", 42, "");
  auto forwarded = rows("instances.forwarded");
  ASSERT_EQ(forwarded.size(), 2u);
  std::map<std::string, Json> by_study;
  for (const auto& r : forwarded) by_study[r.target] = Json::parse(r.details);
  EXPECT_EQ(by_study["1.5"]["destination"], "PACS");
  EXPECT_EQ(by_study["1.5"]["instances"], 1);
  EXPECT_EQ(by_study["1.5"]["dead"], 1);
  EXPECT_EQ(by_study["1.5"]["failures"][0]["sop_instance_uid"], "1.5.2");
  EXPECT_EQ(by_study["1.6"]["sop_instance_uids"], Json({"1.6.1"}));
  EXPECT_EQ(forwarded[0].peer_address, "127.0.0.1:11113");

  // An attempt that never opened: its rows' failures, with the reason.
  queue::Decision retry;
  retry.action = queue::Decision::Action::kReschedule;
  retry.result.comment = "connection refused";
  audit_->row_finished("PACS", 43, item(4, "1.7", "1.7.1"), retry);
  audit_->association_ended("PACS", 43, "connection refused");
  forwarded = rows("instances.forwarded");
  ASSERT_EQ(forwarded.size(), 3u);
  const auto failed = Json::parse(forwarded[2].details);
  EXPECT_EQ(failed["opened"], false);
  EXPECT_EQ(failed["retried"], 1);
  EXPECT_EQ(failed["error"], "connection refused");
  EXPECT_EQ(forwarded[2].outcome, "failed");
}

}  // namespace
}  // namespace gw::app
