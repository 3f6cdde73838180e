#include "certs/x509_info.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "certs/pki.h"
#include "support/temp_dir.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;
using std::chrono::days;

/// True if some problem contains `text`; prints all of them otherwise.
::testing::AssertionResult has_problem(const CheckReport& report, const std::string& text) {
  for (const std::string& problem : report.problems) {
    if (problem.find(text) != std::string::npos) return ::testing::AssertionSuccess();
  }
  auto failure = ::testing::AssertionFailure() << "no problem contains '" << text << "'; got:";
  for (const std::string& problem : report.problems) failure << "\n  " << problem;
  return failure;
}

/// `text` has the shape of `pattern`: '9' a digit, 'F' an upper-case hex digit, else literal.
/// (No std::regex: GCC 12 warns inside it under sanitizers.)
bool shaped_like(const std::string& text, const std::string& pattern) {
  if (text.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool digit = c >= '0' && c <= '9';
    if (pattern[i] == '9' && !digit) return false;
    if (pattern[i] == 'F' && !digit && !(c >= 'A' && c <= 'F')) return false;
    if (pattern[i] != '9' && pattern[i] != 'F' && c != pattern[i]) return false;
  }
  return true;
}

std::string all_problems(const CheckReport& report) {
  std::string out;
  for (const std::string& problem : report.problems) out += "\n  " + problem;
  return out;
}

/// One CA (with a good server and client certificate) per test suite: key generation is the
/// slow part, and no test changes these files.
class X509InfoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new gw::test::TempDir("gw-x509-test");
    ASSERT_TRUE(init_ca(ca_dir(), CaOptions{}).ok());
    IssueOptions server;
    server.kind = CertKind::kServer;
    server.common_name = "pacs.example.org";
    server.sans = {"DNS:pacs.example.org", "IP:10.0.0.5"};
    server.out_cert = path("server.pem");
    server.out_key = path("server.key");
    ASSERT_TRUE(issue(ca_dir(), server).ok());
    IssueOptions client;
    client.kind = CertKind::kClient;
    client.common_name = "SCU_DCM1";
    client.out_cert = path("client.pem");
    client.out_key = path("client.key");
    ASSERT_TRUE(issue(ca_dir(), client).ok());
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static fs::path path(const std::string& name) { return tmp_->path() / name; }
  static fs::path ca_dir() { return tmp_->path() / "ca"; }

  [[nodiscard]] CheckOptions server_check() const {
    CheckOptions options;
    options.cert = path("server.pem");
    options.key = path("server.key");
    options.ca = ca_dir() / "ca.pem";
    options.purpose = Purpose::kServer;
    return options;
  }

  /// A test certificate issued by the suite's CA into `<name>.pem` / `<name>.key`.
  [[nodiscard]] TestCertificateOptions test_cert(const std::string& name) const {
    TestCertificateOptions options;
    options.common_name = name;
    options.sans = {"DNS:" + name};
    options.ca_dir = ca_dir();
    options.out_cert = path(name + ".pem");
    options.out_key = path(name + ".key");
    return options;
  }

  static gw::test::TempDir* tmp_;
};

gw::test::TempDir* X509InfoTest::tmp_ = nullptr;

TEST_F(X509InfoTest, InspectReportsTheFields) {
  auto info = inspect_certificate(path("server.pem"));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->subject, "CN=pacs.example.org");
  EXPECT_EQ(info->issuer, "CN=dicom-gw Demo Root CA");
  EXPECT_TRUE(shaped_like(info->serial_hex, std::string(info->serial_hex.size(), 'F')));
  EXPECT_TRUE(shaped_like(info->not_before, "9999-99-99T99:99:99Z")) << info->not_before;
  EXPECT_TRUE(shaped_like(info->not_after, "9999-99-99T99:99:99Z")) << info->not_after;
  EXPECT_EQ(info->sans, (std::vector<std::string>{"DNS:pacs.example.org", "IP:10.0.0.5"}));
  EXPECT_EQ(info->ekus, std::vector<std::string>{"serverAuth"});
  EXPECT_EQ(info->key_type, "EC");
  EXPECT_EQ(info->key_bits, 256);
  EXPECT_TRUE(shaped_like(info->sha256_fingerprint,
                          "FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:"
                          "FF:FF:FF:FF:FF:FF:FF:FF"))
      << info->sha256_fingerprint;
  EXPECT_FALSE(info->is_ca);
  EXPECT_FALSE(info->self_signed);
}

TEST_F(X509InfoTest, InspectAcceptsDer) {
  auto certs = read_certificates(path("server.pem"));
  ASSERT_TRUE(certs.ok());
  unsigned char* der = nullptr;
  const int len = i2d_X509(certs->front().get(), &der);
  ASSERT_GT(len, 0);
  {
    std::ofstream out(path("server.der"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(der), len);
  }
  OPENSSL_free(der);
  auto pem = inspect_certificate(path("server.pem"));
  auto from_der = inspect_certificate(path("server.der"));
  ASSERT_TRUE(from_der.ok()) << from_der.error().message;
  EXPECT_EQ(from_der->sha256_fingerprint, pem->sha256_fingerprint);
}

/// Writes `bytes` (DER) to `to`.
void write_der(const fs::path& to, unsigned char* bytes, int len) {
  ASSERT_GT(len, 0);
  std::ofstream out(to, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes), len);
  OPENSSL_free(bytes);
}

// DER parses (inspect, check) but the gateway's TLS contexts load PEM only: check says so for
// the certificate, the key and the CA file, each once, and passes the same files as PEM.
TEST_F(X509InfoTest, CheckRefusesDerBecauseTheGatewayLoadsPemOnly) {
  auto leaf = read_certificates(path("server.pem"));
  ASSERT_TRUE(leaf.ok());
  unsigned char* der = nullptr;
  write_der(path("check.crt.der"), der, i2d_X509(leaf->front().get(), &der));
  auto key = read_private_key(path("server.key"));
  ASSERT_TRUE(key.ok());
  der = nullptr;
  write_der(path("check.key.der"), der, i2d_PrivateKey(key->get(), &der));
  auto ca = read_certificates(ca_dir() / "ca.pem");
  ASSERT_TRUE(ca.ok());
  der = nullptr;
  write_der(path("check.ca.der"), der, i2d_X509(ca->front().get(), &der));

  CheckOptions options = server_check();
  ASSERT_TRUE(check_certificate(options).ok());
  options.cert = path("check.crt.der");
  options.key = path("check.key.der");
  options.ca = path("check.ca.der");
  const CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "certificate file is DER-encoded: dicom-gw loads PEM only"));
  EXPECT_TRUE(has_problem(report, "private key is DER-encoded"));
  EXPECT_TRUE(has_problem(report, "CA file is DER-encoded"));
  // Nothing else is wrong with them: the key matches, the chain verifies.
  EXPECT_EQ(report.problems.size(), 3u) << all_problems(report);
  EXPECT_EQ(report.chain_verified, true);
}

TEST_F(X509InfoTest, InspectFailsOnGarbageAndMissingFiles) {
  {
    std::ofstream out(path("garbage.pem"));
    out << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
  }
  auto garbage = inspect_certificate(path("garbage.pem"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, core::ErrorCode::kInvalidArgument);
  auto missing = inspect_certificate(path("nope.pem"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);

  CheckOptions options = server_check();
  options.cert = path("garbage.pem");
  const CheckReport report = check_certificate(options);
  EXPECT_EQ(report.status, CertStatus::kUnreadable);
  EXPECT_TRUE(has_problem(report, "cannot parse certificate"));
}

TEST_F(X509InfoTest, GoodServerAndClientCertificatesPass) {
  CheckOptions server = server_check();
  server.hostname = "pacs.example.org";
  CheckReport report = check_certificate(server);
  EXPECT_TRUE(report.ok()) << all_problems(report);
  EXPECT_EQ(report.status, CertStatus::kValid);
  EXPECT_EQ(report.chain_verified, std::optional<bool>(true));
  EXPECT_TRUE(report.warnings.empty());
  ASSERT_EQ(report.chain.size(), 1u);

  server.hostname = "10.0.0.5";
  EXPECT_TRUE(check_certificate(server).ok());

  CheckOptions client;
  client.cert = path("client.pem");
  client.key = path("client.key");
  client.ca = ca_dir() / "ca.pem";
  client.purpose = Purpose::kClient;
  report = check_certificate(client);
  EXPECT_TRUE(report.ok()) << all_problems(report);

  // Without a CA the chain is simply not checked.
  server.ca.clear();
  report = check_certificate(server);
  EXPECT_TRUE(report.ok()) << all_problems(report);
  EXPECT_FALSE(report.chain_verified.has_value());
}

TEST_F(X509InfoTest, FindsMismatchedKey) {
  CheckOptions options = server_check();
  options.key = path("client.key");
  const CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "private key does not match the certificate"));
  EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
}

TEST_F(X509InfoTest, FindsChainOutOfOrder) {
  {
    std::ofstream out(path("reversed.pem"));
    std::ifstream ca(ca_dir() / "ca.pem");
    std::ifstream leaf(path("server.pem"));
    out << ca.rdbuf() << leaf.rdbuf();
  }
  CheckOptions options = server_check();
  options.cert = path("reversed.pem");
  const CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "out of order"));
}

TEST_F(X509InfoTest, FindsExpiredAndNotYetValid) {
  const auto now = std::chrono::system_clock::now();
  TestCertificateOptions expired = test_cert("expired");
  expired.not_before = now - days(400);
  expired.not_after = now - days(3);
  ASSERT_TRUE(make_test_certificate(expired).ok());
  CheckOptions options = server_check();
  options.cert = expired.out_cert;
  options.key = expired.out_key;
  options.now = now;
  CheckReport report = check_certificate(options);
  EXPECT_EQ(report.status, CertStatus::kExpired);
  EXPECT_TRUE(has_problem(report, "expired on " + report.chain.front().not_after));
  // Reported once, as expired: the chain itself is fine.
  EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
  EXPECT_EQ(report.chain_verified, std::optional<bool>(true));
  EXPECT_EQ(report.chain.front().days_until_expiry, -3);

  TestCertificateOptions future = test_cert("future");
  future.not_before = now + days(2);
  future.not_after = now + days(100);
  ASSERT_TRUE(make_test_certificate(future).ok());
  options.cert = future.out_cert;
  options.key = future.out_key;
  report = check_certificate(options);
  EXPECT_EQ(report.status, CertStatus::kNotYetValid);
  EXPECT_TRUE(has_problem(report, "not yet valid"));

  // The injected clock decides: the same certificate is valid in a week.
  options.now = now + days(7);
  report = check_certificate(options);
  EXPECT_EQ(report.status, CertStatus::kValid) << all_problems(report);
  EXPECT_TRUE(report.ok()) << all_problems(report);
}

TEST_F(X509InfoTest, ExpiringWithinThreshold) {
  const auto now = std::chrono::system_clock::now();
  TestCertificateOptions soon = test_cert("soon");
  soon.not_before = now - days(80);
  soon.not_after = now + days(10) + std::chrono::hours(1);
  ASSERT_TRUE(make_test_certificate(soon).ok());
  CheckOptions options = server_check();
  options.cert = soon.out_cert;
  options.key = soon.out_key;
  options.now = now;
  CheckReport report = check_certificate(options);
  EXPECT_EQ(report.status, CertStatus::kExpiring);
  EXPECT_TRUE(report.ok()) << all_problems(report);
  ASSERT_FALSE(report.warnings.empty());
  EXPECT_NE(report.warnings.front().find("expires in 10 days"), std::string::npos)
      << report.warnings.front();

  options.expiring_days = 7;
  EXPECT_EQ(check_certificate(options).status, CertStatus::kValid);
  EXPECT_EQ(cert_status_name(CertStatus::kExpiring), "expiring");
}

TEST_F(X509InfoTest, FindsWeakKeyAndSha1Signature) {
  TestCertificateOptions weak = test_cert("weak");
  weak.key.type = KeySpec::Type::kRsa1024;
  weak.key.allow_weak = true;
  weak.sha1_signature = true;
  ASSERT_TRUE(make_test_certificate(weak).ok());
  CheckOptions options = server_check();
  options.cert = weak.out_cert;
  options.key = weak.out_key;
  const CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "key too small: RSA 1024 bits (minimum 2048)"));
  EXPECT_TRUE(has_problem(report, "SHA-1 signature"));
  EXPECT_EQ(report.chain.front().key_bits, 1024);
}

TEST_F(X509InfoTest, FindsWrongOrMissingEku) {
  CheckOptions options = server_check();
  options.cert = path("client.pem");
  options.key = path("client.key");
  CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "missing serverAuth in extendedKeyUsage (has: clientAuth)"));

  options = server_check();
  options.purpose = Purpose::kClient;
  report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "missing clientAuth"));

  TestCertificateOptions no_eku = test_cert("noeku");
  no_eku.kind.reset();
  ASSERT_TRUE(make_test_certificate(no_eku).ok());
  options = server_check();
  options.cert = no_eku.out_cert;
  options.key = no_eku.out_key;
  report = check_certificate(options);
  EXPECT_TRUE(report.ok()) << all_problems(report);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings.front().find("no extendedKeyUsage"), std::string::npos);
}

TEST_F(X509InfoTest, FindsHostnameMismatch) {
  CheckOptions options = server_check();
  options.hostname = "other.example.org";
  CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report,
                          "hostname 'other.example.org' not in subjectAltName "
                          "(DNS:pacs.example.org, IP:10.0.0.5)"));
  options.hostname = "10.0.0.6";
  EXPECT_TRUE(has_problem(check_certificate(options), "hostname '10.0.0.6'"));

  // The CN alone does not count: modern peers only look at the SAN.
  TestCertificateOptions cn_only = test_cert("cn-only.example.org");
  cn_only.sans.clear();
  ASSERT_TRUE(make_test_certificate(cn_only).ok());
  options = server_check();
  options.cert = cn_only.out_cert;
  options.key = cn_only.out_key;
  options.hostname = "cn-only.example.org";
  report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "the certificate has no subjectAltName"));
}

TEST_F(X509InfoTest, FindsUntrustedChain) {
  // A second, unrelated CA.
  const fs::path other = path("other-ca");
  CaOptions other_ca;
  other_ca.common_name = "Other CA";
  ASSERT_TRUE(init_ca(other, other_ca).ok());
  CheckOptions options = server_check();
  options.ca = other / "ca.pem";
  CheckReport report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "chain does not verify: unable to get local issuer certificate"));
  EXPECT_EQ(report.chain_verified, std::optional<bool>(false));

  TestCertificateOptions self = test_cert("selfsigned");
  self.self_signed = true;
  ASSERT_TRUE(make_test_certificate(self).ok());
  options = server_check();
  options.cert = self.out_cert;
  options.key = self.out_key;
  report = check_certificate(options);
  EXPECT_TRUE(has_problem(report, "chain does not verify: self-signed certificate"));
  EXPECT_TRUE(report.chain.front().self_signed);
}

TEST_F(X509InfoTest, IntermediateChainAndExpiredIssuer) {
  const auto now = std::chrono::system_clock::now();
  const fs::path ca = path("int-ca");
  CaOptions with_intermediate;
  with_intermediate.with_intermediate = true;
  ASSERT_TRUE(init_ca(ca, with_intermediate).ok());
  IssueOptions leaf;
  leaf.common_name = "gw.local";
  leaf.include_chain_in_cert = true;
  leaf.out_cert = path("gw-chain.pem");
  leaf.out_key = path("gw-chain.key");
  ASSERT_TRUE(issue(ca, leaf).ok());
  CheckOptions options;
  options.cert = leaf.out_cert;
  options.key = leaf.out_key;
  options.ca = ca / "ca.pem";
  options.hostname = "gw.local";
  CheckReport report = check_certificate(options);
  EXPECT_TRUE(report.ok()) << all_problems(report);
  EXPECT_EQ(report.chain.size(), 2u);

  // Ten years on, the leaf and the CAs above it have all expired.
  options.now = now + days(3651);
  report = check_certificate(options);
  EXPECT_EQ(report.status, CertStatus::kExpired);
  EXPECT_TRUE(has_problem(report,
                          "chain certificate #2 (CN=dicom-gw Demo Intermediate CA): "
                          "expired on"));
  EXPECT_TRUE(has_problem(report, "chain certificate #3 (CN=dicom-gw Demo Root CA): expired on"));
}

}  // namespace
}  // namespace gw::certs
