// audit.syslog.format: dicom — audit rows as DICOM audit messages (PS3.15 A.5) in RFC 5424
// messages as IHE ITI-20 sends them. Every kind of message is also checked against the schema's
// structure with xmllint (tests/data/dicom-audit-message.rng).
#include "audit/dicom_audit_message.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace gw::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kStudy = "1.2.826.0.1.3680043.8.498.1";
constexpr const char* kCt = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kSr = "1.2.840.10008.5.1.4.1.1.88.22";
constexpr const char* kBom = "\xEF\xBB\xBF";

DicomAuditSource source() {
  DicomAuditSource s;
  s.origin.hostname = "gw1.example.org";
  s.origin.procid = "4242";
  s.audit_source_id = "DICOM_GW@gw1";
  s.enterprise_site_id = "RAD";
  return s;
}

index::AuditEvent received(std::int64_t stored, std::int64_t failed) {
  index::AuditEvent e;
  e.id = 7;
  e.at_ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  e.actor = "ae:CT1";
  e.action = "instances.received";
  e.target = kStudy;
  e.outcome = failed > 0 ? "failed" : "ok";
  e.peer_address = "10.0.0.5:40112";
  e.details = json{{"listener", "dicom"},
                   {"calling_ae", "CT1"},
                   {"called_ae", "DICOM_GW"},
                   {"tls", true},
                   {"tls_subject", "CN=ct1.example.org"},
                   {"study_instance_uid", kStudy},
                   {"instances", stored},
                   {"failed", failed},
                   {"sop_classes", {{kCt, stored > 0 ? stored - 1 : 0}, {kSr, stored > 0 ? 1 : 0}}},
                   {"sop_instance_uids", json::array()}}
                  .dump();
  return e;
}

index::AuditEvent forwarded(std::int64_t delivered, std::int64_t dead) {
  index::AuditEvent e;
  e.id = 8;
  e.at_ms = 1714564800500;
  e.actor = "system";
  e.action = "instances.forwarded";
  e.target = kStudy;
  e.outcome = dead > 0 ? "failed" : "ok";
  e.peer_address = "10.0.0.9:11112";
  e.details = json{{"destination", "pacs"},
                   {"opened", true},
                   {"host", "10.0.0.9"},
                   {"port", 11112},
                   {"calling_ae", "DICOM_GW"},
                   {"called_ae", "PACS"},
                   {"study_instance_uid", kStudy},
                   {"instances", delivered},
                   {"retried", 0},
                   {"dead", dead},
                   {"sop_classes", {{kCt, delivered}}}}
                  .dump();
  return e;
}

index::AuditEvent row(std::string actor, std::string action, std::string target,
                      std::string outcome, std::string peer, json details = json::object()) {
  index::AuditEvent e;
  e.id = 9;
  e.at_ms = 1714564801000;
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = std::move(outcome);
  e.peer_address = std::move(peer);
  e.details = details.dump();
  return e;
}

/// The XML of an RFC 5424 message (after the BOM).
std::string xml_of(const std::string& message) {
  const auto bom = message.find(kBom);
  return bom == std::string::npos ? std::string() : message.substr(bom + 3);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DicomAuditMessage, AReceivedStudyIsAnInstancesTransferredMessageAsITI20SendsIt) {
  const auto messages = format_dicom_audit_messages(received(3, 0), source(), "PID-77");
  ASSERT_EQ(messages.size(), 1u);
  const auto& m = messages[0];
  // <authpriv.notice>1 TIMESTAMP HOST APP PROCID MSGID - BOM MSG
  EXPECT_EQ(m.rfind(std::string("<85>1 2024-05-01T12:00:00.123Z gw1.example.org dicom-gw 4242 "
                                "IHE+RFC-3881 - ") +
                        kBom + "<AuditMessage><EventIdentification ",
                    0),
            0u)
      << m;
  const auto x = xml_of(m);
  EXPECT_TRUE(has(x, R"(EventActionCode="C" EventDateTime="2024-05-01T12:00:00.123Z" )"
                     R"(EventOutcomeIndicator="0")"))
      << x;
  EXPECT_TRUE(has(x, R"(<EventID csd-code="110104" codeSystemName="DCM" )"
                     R"(originalText="DICOM Instances Transferred"/>)"));
  // The sender (requestor, by IP address) and this gateway (by machine name, with its pid).
  EXPECT_TRUE(has(x, R"(<ActiveParticipant UserID="CT1" UserName="CN=ct1.example.org" )"
                     R"(UserIsRequestor="true" NetworkAccessPointID="10.0.0.5" )"
                     R"(NetworkAccessPointTypeCode="2"><RoleIDCode csd-code="110153")"))
      << x;
  EXPECT_TRUE(has(x, R"(<ActiveParticipant UserID="DICOM_GW" AlternativeUserID="4242" )"
                     R"(UserIsRequestor="false" NetworkAccessPointID="gw1.example.org" )"
                     R"(NetworkAccessPointTypeCode="1"><RoleIDCode csd-code="110152")"))
      << x;
  EXPECT_TRUE(has(x, R"(<AuditSourceIdentification AuditEnterpriseSiteID="RAD" )"
                     R"(AuditSourceID="DICOM_GW@gw1"><AuditSourceTypeCode csd-code="4"/>)"));
  // The study with its SOP classes, then the patient by Patient ID.
  EXPECT_TRUE(has(x, std::string(R"(<ParticipantObjectIdentification ParticipantObjectID=")") +
                         kStudy + R"(" ParticipantObjectTypeCode="2" )" +
                         R"(ParticipantObjectTypeCodeRole="3"><ParticipantObjectIDTypeCode )" +
                         R"(csd-code="110180")"))
      << x;
  EXPECT_TRUE(has(x, std::string(R"(<SOPClass UID=")") + kCt + R"(" NumberOfInstances="2"/>)"));
  EXPECT_TRUE(has(x, std::string(R"(<SOPClass UID=")") + kSr + R"(" NumberOfInstances="1"/>)"));
  EXPECT_TRUE(has(x, R"(<ParticipantObjectIdentification ParticipantObjectID="PID-77" )"
                     R"(ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1">)"
                     R"(<ParticipantObjectIDTypeCode csd-code="2" codeSystemName="RFC-3881" )"
                     R"(originalText="Patient Number"/>)"))
      << x;
  EXPECT_TRUE(x.ends_with("</AuditMessage>"));
}

TEST(DicomAuditMessage, WithoutAPatientIdThePatientIsLeftOut) {
  const auto messages = format_dicom_audit_messages(received(1, 0), source(), "");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_FALSE(has(messages[0], "Patient Number"));
  EXPECT_TRUE(has(messages[0], "Study Instance UID"));
}

TEST(DicomAuditMessage, MixedOutcomesAreTwoMessages) {
  const auto mixed = format_dicom_audit_messages(received(3, 2), source(), "P");
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_TRUE(has(mixed[0], R"(EventOutcomeIndicator="0")"));
  EXPECT_TRUE(mixed[0].starts_with("<85>"));
  EXPECT_TRUE(has(mixed[1], R"(EventOutcomeIndicator="4")")) << mixed[1];
  EXPECT_TRUE(mixed[1].starts_with("<84>"));
  EXPECT_TRUE(has(mixed[1], "<EventOutcomeDescription>2 instance(s) not stored"));
  EXPECT_TRUE(has(mixed[1], R"(<SOPClass NumberOfInstances="2"/>)")) << mixed[1];

  const auto all_failed = format_dicom_audit_messages(received(0, 2), source(), "P");
  ASSERT_EQ(all_failed.size(), 1u);
  EXPECT_TRUE(has(all_failed[0], R"(EventOutcomeIndicator="8")"));
  EXPECT_TRUE(all_failed[0].starts_with("<83>"));
}

TEST(DicomAuditMessage, AForwardedStudyIsSentByUsToTheDestination) {
  const auto messages = format_dicom_audit_messages(forwarded(4, 0), source(), "P");
  ASSERT_EQ(messages.size(), 1u);
  const auto x = xml_of(messages[0]);
  EXPECT_TRUE(has(x, R"(EventActionCode="R")"));
  EXPECT_TRUE(has(x, R"(<ActiveParticipant UserID="DICOM_GW" AlternativeUserID="4242" )"
                     R"(UserIsRequestor="true" NetworkAccessPointID="gw1.example.org" )"))
      << x;
  EXPECT_TRUE(has(x, R"(<ActiveParticipant UserID="PACS" UserName="pacs" )"
                     R"(UserIsRequestor="false" NetworkAccessPointID="10.0.0.9" )"
                     R"(NetworkAccessPointTypeCode="2"><RoleIDCode csd-code="110152")"))
      << x;
  EXPECT_TRUE(has(x, std::string(R"(<SOPClass UID=")") + kCt + R"(" NumberOfInstances="4"/>)"));
}

TEST(DicomAuditMessage, LoginsAreUserAuthentication) {
  const auto ok = format_dicom_audit_messages(
      row("user:alice", "auth.login", "user:alice", "ok", "192.168.1.20:5000"), source(), "");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_TRUE(has(ok[0], R"(<EventID csd-code="110114")"));
  EXPECT_TRUE(has(ok[0], R"(<EventTypeCode csd-code="110122" codeSystemName="DCM" )"
                         R"(originalText="Login"/>)"));
  EXPECT_TRUE(has(ok[0], R"(<ActiveParticipant UserID="alice" UserIsRequestor="true" )"
                         R"(NetworkAccessPointID="192.168.1.20" NetworkAccessPointTypeCode="2"/>)"))
      << ok[0];
  const auto failed =
      format_dicom_audit_messages(row("anonymous", "auth.login_failed", "user:mallory", "failed",
                                      "[2001:db8::1]:443", {{"reason", "wrong password"}}),
                                  source(), "");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_TRUE(has(failed[0], R"(EventOutcomeIndicator="4")"));
  EXPECT_TRUE(has(failed[0], R"(UserID="mallory")"));
  EXPECT_TRUE(
      has(failed[0], R"(NetworkAccessPointID="2001:db8::1" NetworkAccessPointTypeCode="2")"));
}

TEST(DicomAuditMessage, AdministrationIsASecurityAlertOfItsKind) {
  const auto user = format_dicom_audit_messages(
      row("cli", "user.create", "user:bob", "ok", "", {{"role", "admin"}, {"os_user", "root"}}),
      source(), "");
  ASSERT_EQ(user.size(), 1u);
  EXPECT_TRUE(has(user[0], R"(<EventID csd-code="110113")"));
  EXPECT_TRUE(has(user[0], R"(<EventTypeCode csd-code="110137")"));
  EXPECT_TRUE(has(user[0], R"(<ActiveParticipant UserID="root" UserIsRequestor="true")"));
  EXPECT_TRUE(has(user[0], R"(ParticipantObjectID="bob" ParticipantObjectTypeCode="1" )"
                           R"(ParticipantObjectTypeCodeRole="11")"));

  const auto refused = format_dicom_audit_messages(
      row("ae:INTRUDER", "association.rejected", "ae:DICOM_GW", "denied", "10.1.1.1:999",
          {{"reason", "calling AE title not recognized"}}),
      source(), "");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(has(refused[0], R"(<EventTypeCode csd-code="110126")"));
  EXPECT_TRUE(has(refused[0], R"(EventOutcomeIndicator="4")"));
  EXPECT_TRUE(has(refused[0],
                  "<EventOutcomeDescription>association.rejected ae:DICOM_GW: "
                  "calling AE title not recognized</EventOutcomeDescription>"));

  EXPECT_TRUE(has(format_dicom_audit_messages(row("system", "config.reload", "config", "ok", ""),
                                              source(), "")[0],
                  R"(<EventTypeCode csd-code="110131")"));
  EXPECT_TRUE(has(format_dicom_audit_messages(
                      row("user:a", "destination.create", "destination:pacs", "ok", "1.2.3.4:1"),
                      source(), "")[0],
                  R"(<EventTypeCode csd-code="110128")"));
  EXPECT_TRUE(has(format_dicom_audit_messages(row("user:a", "certs.upload", "tls", "ok", "::1"),
                                              source(), "")[0],
                  R"(<EventTypeCode csd-code="110129")"));
}

TEST(DicomAuditMessage, StartAndStopAreApplicationActivity) {
  const auto start = format_dicom_audit_messages(
      row("system", "gateway.started", "gateway", "ok", ""), source(), "");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_TRUE(has(start[0], R"(<EventID csd-code="110100")"));
  EXPECT_TRUE(has(start[0], R"(<EventTypeCode csd-code="110120")"));
  EXPECT_TRUE(has(start[0], R"(<RoleIDCode csd-code="110150")"));
  const auto stop = format_dicom_audit_messages(
      row("system", "gateway.stopped", "gateway", "ok", ""), source(), "");
  EXPECT_TRUE(has(stop.at(0), R"(<EventTypeCode csd-code="110121")"));
}

TEST(DicomAuditMessage, RowsWithoutADicomCounterpartMakeNoMessage) {
  for (const char* action : {"association.accepted", "destination.echo", "storage.verify"}) {
    EXPECT_TRUE(
        format_dicom_audit_messages(row("system", action, "x", "ok", ""), source(), "").empty())
        << action;
  }
}

TEST(DicomAuditMessage, AuditedStudyIsTheTransferOrAccessStudy) {
  EXPECT_EQ(audited_study(received(1, 0)), kStudy);
  EXPECT_EQ(audited_study(forwarded(1, 0)), kStudy);
  EXPECT_EQ(audited_study(row("user:a", "instance.downloaded", "instance:1.2", "ok", "",
                              {{"study_instance_uid", "1.2.3"}})),
            "1.2.3");
  EXPECT_EQ(audited_study(row("user:a", "auth.login", "user:a", "ok", "")), "");
}

TEST(DicomAuditMessage, TextIsEscapedForXml) {
  EXPECT_EQ(xml_escape(R"(a&b<c>d"e'f)"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(xml_escape("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(xml_escape("a\x01z"), "a\xEF\xBF\xBDz");     // not allowed in XML 1.0
  EXPECT_EQ(xml_escape("a\xFFz"), "a\xEF\xBF\xBDz");     // invalid UTF-8
  EXPECT_EQ(xml_escape("l1\nl2\tx"), "l1&#10;l2&#9;x");  // kept through attribute normalisation
  EXPECT_EQ(xml_escape("a\xEF\xBF\xBE\xEF\xBF\xBFz"),
            "a\xEF\xBF\xBD\xEF\xBF\xBDz");                // U+FFFE, U+FFFF: not XML characters
  EXPECT_EQ(xml_escape("\xEF\xBF\xBD"), "\xEF\xBF\xBD");  // U+FFFD itself stays
  // A peer's AE title cannot break out of its attribute.
  const auto m = format_dicom_audit_messages(
      row("ae:X\"/><Evil a=\"", "association.rejected", "ae:GW", "denied", "10.0.0.1:1"), source(),
      "");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_FALSE(has(m[0], "<Evil")) << m[0];
}

// Whatever a peer or a row holds, a message stays within kMaxMessageOctets (rsyslog's default
// maximum; a cut frame garbles the ones after it): many SOP classes are summed up, long texts
// are cut.
TEST(DicomAuditMessage, MessagesStayWithinTheSyslogMaximum) {
  auto e = received(200, 1);
  json d = json::parse(e.details);
  json classes = json::object();
  for (int i = 0; i < 200; ++i) {
    classes["1.2.840.10008.5.1.4.1.1.77.1.4." + std::to_string(100000 + i)] = 1;
  }
  d["sop_classes"] = classes;
  d["tls_subject"] = std::string(20000, '<');
  d["calling_ae"] = std::string(5000, '&');
  e.details = d.dump();
  const auto messages = format_dicom_audit_messages(e, source(), std::string(3000, '"'));
  ASSERT_EQ(messages.size(), 2u);
  for (const auto& m : messages) EXPECT_LE(m.size(), kMaxMessageOctets) << m.size();
  EXPECT_TRUE(has(messages[0], R"(<SOPClass NumberOfInstances="185"/>)"))
      << "15 named, the rest summed";

  // A "UID" a peer made up: not checked at ingest, cut here.
  auto odd = received(1, 0);
  json od = json::parse(odd.details);
  od["study_instance_uid"] = std::string(4000, '"');
  od["sop_classes"] = {{std::string(4000, '<'), 1}};
  odd.details = od.dump();
  for (const auto& m : format_dicom_audit_messages(odd, source(), "P")) {
    EXPECT_LE(m.size(), kMaxMessageOctets) << m.size();
  }
  auto download = row(
      "user:a", "instance.downloaded", "instance:1", "ok", "10.0.0.1:1",
      {{"study_instance_uid", std::string(4000, '&')}, {"sop_class_uid", std::string(4000, '>')}});
  for (const auto& m : format_dicom_audit_messages(download, source(), std::string(300, '\''))) {
    EXPECT_LE(m.size(), kMaxMessageOctets) << m.size();
  }

  const auto alert = format_dicom_audit_messages(
      row("user:" + std::string(9000, 'x'), "user.update", "user:" + std::string(9000, '\''),
          "failed", "10.0.0.1:1", {{"reason", std::string(9000, '>')}}),
      source(), "");
  ASSERT_EQ(alert.size(), 1u);
  EXPECT_LE(alert[0].size(), kMaxMessageOctets);
}

// Every kind of message has the structure of the DICOM audit message schema (element order,
// required attributes, value sets), as xmllint sees it.
TEST(DicomAuditMessage, EveryKindValidatesAgainstTheSchema) {
  const fs::path schema = fs::path(__FILE__).parent_path().parent_path().parent_path() / "data" /
                          "dicom-audit-message.rng";
  ASSERT_TRUE(fs::exists(schema)) << schema;
  std::vector<std::string> messages;
  const auto add = [&](const std::vector<std::string>& more) {
    messages.insert(messages.end(), more.begin(), more.end());
  };
  add(format_dicom_audit_messages(received(3, 2), source(), "PID<&>"));
  add(format_dicom_audit_messages(received(0, 1), source(), ""));
  add(format_dicom_audit_messages(forwarded(2, 1), source(), "P"));
  add(format_dicom_audit_messages(
      row("user:a", "instance.downloaded", "instance:1.2.3.4", "ok", "127.0.0.1:1",
          {{"study_instance_uid", "1.2.3"}, {"sop_class_uid", kCt}}),
      source(), "P"));
  for (const char* action : {"auth.login", "auth.login_failed", "auth.denied", "user.create",
                             "user.delete", "token.create", "token.revoke", "config.reload",
                             "destination.update", "certs.upload", "db.rotate_key", "queue.delete",
                             "association.rejected", "gateway.started", "gateway.stopped"}) {
    add(format_dicom_audit_messages(
        row("user:alice", action, "user:bob", "failed", "10.0.0.1:5", {{"reason", "x & y"}}),
        source(), ""));
  }
  {
    auto big = received(40, 0);
    json d = json::parse(big.details);
    for (int i = 0; i < 40; ++i) d["sop_classes"]["1.2.3." + std::to_string(i)] = 1;
    d["tls_subject"] = "CN=\xEF\xBF\xBE" + std::string(400, 'x');
    big.details = d.dump();
    add(format_dicom_audit_messages(big, source(), "P\xEF\xBF\xBF"));
  }
  DicomAuditSource bare;  // no site, no source id, no host name
  add(format_dicom_audit_messages(row("system", "config.reload", "", "ok", ""), bare, ""));
  ASSERT_GE(messages.size(), 20u);

  test::TempDir tmp{"gw-dicom-audit-test"};
  std::vector<std::string> argv{"xmllint", "--noout", "--relaxng", schema.string()};
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto xml = xml_of(messages[i]);
    ASSERT_FALSE(xml.empty()) << messages[i];
    const auto file = tmp.path() / (std::to_string(i) + ".xml");
    std::ofstream(file) << xml;
    argv.push_back(file.string());
  }
  const auto r = test::run_command(argv, {}, std::chrono::seconds(60));
  EXPECT_TRUE(r.ok()) << r.out << r.err;
}

}  // namespace
}  // namespace gw::audit
