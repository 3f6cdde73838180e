// The audit trail of DICOM activity and of logins through a real gateway (ADR 006): storescu
// sends two studies -> one instances.received row per (association, study) with the UIDs and
// counts; the gateway forwards them to DCMTK storescp -> instances.forwarded rows; a calling
// AE title not on the allow-list, an untrusted client certificate and plain DICOM on the TLS
// port -> association.rejected rows and the reason labels in /metrics; 20 wrong passwords ->
// a couple of auth.login_failed rows that still count all 20; and no patient name anywhere.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
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

struct Answer {
  int status = 0;
  std::string body;
  json body_json() const { return json::parse(body, nullptr, false); }
};

/// One request with curl: the status on the last line of stdout (-w), the body before it.
Answer curl(std::uint16_t port, const std::string& method, const std::string& target,
            const std::string& token, const std::string& body = "") {
  std::vector<std::string> argv{"curl", "-sS",  "--max-time", "30",
                                "-X",   method, "-w",         "\n%{http_code}"};
  if (!token.empty()) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + token});
  if (!body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + target);
  const auto r = run_command_with_input(argv, body, {}, std::chrono::seconds(60));
  Answer a;
  if (!r.ok()) {
    ADD_FAILURE() << join_argv(argv) << ": " << r.err;
    return a;
  }
  const auto nl = r.out.rfind('\n');
  a.body = r.out.substr(0, nl);
  a.status = std::stoi(r.out.substr(nl + 1));
  return a;
}

/// The Study Instance UID of a file (dcmdump +P 0020,000d: "(0020,000d) UI [1.2.3] # ...").
std::string study_uid_of(const fs::path& file) {
  const auto out = dcmdump(file, {"+P", "0020,000d"});
  const auto open = out.find('[');
  const auto close = out.find(']', open);
  return open == std::string::npos ? "" : out.substr(open + 1, close - open - 1);
}

class AuditE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_.path());
    pki_->issue("server", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    pki_->issue("client", certs::CertKind::kClient, {});
    const fs::path other = dir_.path() / "other-ca";
    ASSERT_TRUE(certs::init_ca(other, certs::CaOptions{}).ok());
    certs::TestCertificateOptions stranger;
    stranger.kind = certs::CertKind::kClient;
    stranger.ca_dir = other;
    pki_->issue_test("stranger", stranger);

    scp_ = std::make_unique<StoreScp>(start_storescp(0, dir_.path() / "pacs"));
    GatewayOptions o;
    o.http = true;
    o.tls_yaml = "tls:\n  enabled: true\n  cert_file: " + pki_->cert("server").string() +
                 "\n  key_file: " + pki_->key("server").string() +
                 "\n  ca_file: " + pki_->chain().string() + "\n";
    o.extra_yaml =
        "accept:\n  calling_ae_titles: [STORESCU, ECHOSCU]\n"
        "destinations:\n  - {name: PACS, ae_title: STORESCP, host: 127.0.0.1, port: " +
        std::to_string(scp_->port) +
        "}\nroutes:\n  - {name: all, destinations: [PACS]}\n"
        "forwarding:\n  association_idle_timeout: 0s\n";
    gw_ = Gateway::start(o);
    cli({"user", "add", "--name", "admin", "--role", "admin"}, std::string(kAdminPassword) + "\n");
    admin_ = cli({"user", "token", "--name", "admin", "--ttl", "1h"});
    while (!admin_.empty() && (admin_.back() == '\n' || admin_.back() == '\r')) admin_.pop_back();
    ASSERT_EQ(admin_.rfind("dgw_", 0), 0u) << admin_;
  }

  std::string cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{gateway_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--config", gw_->config_path().string()});
    const auto r = run_command_with_input(argv, input, {}, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok()) << join_argv(argv) << "\n" << r.out << r.err;
    return r.out;
  }

  Answer api(const std::string& method, const std::string& target, const std::string& body = "") {
    return curl(gw_->http_port(), method, target, admin_, body);
  }

  json events(const std::string& action) {
    auto r = api("GET", "/api/v1/audit?limit=1000&action=" + action);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body_json()["events"];
  }

  /// The API returns an event's details as a JSON object.
  static json details(const json& event) { return event.value("details", json::object()); }

  /// Sum of details[key] over `rows`.
  static std::int64_t sum(const json& rows, const std::string& key) {
    std::int64_t n = 0;
    for (const auto& e : rows) n += details(e).value(key, std::int64_t{0});
    return n;
  }

  std::vector<std::string> dcmtk_tls(const std::string& name) const {
    return {"+tls", pki_->key(name).string(), pki_->cert(name).string(), "+cf",
            pki_->chain().string()};
  }

  TempDir dir_{"gw-e2e-audit"};
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<StoreScp> scp_;
  std::unique_ptr<Gateway> gw_;
  std::string admin_;
};

TEST_F(AuditE2eTest, DicomActivityIsAuditedPerAssociationAndStudy) {
  const auto files =
      generate_dicom(dir_.path() / "data", {"--count", "5", "--studies", "2", "--seed", "61"});
  std::map<std::string, std::set<std::string>> sent;  // study -> SOP Instance UIDs
  for (const auto& f : files) sent[study_uid_of(f)].insert(sop_instance_uid_of(f));
  ASSERT_EQ(sent.size(), 2u);
  const auto stored = run_storescu("127.0.0.1", gw_->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_TRUE(stored.ok()) << stored.out << stored.err;

  // instances.received: written when the association ends (the writer is asynchronous).
  json received;
  ASSERT_TRUE(wait_until(
      [&] {
        received = events("instances.received");
        return sum(received, "instances") == 5;
      },
      std::chrono::seconds(20)))
      << received.dump(2);
  ASSERT_EQ(received.size(), 2u) << "one row per (association, study)";
  for (const auto& e : received) {
    const auto d = details(e);
    const std::string study = e["target"];
    ASSERT_TRUE(sent.count(study)) << study;
    const auto uids = d["sop_instance_uids"].get<std::set<std::string>>();
    EXPECT_EQ(uids, sent[study]);
    EXPECT_EQ(d["instances"], sent[study].size());
    EXPECT_EQ(d["failed"], 0);
    EXPECT_GT(d["bytes"].get<std::int64_t>(), 0);
    EXPECT_EQ(d["calling_ae"], "STORESCU");
    EXPECT_EQ(d["called_ae"], "DICOM_GW");
    EXPECT_EQ(d["end"], "released");
    EXPECT_EQ(e["actor"], "ae:STORESCU");
    EXPECT_EQ(e["outcome"], "ok");
  }
  const auto accepted = events("association.accepted");
  ASSERT_FALSE(accepted.empty());
  EXPECT_EQ(details(accepted[0])["calling_ae"], "STORESCU");
  EXPECT_FALSE(accepted[0]["peer_address"].get<std::string>().empty());

  // instances.forwarded: the forwarder's association to storescp, per study.
  json forwarded;
  ASSERT_TRUE(wait_until(
      [&] {
        forwarded = events("instances.forwarded");
        return sum(forwarded, "instances") == 5;
      },
      std::chrono::seconds(60)))
      << forwarded.dump(2) << gw_->log();
  std::set<std::string> forwarded_studies;
  for (const auto& e : forwarded) {
    const auto d = details(e);
    EXPECT_EQ(d["destination"], "PACS");
    EXPECT_EQ(d["called_ae"], "STORESCP");
    EXPECT_EQ(d["dead"], 0);
    forwarded_studies.insert(e["target"].get<std::string>());
    for (const auto& uid : d["sop_instance_uids"]) {
      EXPECT_TRUE(sent[e["target"]].count(uid.get<std::string>())) << uid;
    }
  }
  EXPECT_EQ(forwarded_studies.size(), 2u);
  EXPECT_EQ(scp_->received_files().size(), 5u);

  // Refusals: a calling AE title not on the allow-list, an untrusted client certificate, plain
  // DICOM spoken to the TLS port.
  EXPECT_FALSE(run_echoscu("127.0.0.1", gw_->port(), "DICOM_GW", {"-aet", "INTRUDER"}).ok());
  EXPECT_FALSE(run_echoscu("127.0.0.1", gw_->tls_port(), "DICOM_GW", dcmtk_tls("stranger")).ok());
  EXPECT_FALSE(run_echoscu("127.0.0.1", gw_->tls_port(), "DICOM_GW").ok());
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw_->tls_port(), "DICOM_GW", dcmtk_tls("client")).ok());

  std::map<std::string, json> rejected;  // details.reason -> row
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& e : events("association.rejected")) rejected[details(e)["reason"]] = e;
        return rejected.size() >= 3;
      },
      std::chrono::seconds(20)));
  ASSERT_TRUE(rejected.count("calling_ae_not_allowed"));
  EXPECT_EQ(rejected["calling_ae_not_allowed"]["actor"], "ae:INTRUDER");
  EXPECT_EQ(rejected["calling_ae_not_allowed"]["outcome"], "denied");
  EXPECT_EQ(details(rejected["calling_ae_not_allowed"])["stage"], "associate");
  ASSERT_TRUE(rejected.count("unknown_ca"));
  EXPECT_EQ(details(rejected["unknown_ca"])["stage"], "tls_handshake");
  EXPECT_EQ(details(rejected["unknown_ca"])["listener"], "secure");
  EXPECT_TRUE(rejected.count("plain_dicom_on_tls_port"));

  const auto metrics = api("GET", "/api/v1/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* line :
       {"dicom_gw_associations_rejected_total{reason=\"calling_ae_not_allowed\"} 1\n",
        "dicom_gw_associations_rejected_total{reason=\"peer_binding\"} 0\n",
        "dicom_gw_tls_handshake_failures_total{reason=\"unknown_ca\"} 1\n",
        "dicom_gw_tls_handshake_failures_total{reason=\"plain_dicom_on_tls_port\"} 1\n",
        "dicom_gw_tls_handshake_failures_total{reason=\"expired\"} 0\n",
        "dicom_gw_audit_dropped_total 0\n", "dicom_gw_tls_certificate_days_until_expiry "}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << metrics.body;
  }

  // No patient names or IDs in any audit row (gen_dicom: TEST^PATIENT^nnnn / GWTESTnnnn).
  const auto all = api("GET", "/api/v1/audit?limit=1000");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.body.find("TEST^PATIENT"), std::string::npos);
  EXPECT_EQ(all.body.find("GWTEST"), std::string::npos);
}

TEST_F(AuditE2eTest, BruteForceIsFoldedIntoFewRowsThatCountEveryAttempt) {
  cli({"user", "add", "--name", "vic", "--role", "viewer"}, "viewer password, long enough\n");
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r =
        curl(gw_->http_port(), "POST", "/api/v1/auth/token", "",
             json{{"username", "vic"}, {"password", "guess " + std::to_string(i)}}.dump());
    if (r.status == 401 || r.status == 429) ++refused;
  }
  EXPECT_EQ(refused, 20);
  auto failed = events("auth.login_failed");
  // The first wrong password and the first refusal of the rate limiter (its own key: the
  // address alone, so fresh user names cannot open a row each) are written at once; the rest
  // are folded.
  ASSERT_EQ(failed.size(), 2u) << "the first of each key at once, the rest folded: "
                               << failed.dump(2);
  for (const auto& e : failed) EXPECT_EQ(details(e)["attempts"], 1);

  // The folded attempts are written when the minute is over or the API stops: stop, start
  // again, and the trail counts all 20.
  ASSERT_EQ(gw_->stop(), 0) << gw_->log();
  gw_->restart();
  failed = events("auth.login_failed");
  EXPECT_LE(failed.size(), 4u) << failed.dump(2);
  EXPECT_EQ(sum(failed, "attempts"), 20) << failed.dump(2);
  for (const auto& e : failed) EXPECT_EQ(e["target"], "user:vic");
}

}  // namespace
}  // namespace gw::test
