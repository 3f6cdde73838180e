// audit.syslog through a real gateway to a real collector: rsyslogd (Debian rsyslog +
// rsyslog-gnutls) with imtcp over TLS (RFC 5425, gtls driver, mutual TLS: it admits only the
// gateway's certificate by name) writing every message as received to a file.
//  - DICOM associations (accepted, refused), a SIGHUP reload, CLI user/token commands (another
//    process) and API logins (ok, failed) all reach the collector as well-formed RFC 5424
//    messages, one per audit row, with MSGID = action and the dicomgw@32473 SD-PARAMs; the
//    exporter's counters show in /metrics.
//  - The collector is down while events happen: they arrive, all of them and once each, when it
//    comes up; a gateway restart then sends only what is new (the cursor in data_dir).
//  - A collector whose certificate the gateway does not trust gets nothing; the log says why;
//    the gateway goes on serving.
//
// Duplicates: the cursor moves after the collector's TCP acknowledged a batch, so a row is
// sent again only when its batch was cut off (connection lost, gateway killed) before that;
// none of these tests cuts one off, so each row must arrive exactly once.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/test_pki.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kAdminPassword = "admin password, long enough";

/// A real rsyslogd on 127.0.0.1:`port`: imtcp over TLS (gtls, mode 1), which admits clients
/// whose certificate names gw.test (x509/name) and writes each message as received
/// (%rawmsg%) as one line of <dir>/audit.log.
class Rsyslog {
 public:
  Rsyslog(const fs::path& dir, std::uint16_t port, const fs::path& ca, const fs::path& cert,
          const fs::path& key, const std::string& permitted_peer = "gw.test")
      : dir_(dir), port_(port) {
    fs::create_directories(dir_);
    const fs::path conf = dir_ / "rsyslog.conf";
    std::ofstream(conf) << "global(workDirectory=\"" << dir_.string() << "\"\n"
                        << "  defaultNetstreamDriver=\"gtls\"\n"
                        << "  defaultNetstreamDriverCAFile=\"" << ca.string() << "\"\n"
                        << "  defaultNetstreamDriverCertFile=\"" << cert.string() << "\"\n"
                        << "  defaultNetstreamDriverKeyFile=\"" << key.string() << "\")\n"
                        << "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" "
                           "StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/name\" "
                           "PermittedPeer=[\""
                        << permitted_peer << "\"])\n"
                        << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << port << "\")\n"
                        << "template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n"
                        << "action(type=\"omfile\" file=\"" << log_path().string()
                        << "\" template=\"raw\")\n";
    process_ = std::make_unique<Process>(Process::start(
        {"rsyslogd", "-n", "-f", conf.string(), "-i", (dir_ / "rsyslogd.pid").string()}, {},
        dir_ / "logs"));
    if (!wait_for_port(port_, std::chrono::seconds(15))) {
      throw std::runtime_error("rsyslogd does not listen on " + std::to_string(port_) + ": " +
                               process_->read_stdout() + process_->read_stderr());
    }
  }
  ~Rsyslog() {
    if (process_) process_->terminate();
  }

  fs::path log_path() const { return dir_ / "audit.log"; }
  std::vector<std::string> lines() const {
    std::ifstream in(log_path());
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }
  std::string diagnostics() const { return process_->read_stdout() + process_->read_stderr(); }

 private:
  fs::path dir_;
  std::uint16_t port_;
  std::unique_ptr<Process> process_;
};

/// One audit row as the collector got it (parsed from an RFC 5424 line).
struct Received {
  int pri = 0;
  std::string msgid;
  std::int64_t id = 0;
  std::string actor;
  std::string action;
  std::string outcome;
  std::string details;
};

/// Parses a line written by Rsyslog; nullopt when it is not the RFC 5424 message we send.
std::optional<Received> parse(const std::string& line) {
  static const std::regex kMessage(
      R"re(<(\d{2})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) dicom-gw (\d+) (\S{1,32}) )re"
      R"re(\[dicomgw@32473 id="(\d+)" actor="((?:[^"\\]|\\.)*)" action="((?:[^"\\]|\\.)*)" )re"
      R"re(target="(?:[^"\\]|\\.)*" outcome="(ok|denied|failed)"(?: peer="[^"]*")?\] (\{.*\}))re");
  std::smatch m;
  if (!std::regex_match(line, m, kMessage)) return std::nullopt;
  Received r;
  r.pri = std::stoi(m[1]);
  r.msgid = m[5];
  r.id = std::stoll(m[6]);
  r.actor = m[7];
  r.action = m[8];
  r.outcome = m[9];
  r.details = m[10];
  return r;
}

/// The audit table, read-only: id -> (action, outcome).
std::map<std::int64_t, std::pair<std::string, std::string>> audit_rows(const fs::path& db) {
  std::map<std::int64_t, std::pair<std::string, std::string>> out;
  sqlite3* handle = nullptr;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(handle);
    ADD_FAILURE() << "cannot open " << db;
    return out;
  }
  sqlite3_busy_timeout(handle, 5000);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(handle, "SELECT id, action, outcome FROM audit", -1, &s, nullptr) ==
      SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      out[sqlite3_column_int64(s, 0)] = {reinterpret_cast<const char*>(sqlite3_column_text(s, 1)),
                                         reinterpret_cast<const char*>(sqlite3_column_text(s, 2))};
    }
  }
  sqlite3_finalize(s);
  sqlite3_close(handle);
  return out;
}

class AuditSyslogE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_.path() / "pki");
    // The gateway's certificate (tls.cert_file): also its client certificate towards the
    // collector, which admits it by the name gw.test.
    pki_->issue("gateway", certs::CertKind::kBoth, {"DNS:gw.test"});
    pki_->issue("collector", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    syslog_port_ = free_tcp_port();
  }

  void start_gateway(const std::string& syslog_extra = "") {
    GatewayOptions o;
    o.http = true;
    o.extra_yaml =
        "accept:\n  calling_ae_titles: [ECHOSCU]\n"
        "tls:\n  cert_file: " +
        pki_->cert("gateway").string() + "\n  key_file: " + pki_->key("gateway").string() +
        "\n  ca_file: " + pki_->chain().string() +
        "\naudit:\n  syslog: {enabled: true, host: 127.0.0.1, port: " +
        std::to_string(syslog_port_) + syslog_extra + "}\n";
    gw_ = Gateway::start(o);
  }

  std::unique_ptr<Rsyslog> start_collector(const std::string& name, const fs::path& cert,
                                           const fs::path& key,
                                           const std::string& permitted_peer = "gw.test") {
    return std::make_unique<Rsyslog>(dir_.path() / name, syslog_port_, pki_->chain(), cert, key,
                                     permitted_peer);
  }

  std::string cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{gateway_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--config", gw_->config_path().string()});
    const auto r = run_command_with_input(argv, input, {}, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok()) << join_argv(argv) << "\n" << r.out << r.err;
    return r.out;
  }

  /// curl: the HTTP status and body.
  std::pair<int, std::string> http(const std::string& method, const std::string& target,
                                   const std::string& token, const std::string& body = "") {
    std::vector<std::string> argv{"curl", "-sS",  "--max-time", "30",
                                  "-X",   method, "-w",         "\n%{http_code}"};
    if (!token.empty()) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + token});
    if (!body.empty()) {
      argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
    }
    argv.push_back("http://127.0.0.1:" + std::to_string(gw_->http_port()) + target);
    const auto r = run_command_with_input(argv, body, {}, std::chrono::seconds(60));
    if (!r.ok()) {
      ADD_FAILURE() << join_argv(argv) << ": " << r.err;
      return {0, ""};
    }
    const auto nl = r.out.rfind('\n');
    return {std::stoi(r.out.substr(nl + 1)), r.out.substr(0, nl)};
  }

  /// An admin user and token made with the CLI (two audit rows written by another process).
  std::string admin_token() {
    cli({"user", "add", "--name", "admin", "--role", "admin"}, std::string(kAdminPassword) + "\n");
    std::string token = cli({"user", "token", "--name", "admin", "--ttl", "1h"});
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    EXPECT_EQ(token.rfind("dgw_", 0), 0u) << token;
    return token;
  }

  std::string metrics(const std::string& token) {
    const auto [status, body] = http("GET", "/api/v1/metrics", token);
    EXPECT_EQ(status, 200) << body;
    return body;
  }

  /// Waits until the collector holds a message for every audit row in the table; returns
  /// the parsed messages by id (failing on lines that do not parse and on duplicates).
  std::map<std::int64_t, Received> wait_for_all_rows(const Rsyslog& collector) {
    std::map<std::int64_t, Received> got;
    const bool all = wait_until(
        [&] {
          got.clear();
          for (const auto& line : collector.lines()) {
            if (auto r = parse(line)) got.emplace(r->id, *r);
          }
          const auto rows = audit_rows(gw_->data_dir() / "index.db");
          return !rows.empty() && got.size() >= rows.size();
        },
        std::chrono::seconds(90), std::chrono::milliseconds(100));
    const auto rows = audit_rows(gw_->data_dir() / "index.db");
    EXPECT_TRUE(all) << "collector has " << got.size() << " of " << rows.size() << " rows\n"
                     << gw_->log() << collector.diagnostics();
    const auto lines = collector.lines();
    EXPECT_EQ(lines.size(), got.size()) << "duplicates or malformed lines";
    for (const auto& line : lines) EXPECT_TRUE(parse(line)) << "not RFC 5424 as sent: " << line;
    for (const auto& [id, row] : rows) {
      const auto it = got.find(id);
      if (it == got.end()) {
        ADD_FAILURE() << "audit row " << id << " (" << row.first << ") never reached the collector";
        continue;
      }
      EXPECT_EQ(it->second.msgid, row.first);
      EXPECT_EQ(it->second.action, row.first);
      EXPECT_EQ(it->second.outcome, row.second);
      EXPECT_EQ(it->second.pri, row.second == "ok" ? 85 : 84) << "authpriv.notice / .warning";
      EXPECT_TRUE(json::accept(it->second.details)) << it->second.details;
    }
    return got;
  }

  static std::map<std::string, int> by_action(const std::map<std::int64_t, Received>& got) {
    std::map<std::string, int> n;
    for (const auto& [id, r] : got) ++n[r.msgid];
    return n;
  }

  TempDir dir_{"gw-e2e-audit-syslog"};
  std::unique_ptr<TestPki> pki_;
  std::uint16_t syslog_port_ = 0;
  std::unique_ptr<Gateway> gw_;
};

TEST_F(AuditSyslogE2eTest, EveryAuditEventReachesRsyslogAsRfc5424OverTls) {
  auto collector = start_collector("rsyslog", pki_->cert("collector"), pki_->key("collector"));
  start_gateway();
  const std::string token = admin_token();  // user.create + token.create, by the CLI

  ASSERT_TRUE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW").ok());
  EXPECT_FALSE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW", {"-aet", "INTRUDER"}).ok());
  ASSERT_TRUE(gw_->process().signal_group(SIGHUP));  // config.reload
  EXPECT_EQ(http("POST", "/api/v1/auth/token", "",
                 json{{"username", "admin"}, {"password", kAdminPassword}}.dump())
                .first,
            200);
  EXPECT_EQ(http("POST", "/api/v1/auth/token", "",
                 json{{"username", "admin"}, {"password", "wrong password"}}.dump())
                .first,
            401);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto rows = audit_rows(gw_->data_dir() / "index.db");
        std::set<std::string> actions;
        for (const auto& [id, row] : rows) actions.insert(row.first);
        return actions.count("config.reload") == 1 && actions.count("association.rejected") == 1;
      },
      std::chrono::seconds(30)))
      << gw_->log();

  const auto got = wait_for_all_rows(*collector);
  const auto n = by_action(got);
  for (const char* action :
       {"user.create", "token.create", "association.accepted", "association.rejected",
        "config.reload", "auth.login", "auth.login_failed"}) {
    EXPECT_GE(n.count(action) ? n.at(action) : 0, 1) << action << "\n" << gw_->log();
  }
  for (const auto& [id, r] : got) {
    if (r.msgid == "association.rejected") {
      EXPECT_EQ(r.actor, "ae:INTRUDER");
      EXPECT_EQ(r.outcome, "denied");
      EXPECT_EQ(r.pri, 84);
    }
    if (r.msgid == "auth.login_failed") {
      EXPECT_EQ(r.outcome, "failed");
    }
  }
  // Nothing secret: the password never leaves in a message.
  for (const auto& line : collector->lines()) {
    EXPECT_EQ(line.find(kAdminPassword), std::string::npos) << line;
    EXPECT_EQ(line.find("wrong password"), std::string::npos) << line;
  }
  EXPECT_NE(gw_->log().find("event=audit_syslog_connected host=127.0.0.1 port=" +
                            std::to_string(syslog_port_) + " tls=true"),
            std::string::npos)
      << gw_->log();

  const auto m = metrics(token);
  EXPECT_NE(m.find("dicom_gw_audit_syslog_connected 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("dicom_gw_audit_syslog_connection_failures_total 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("dicom_gw_audit_syslog_sent_total "), std::string::npos) << m;
  EXPECT_EQ(gw_->stop(), 0);
}

TEST_F(AuditSyslogE2eTest, EventsWhileTheCollectorIsDownArriveOnceWhenItComesUp) {
  start_gateway();  // nothing listens on syslog_port_ yet
  const std::string token = admin_token();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW").ok());
  ASSERT_TRUE(gw_->process().signal_group(SIGHUP));
  ASSERT_TRUE(wait_until(
      [&] {
        const auto m = metrics(token);
        return m.find("dicom_gw_audit_syslog_connection_failures_total 0\n") == std::string::npos &&
               m.find("dicom_gw_audit_syslog_backlog 0\n") == std::string::npos;
      },
      std::chrono::seconds(30)))
      << gw_->log();
  EXPECT_NE(metrics(token).find("dicom_gw_audit_syslog_connected 0\n"), std::string::npos);
  EXPECT_NE(gw_->log().find("event=audit_syslog_failed"), std::string::npos) << gw_->log();
  EXPECT_NE(gw_->log().find("Connection refused"), std::string::npos) << gw_->log();

  auto collector = start_collector("rsyslog", pki_->cert("collector"), pki_->key("collector"));
  auto got = wait_for_all_rows(*collector);
  EXPECT_GE(by_action(got)["association.accepted"], 3);
  EXPECT_EQ(by_action(got)["config.reload"], 1);
  ASSERT_TRUE(wait_until(
      [&] { return metrics(token).find("dicom_gw_audit_syslog_backlog 0\n") != std::string::npos; },
      std::chrono::seconds(30)));

  // A restart resumes after the cursor in data_dir: only the new rows are sent.
  EXPECT_EQ(gw_->stop(), 0);
  const auto cursor_file = gw_->data_dir() / "audit-syslog.cursor";
  ASSERT_TRUE(fs::exists(cursor_file));
  const auto sent_before = collector->lines().size();
  const auto rows_before = audit_rows(gw_->data_dir() / "index.db").size();
  gw_->restart();
  ASSERT_TRUE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW").ok());
  ASSERT_TRUE(
      wait_until([&] { return audit_rows(gw_->data_dir() / "index.db").size() > rows_before; },
                 std::chrono::seconds(30)));
  got = wait_for_all_rows(*collector);  // also fails on any duplicate
  EXPECT_GT(collector->lines().size(), sent_before);
  EXPECT_EQ(gw_->stop(), 0);
}

/// The value of `tag` ("0010,0020") in dcmdump output, or "".
std::string dumped(const std::string& dump, const std::string& tag) {
  const std::regex re("\\(" + tag + "\\) \\w\\w \\[([^\\]]*)\\]");
  std::smatch m;
  return std::regex_search(dump, m, re) ? std::string(m[1]) : std::string();
}

// audit.syslog.format: dicom — what an IHE ATNA audit record repository receives: DICOM audit
// messages (PS3.15 A.5) in RFC 5424 with MSGID IHE+RFC-3881, every one with the structure of
// the DICOM audit message schema (xmllint); the received study names its patient by Patient ID
// (looked up in the index; the audit table holds none) and never by name.
TEST_F(AuditSyslogE2eTest, AnAtnaRepositoryGetsDicomAuditMessages) {
  auto collector = start_collector("rsyslog", pki_->cert("collector"), pki_->key("collector"));
  start_gateway(", format: dicom, audit_source_id: GW_TEST, enterprise_site_id: RADIOLOGY");
  const std::string token = admin_token();  // user.create + token.create: security alerts

  const auto files = generate_dicom(dir_.path() / "in", {"--count", "3", "--seed", "11"});
  const std::string dump =
      dcmdump(files[0], {"+P", "0010,0020", "+P", "0010,0010", "+P", "0020,000d"});
  const std::string patient_id = dumped(dump, "0010,0020");
  const std::string patient_name = dumped(dump, "0010,0010");
  const std::string study = dumped(dump, "0020,000d");
  ASSERT_FALSE(patient_id.empty() || study.empty()) << dump;
  const auto sent = run_storescu("127.0.0.1", gw_->port(), files, {"-aet", "ECHOSCU"});
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  EXPECT_EQ(http("POST", "/api/v1/auth/token", "",
                 json{{"username", "admin"}, {"password", "wrong password"}}.dump())
                .first,
            401);

  // Each message on one line: "<PRI>1 TS HOST dicom-gw PID IHE+RFC-3881 - BOM<AuditMessage>…".
  static const std::regex kLine(
      R"re(<(\d{2})>1 \S+ \S+ dicom-gw (\d+) IHE\+RFC-3881 - \xEF\xBB\xBF(<AuditMessage>.*</AuditMessage>))re");
  std::vector<std::string> xml;
  const auto find = [&](const std::string& part) {
    return std::any_of(xml.begin(), xml.end(),
                       [&](const std::string& x) { return x.find(part) != std::string::npos; });
  };
  const bool all = wait_until(
      [&] {
        xml.clear();
        for (const auto& line : collector->lines()) {
          std::smatch m;
          if (std::regex_match(line, m, kLine)) xml.push_back(m[3]);
        }
        return find(R"(<EventID csd-code="110104")") && find(R"(csd-code="110114")") &&
               find(R"(csd-code="110137")") && find(R"(csd-code="110120")");
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100));
  ASSERT_TRUE(all) << gw_->log() << collector->diagnostics();
  EXPECT_EQ(xml.size(), collector->lines().size()) << "every line is a DICOM audit message";

  // The transfer: action C, ECHOSCU → the gateway, the study with 3 CT instances, the patient.
  const auto transfer = std::find_if(xml.begin(), xml.end(), [](const std::string& x) {
    return x.find(R"(<EventID csd-code="110104")") != std::string::npos;
  });
  ASSERT_NE(transfer, xml.end());
  EXPECT_NE(transfer->find(R"(EventActionCode="C")"), std::string::npos) << *transfer;
  EXPECT_NE(transfer->find(R"(<ActiveParticipant UserID="ECHOSCU")"), std::string::npos);
  EXPECT_NE(transfer->find(R"(NetworkAccessPointID="127.0.0.1" NetworkAccessPointTypeCode="2")"),
            std::string::npos);
  EXPECT_NE(transfer->find(R"(AuditEnterpriseSiteID="RADIOLOGY" AuditSourceID="GW_TEST")"),
            std::string::npos);
  EXPECT_NE(transfer->find("ParticipantObjectID=\"" + study + "\""), std::string::npos);
  EXPECT_NE(transfer->find(R"(<SOPClass UID="1.2.840.10008.5.1.4.1.1.2" NumberOfInstances="3"/>)"),
            std::string::npos)
      << *transfer;
  EXPECT_NE(transfer->find("ParticipantObjectID=\"" + patient_id + "\""), std::string::npos);
  if (!patient_name.empty()) {
    for (const auto& line : collector->lines()) {
      EXPECT_EQ(line.find(patient_name), std::string::npos) << "a patient name was sent: " << line;
    }
  }
  for (const auto& line : collector->lines()) {
    EXPECT_EQ(line.find("wrong password"), std::string::npos) << line;
  }

  // Every message has the DICOM audit message schema's structure.
  const fs::path schema =
      fs::path(__FILE__).parent_path().parent_path() / "data" / "dicom-audit-message.rng";
  std::vector<std::string> argv{"xmllint", "--noout", "--relaxng", schema.string()};
  for (std::size_t i = 0; i < xml.size(); ++i) {
    const auto file = dir_.path() / ("audit-" + std::to_string(i) + ".xml");
    std::ofstream(file) << xml[i];
    argv.push_back(file.string());
  }
  const auto valid = run_command(argv, {}, std::chrono::seconds(60));
  EXPECT_TRUE(valid.ok()) << valid.out << valid.err;
  EXPECT_EQ(gw_->stop(), 0);
}

TEST_F(AuditSyslogE2eTest, AnUntrustedCollectorGetsNothingAndTheGatewayGoesOn) {
  // The collector's certificate comes from a CA the gateway does not trust.
  const fs::path other = dir_.path() / "other-ca";
  ASSERT_TRUE(certs::init_ca(other, certs::CaOptions{}).ok());
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kServer;
  o.common_name = "collector";
  o.sans = {"IP:127.0.0.1"};
  o.ca_dir = other;
  pki_->issue_test("impostor", o);
  auto collector = start_collector("rsyslog", pki_->cert("impostor"), pki_->key("impostor"));
  start_gateway();
  const std::string token = admin_token();
  ASSERT_TRUE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW").ok());

  ASSERT_TRUE(wait_until(
      [&] {
        return gw_->log().find("event=audit_syslog_failed") != std::string::npos &&
               metrics(token).find("dicom_gw_audit_syslog_backlog 0\n") == std::string::npos;
      },
      std::chrono::seconds(30)))
      << gw_->log();
  const auto log = gw_->log();
  EXPECT_NE(log.find("TLS handshake with 127.0.0.1 failed"), std::string::npos) << log;
  EXPECT_NE(log.find("unknown CA"), std::string::npos) << log;
  EXPECT_EQ(log.find("event=audit_syslog_connected"), std::string::npos) << log;
  // Healthy: still serving DICOM and the API.
  ASSERT_TRUE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW").ok());
  const auto m = metrics(token);
  EXPECT_NE(m.find("dicom_gw_audit_syslog_connected 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("dicom_gw_audit_syslog_sent_total 0\n"), std::string::npos) << m;
  EXPECT_EQ(gw_->stop(), 0);  // promptly, while the exporter backs off
  EXPECT_TRUE(collector->lines().empty());
  EXPECT_FALSE(fs::exists(gw_->data_dir() / "audit-syslog.cursor"));
}

TEST_F(AuditSyslogE2eTest, ACollectorThatRefusesOurCertificateGetsItsRowsOnceItAdmitsUs) {
  // TLS 1.3: the handshake completes before the collector checks our certificate; it then
  // drops the connection. Rows written meanwhile must not count as sent.
  auto refusing =
      start_collector("refusing", pki_->cert("collector"), pki_->key("collector"), "other.name");
  start_gateway();
  const std::string token = admin_token();
  ASSERT_TRUE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW").ok());
  ASSERT_TRUE(wait_until(
      [&] {
        return gw_->log().find("refused the connection after the TLS handshake") !=
                   std::string::npos &&
               metrics(token).find("dicom_gw_audit_syslog_backlog 0\n") == std::string::npos;
      },
      std::chrono::seconds(60)))
      << gw_->log() << refusing->diagnostics();
  EXPECT_NE(metrics(token).find("dicom_gw_audit_syslog_sent_total 0\n"), std::string::npos);
  EXPECT_TRUE(refusing->lines().empty());
  EXPECT_FALSE(fs::exists(gw_->data_dir() / "audit-syslog.cursor"));

  refusing.reset();
  auto admitting = start_collector("admitting", pki_->cert("collector"), pki_->key("collector"));
  const auto got = wait_for_all_rows(*admitting);
  EXPECT_GE(by_action(got)["association.accepted"], 1);
  EXPECT_EQ(gw_->stop(), 0);
}

}  // namespace
}  // namespace gw::test
