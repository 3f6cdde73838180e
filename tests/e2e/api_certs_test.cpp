// Certificate upload and info through a real `dicom-gw serve` with a DICOM TLS listener and the
// REST API, curl as the client: a valid upload is served by the TLS listener at once (openssl
// s_client sees the new serial, same process, no restart); a mismatched key, an expired
// certificate, a 1024-bit key and garbage are refused with 422 and their reasons while the old
// certificate keeps being served.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/gateway.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kAdminPassword = "admin password, long enough";

std::string strip_leading_zeros(std::string hex) {
  const auto pos = hex.find_first_not_of('0');
  return pos == std::string::npos ? "0" : hex.substr(pos);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Answer {
  int status = 0;
  json body;
};

class ApiCertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_.path() / "pki");
    old_serial_ =
        pki_->issue("server", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    pki_->issue("client", certs::CertKind::kClient);
    // The gateway serves copies: uploads replace these, never the PKI's own files.
    live_ = dir_.path() / "live";
    fs::create_directories(live_);
    fs::copy_file(pki_->cert("server"), live_ / "server.pem");
    fs::copy_file(pki_->key("server"), live_ / "server.key");
    GatewayOptions o;
    o.http = true;
    o.tls_yaml = "tls:\n  enabled: true\n  cert_file: " + (live_ / "server.pem").string() +
                 "\n  key_file: " + (live_ / "server.key").string() +
                 "\n  ca_file: " + pki_->chain().string() + "\n";
    gw_ = Gateway::start(o);
    cli({"user", "add", "--name", "admin", "--role", "admin"}, std::string(kAdminPassword) + "\n");
    admin_ = trim(cli({"user", "token", "--name", "admin", "--ttl", "1h"}));
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

  /// curl with `form` as -F fields ("cert_file=@/path"); the token in a header.
  Answer curl(const std::string& method, const std::string& target,
              const std::vector<std::string>& form = {}) {
    std::vector<std::string> argv{
        "curl", "-sS",           "--max-time", "30",
        "-X",   method,          "-H",         "Authorization: Bearer " + admin_,
        "-w",   "\n%{http_code}"};
    for (const auto& f : form) argv.insert(argv.end(), {"-F", f});
    argv.push_back("http://127.0.0.1:" + std::to_string(gw_->http_port()) + target);
    const auto r = run_command(argv, {}, std::chrono::seconds(60));
    Answer a;
    if (!r.ok()) {
      ADD_FAILURE() << join_argv(argv) << ": " << r.err;
      return a;
    }
    const auto nl = r.out.rfind('\n');
    a.status = std::stoi(r.out.substr(nl + 1));
    a.body = json::parse(r.out.substr(0, nl), nullptr, false);
    return a;
  }

  Answer upload(const std::string& cert_name, const std::string& key_name) {
    return curl("POST", "/api/v1/certs/upload",
                {"cert_file=@" + pki_->cert(cert_name).string(),
                 "key_file=@" + pki_->key(key_name).string()});
  }

  /// The serial the DICOM TLS listener presents to a new connection (mutual TLS: as "client").
  std::string served_serial() const {
    const std::string cmd =
        "openssl s_client -connect 127.0.0.1:" + std::to_string(gw_->tls_port()) + " -cert " +
        pki_->cert("client").string() + " -key " + pki_->key("client").string() + " -CAfile " +
        pki_->chain().string() + " </dev/null 2>/dev/null | openssl x509 -noout -serial";
    auto r = run_command({"sh", "-c", cmd}, {}, std::chrono::seconds(20));
    const std::string out = trim(r.out);
    const std::string prefix = "serial=";
    return out.rfind(prefix, 0) == 0 ? strip_leading_zeros(out.substr(prefix.size())) : out;
  }

  TempDir dir_{"gw-e2e-api-certs"};
  std::unique_ptr<TestPki> pki_;
  fs::path live_;
  std::unique_ptr<Gateway> gw_;
  std::string admin_;
  std::string old_serial_;
};

TEST_F(ApiCertsTest, UploadIsServedAtOnceAndBadUploadsAreRefused) {
  ASSERT_EQ(served_serial(), strip_leading_zeros(old_serial_));
  auto info = curl("GET", "/api/v1/certs/info");
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(info.body["serial"], old_serial_);
  EXPECT_EQ(info.body["status"], "valid");
  EXPECT_EQ(info.body["chain"]["verified"], true);
  EXPECT_EQ(info.body["reload_pending"], false);
  EXPECT_EQ(info.body["served"]["serial"].get<std::string>().empty(), false);

  // Refused: each with its reason, nothing changes.
  pki_->issue("other", certs::CertKind::kServer);
  certs::TestCertificateOptions expired;
  expired.not_before = std::chrono::system_clock::now() - std::chrono::hours(48);
  expired.not_after = std::chrono::system_clock::now() - std::chrono::hours(24);
  pki_->issue_test("expired", expired);
  certs::TestCertificateOptions weak;
  weak.key = {certs::KeySpec::Type::kRsa1024, true};
  pki_->issue_test("weak", weak);
  const fs::path garbage = dir_.path() / "garbage.pem";
  std::ofstream(garbage) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n";
  const std::string files_before = [&] {
    std::ifstream a(live_ / "server.pem"), b(live_ / "server.key");
    return std::string(std::istreambuf_iterator<char>(a), {}) +
           std::string(std::istreambuf_iterator<char>(b), {});
  }();
  struct Case {
    std::string name;
    Answer answer;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"mismatched key", upload("server", "other"), "private key does not match"},
      {"expired", upload("expired", "expired"), "expired on"},
      {"1024-bit key", upload("weak", "weak"), "key too small"},
      {"garbage",
       curl("POST", "/api/v1/certs/upload",
            {"cert_file=@" + garbage.string(), "key_file=@" + garbage.string()}),
       "cannot parse certificate"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.answer.status, 422) << c.answer.body;
    ASSERT_TRUE(c.answer.body["details"].is_array()) << c.answer.body;
    EXPECT_NE(c.answer.body["details"].dump().find(c.reason), std::string::npos) << c.answer.body;
    EXPECT_EQ(served_serial(), strip_leading_zeros(old_serial_));
  }
  {
    std::ifstream a(live_ / "server.pem"), b(live_ / "server.key");
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}) +
                  std::string(std::istreambuf_iterator<char>(b), {}),
              files_before);
  }

  // Accepted: the next handshake already gets the new certificate, same process.
  const pid_t pid = gw_->process().pid();
  const auto new_serial = pki_->issue("server2", certs::CertKind::kServer, {"DNS:localhost"});
  auto ok =
      curl("POST", "/api/v1/certs/upload",
           {"cert_file=@" + pki_->cert("server2").string(),
            "key_file=@" + pki_->key("server2").string(), "ca_file=@" + pki_->chain().string()});
  const auto accepted_at = std::chrono::steady_clock::now();
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body["serial"], new_serial);
  EXPECT_TRUE(wait_until([&] { return served_serial() == strip_leading_zeros(new_serial); },
                         std::chrono::seconds(1), std::chrono::milliseconds(50)))
      << gw_->log();
  EXPECT_LT(std::chrono::steady_clock::now() - accepted_at, std::chrono::seconds(2));
  EXPECT_EQ(gw_->process().pid(), pid);
  EXPECT_TRUE(gw_->process().running());
  EXPECT_EQ(fs::status(live_ / "server.key").permissions() & fs::perms::all, fs::perms(0600));
  EXPECT_EQ(fs::status(live_ / "server.pem").permissions() & fs::perms::all, fs::perms(0644));

  info = curl("GET", "/api/v1/certs/info");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(info.body["serial"], new_serial);
  EXPECT_EQ(strip_leading_zeros(info.body["served"]["serial"]), strip_leading_zeros(new_serial));
  EXPECT_EQ(info.body["reload_pending"], false);

  // Audited, without key material.
  auto audit = curl("GET", "/api/v1/audit?action=certs.upload");
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_NE(audit.body.dump().find(new_serial), std::string::npos) << audit.body;
  EXPECT_EQ(audit.body.dump().find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(gw_->log().find("PRIVATE KEY"), std::string::npos);
}

}  // namespace
}  // namespace gw::test
