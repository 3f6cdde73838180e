// Orthanc interop over DICOM TLS (issue 3): a real Orthanc (Debian package `orthanc`) with
// DicomTlsEnabled and mutual TLS, certificates from the test PKI (gw::certs).
//  (a) Orthanc sends to the gateway's TLS listener (REST: POST /instances, then
//      POST /modalities/gw/store): the instances are in the gateway's index;
//  (b) `dicom-gw send --tls` stores into Orthanc: GET /statistics counts them.
// Orthanc's REST API is reached with curl on 127.0.0.1 (plain HTTP, no auth, loopback only).

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "certs/pki.h"
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

constexpr const char* kOrthancBinary = "/usr/sbin/Orthanc";

/// One Orthanc process with DICOM TLS, on free loopback ports, stopped by PID.
class Orthanc {
 public:
  struct Tls {
    fs::path cert, key, trusted;
  };

  Orthanc(const fs::path& dir, const Tls& tls, std::uint16_t gateway_tls_port)
      : dir_(dir), http_port_(free_tcp_port()), dicom_port_(free_tcp_port()) {
    fs::create_directories(dir / "storage");
    json config = {
        {"Name", "gw-e2e"},
        {"StorageDirectory", (dir / "storage").string()},
        {"IndexDirectory", (dir / "storage").string()},
        {"DicomAet", "ORTHANC"},
        {"DicomPort", dicom_port_},
        {"HttpPort", http_port_},
        {"RemoteAccessAllowed", false},
        {"AuthenticationEnabled", false},
        {"DicomTlsEnabled", true},
        {"DicomTlsCertificate", tls.cert.string()},
        {"DicomTlsPrivateKey", tls.key.string()},
        {"DicomTlsTrustedCertificates", tls.trusted.string()},
        {"DicomTlsRemoteCertificateRequired", true},
        {"DicomModalities",
         {{"gw",
           {{"AET", "DICOM_GW"},
            {"Host", "127.0.0.1"},
            {"Port", gateway_tls_port},
            {"UseDicomTls", true}}}}},
    };
    std::ofstream(dir / "orthanc.json") << config.dump(2);
    ProcessOptions o;
    o.argv = {kOrthancBinary, (dir / "orthanc.json").string()};
    o.env = {{"TCP_NODELAY", "1"}};
    o.log_dir = dir;  // orthanc.stdout / orthanc.stderr in the test's temp dir
    o.log_name = "orthanc";
    process_ = std::make_unique<Process>(Process::start(o));
    if (!wait_until([&]() { return port_accepts(http_port_) && port_accepts(dicom_port_); },
                    std::chrono::seconds(30))) {
      throw std::runtime_error("Orthanc did not start:\n" + log());
    }
  }
  ~Orthanc() { stop(); }

  int stop() { return process_ ? process_->terminate(std::chrono::seconds(15)) : 0; }
  std::uint16_t dicom_port() const { return dicom_port_; }
  std::string log() const { return process_ ? process_->read_stderr() : ""; }

  /// curl ARGS http://127.0.0.1:PORT/PATH; the body parsed as JSON (null if it is not JSON).
  json rest(const std::string& method, const std::string& path,
            std::vector<std::string> body_args = {}) const {
    std::vector<std::string> argv{"curl", "-sS", "--fail-with-body", "--max-time", "120",
                                  "-X",   method};
    argv.insert(argv.end(), body_args.begin(), body_args.end());
    argv.push_back("http://127.0.0.1:" + std::to_string(http_port_) + path);
    const auto r = run_command(argv, {}, std::chrono::seconds(150));
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.err << r.out;
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }
  std::string upload(const fs::path& file) const {
    const json reply = rest("POST", "/instances", {"--data-binary", "@" + file.string()});
    return reply.is_object() && reply.contains("ID") ? reply["ID"].get<std::string>() : "";
  }
  std::int64_t count_instances() const {
    const json stats = rest("GET", "/statistics");
    return stats.is_object() && stats.contains("CountInstances")
               ? stats["CountInstances"].get<std::int64_t>()
               : -1;
  }

 private:
  fs::path dir_;
  std::uint16_t http_port_;
  std::uint16_t dicom_port_;
  std::unique_ptr<Process> process_;
};

class OrthancTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // scripts/setup.sh --test installs Orthanc: its absence is a broken setup, not a skip.
    ASSERT_TRUE(fs::exists(kOrthancBinary)) << "orthanc is not installed (scripts/setup.sh --test)";
    pki_ = std::make_unique<TestPki>(dir_.path());
    chain_ = pki_->chain();
    pki_->issue("server", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    pki_->issue("client", certs::CertKind::kClient);
    // Orthanc uses one certificate as SCP and SCU: both purposes, and our client checks the
    // address it connects to.
    pki_->issue("orthanc", certs::CertKind::kBoth, {"DNS:localhost", "IP:127.0.0.1"});
  }

  fs::path cert(const std::string& name) const { return pki_->cert(name); }
  fs::path key(const std::string& name) const { return pki_->key(name); }

  std::unique_ptr<Gateway> start_gateway() {
    GatewayOptions o;
    o.tls_yaml = "tls:\n  enabled: true\n  cert_file: " + cert("server").string() +
                 "\n  key_file: " + key("server").string() + "\n  ca_file: " + chain_.string() +
                 "\n";
    return Gateway::start(o);
  }

  std::unique_ptr<Orthanc> start_orthanc(std::uint16_t gateway_tls_port) {
    return std::make_unique<Orthanc>(dir_.subdir("orthanc"),
                                     Orthanc::Tls{cert("orthanc"), key("orthanc"), chain_},
                                     gateway_tls_port);
  }

  TempDir dir_{"gw-e2e-orthanc-tls"};
  std::unique_ptr<TestPki> pki_;
  fs::path chain_;
};

TEST_F(OrthancTlsTest, OrthancStoresToTheGatewayOverTls) {
  const auto files = generate_dicom(dir_.path() / "source", {"--count", "4", "--seed", "41"});
  auto gw = start_gateway();
  auto orthanc = start_orthanc(gw->tls_port());

  json ids = json::array();
  for (const auto& f : files) {
    const std::string id = orthanc->upload(f);
    ASSERT_FALSE(id.empty()) << f << "\n" << orthanc->log();
    ids.push_back(id);
  }
  const fs::path body = dir_.path() / "store.json";
  std::ofstream(body) << ids.dump();
  const json reply =
      orthanc->rest("POST", "/modalities/gw/store", {"--data-binary", "@" + body.string()});
  EXPECT_TRUE(reply.is_object()) << reply.dump() << "\n" << orthanc->log() << gw->log();

  EXPECT_TRUE(
      wait_until([&]() { return gw->count_instances() == static_cast<std::int64_t>(files.size()); },
                 std::chrono::seconds(30)))
      << gw->log() << "\n"
      << orthanc->log();
  const auto stored = gw->sop_instance_uids();
  for (const auto& f : files) {
    EXPECT_NE(std::find(stored.begin(), stored.end(), sop_instance_uid_of(f)), stored.end()) << f;
  }
  // It came over mutual TLS, with Orthanc's certificate.
  EXPECT_NE(
      gw->log().find("calling_ae=ORTHANC called_ae=DICOM_GW tls=true tls_subject=\"CN=orthanc\""),
      std::string::npos)
      << gw->log();
  EXPECT_EQ(orthanc->stop(), 0);
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(OrthancTlsTest, GatewaySendStoresIntoOrthancOverTls) {
  const auto files = generate_dicom(dir_.path() / "source", {"--count", "5", "--seed", "42"});
  auto orthanc = start_orthanc(/*gateway_tls_port=*/1);  // not used in this direction
  ASSERT_EQ(orthanc->count_instances(), 0);

  std::vector<std::string> argv{gateway_binary().string(),
                                "send",
                                "--aec",
                                "ORTHANC",
                                "--no-progress",
                                "--tls",
                                "--cert",
                                cert("client").string(),
                                "--key",
                                key("client").string(),
                                "--ca",
                                chain_.string(),
                                "127.0.0.1",
                                std::to_string(orthanc->dicom_port())};
  for (const auto& f : files) argv.push_back(f.string());
  const auto r = run_command(argv, {}, std::chrono::seconds(120));
  EXPECT_TRUE(r.ok()) << r.out << r.err << "\n" << orthanc->log();
  EXPECT_EQ(orthanc->count_instances(), static_cast<std::int64_t>(files.size())) << orthanc->log();

  // Without a client certificate Orthanc (DicomTlsRemoteCertificateRequired) refuses us.
  const auto refused = run_command(
      {gateway_binary().string(), "send", "--aec", "ORTHANC", "--no-progress", "--tls", "--ca",
       chain_.string(), "127.0.0.1", std::to_string(orthanc->dicom_port()), files[0].string()},
      {}, std::chrono::seconds(60));
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_EQ(orthanc->stop(), 0);
}

}  // namespace
}  // namespace gw::test
