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
#include "support/orthanc.h"
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
    const Orthanc::Tls tls{cert("orthanc"), key("orthanc"), chain_};
    return std::make_unique<Orthanc>(
        dir_.subdir("orthanc"), &tls,
        std::vector<Orthanc::Modality>{{"gw", "DICOM_GW", gateway_tls_port, true}});
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
      gw->log().find(
          "calling_ae=\"ORTHANC\" called_ae=\"DICOM_GW\" tls=true tls_subject=\"CN=orthanc\""),
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
