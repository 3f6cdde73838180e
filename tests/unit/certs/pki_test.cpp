#include "certs/pki.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "certs/x509_info.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

/// X509_verify_cert of the first certificate of `cert_file` against `ca_file`, with the rest
/// of `cert_file` as untrusted intermediates. Returns the error string, "" on success.
std::string verify(const fs::path& cert_file, const fs::path& ca_file,
                   const fs::path& untrusted_file = {}) {
  auto certs = read_certificates(cert_file);
  if (!certs.ok()) return certs.error().message;
  auto anchors = read_certificates(ca_file);
  if (!anchors.ok()) return anchors.error().message;
  X509StorePtr store(X509_STORE_new());
  for (const auto& anchor : *anchors) X509_STORE_add_cert(store.get(), anchor.get());
  X509StackPtr untrusted(sk_X509_new_null());
  std::vector<X509Ptr> extra;
  for (std::size_t i = 1; i < certs->size(); ++i) {
    X509_up_ref((*certs)[i].get());
    sk_X509_push(untrusted.get(), (*certs)[i].get());
  }
  if (!untrusted_file.empty()) {
    auto more = read_certificates(untrusted_file);
    if (!more.ok()) return more.error().message;
    for (const auto& cert : *more) {
      X509_up_ref(cert.get());
      sk_X509_push(untrusted.get(), cert.get());
    }
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), certs->front().get(), untrusted.get());
  if (X509_verify_cert(ctx.get()) == 1) return "";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

/// The openssl CLI, to prove that other tools read what we write.
gw::test::CommandResult openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  return gw::test::run_command(args, {}, std::chrono::seconds(30));
}

void expect_cli_ok(const std::vector<std::string>& argv) {
  const auto result = gw::test::run_command(argv, {}, std::chrono::seconds(30));
  EXPECT_TRUE(result.ok()) << gw::test::join_argv(argv) << " exited " << result.exit_code << ":\n"
                           << result.out << result.err;
}

class PkiTest : public ::testing::Test {
 protected:
  gw::test::TempDir tmp_{"gw-pki-test"};
  fs::path ca_dir_ = tmp_.path() / "ca";
};

TEST_F(PkiTest, InitCaWritesRootWithPermissions) {
  auto files = init_ca(ca_dir_, CaOptions{});
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(files->root_key, ca_dir_ / "ca.key");
  EXPECT_EQ(files->root_cert, ca_dir_ / "ca.pem");
  EXPECT_TRUE(files->intermediate_cert.empty());
  EXPECT_EQ(mode_of(ca_dir_), 0750u);
  EXPECT_EQ(mode_of(files->root_key), 0600u);
  EXPECT_FALSE(fs::exists(ca_dir_ / "intermediate.pem"));

  auto info = inspect_certificate(files->root_cert);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->subject, "CN=dicom-gw Demo Root CA");
  EXPECT_EQ(info->subject, info->issuer);
  EXPECT_TRUE(info->is_ca);
  EXPECT_TRUE(info->self_signed);
  EXPECT_EQ(info->key_type, "EC");
  EXPECT_EQ(info->key_bits, 256);
  EXPECT_EQ(info->signature_algorithm, "ecdsa-with-SHA256");
  EXPECT_GE(info->days_until_expiry, 3649);

  // The extensions as OpenSSL sees them.
  auto certs = read_certificates(files->root_cert);
  ASSERT_TRUE(certs.ok());
  X509* root = certs->front().get();
  EXPECT_EQ(X509_get_key_usage(root), static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(root), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(root), nullptr);
  EXPECT_EQ(X509_get_pathlen(root), -1);
  const int bc = X509_get_ext_by_NID(root, NID_basic_constraints, -1);
  ASSERT_GE(bc, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(root, bc)), 1);
}

TEST_F(PkiTest, InitCaRefusesToOverwrite) {
  ASSERT_TRUE(init_ca(ca_dir_, CaOptions{}).ok());
  auto before = inspect_certificate(ca_dir_ / "ca.pem");
  ASSERT_TRUE(before.ok());

  auto again = init_ca(ca_dir_, CaOptions{});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, core::ErrorCode::kAlreadyExists);
  EXPECT_EQ(inspect_certificate(ca_dir_ / "ca.pem")->sha256_fingerprint,
            before->sha256_fingerprint);

  CaOptions replace;
  replace.overwrite = true;
  replace.with_intermediate = true;
  ASSERT_TRUE(init_ca(ca_dir_, replace).ok());
  EXPECT_NE(inspect_certificate(ca_dir_ / "ca.pem")->sha256_fingerprint,
            before->sha256_fingerprint);

  // Back to a root-only CA: the old intermediate must not be used to issue.
  replace.with_intermediate = false;
  ASSERT_TRUE(init_ca(ca_dir_, replace).ok());
  EXPECT_FALSE(fs::exists(ca_dir_ / "intermediate.key"));
  EXPECT_FALSE(fs::exists(ca_dir_ / "ca-chain.pem"));
}

TEST_F(PkiTest, InitCaWithIntermediate) {
  CaOptions options;
  options.organization = "Hospital";
  options.with_intermediate = true;
  auto files = init_ca(ca_dir_, options);
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(mode_of(ca_dir_ / "intermediate.key"), 0600u);
  EXPECT_EQ(verify(ca_dir_ / "intermediate.pem", ca_dir_ / "ca.pem"), "");

  auto chain = inspect_chain(ca_dir_ / "ca-chain.pem");
  ASSERT_TRUE(chain.ok()) << chain.error().message;
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ((*chain)[0].subject, "CN=dicom-gw Demo Intermediate CA,O=Hospital");
  EXPECT_EQ((*chain)[0].issuer, "CN=dicom-gw Demo Root CA,O=Hospital");
  EXPECT_FALSE((*chain)[0].self_signed);
  EXPECT_TRUE((*chain)[1].self_signed);

  auto certs = read_certificates(ca_dir_ / "intermediate.pem");
  ASSERT_TRUE(certs.ok());
  EXPECT_EQ(X509_get_pathlen(certs->front().get()), 0);
  EXPECT_TRUE(X509_get_extension_flags(certs->front().get()) & EXFLAG_CA);
}

TEST_F(PkiTest, IssueServerCertificateWithSans) {
  ASSERT_TRUE(init_ca(ca_dir_, CaOptions{}).ok());
  IssueOptions options;
  options.kind = CertKind::kServer;
  options.common_name = "pacs.example.org";
  options.sans = {"DNS:pacs.example.org", "IP:192.168.1.10", "localhost", "::1"};
  options.out_cert = tmp_.path() / "server.pem";
  options.out_key = tmp_.path() / "server.key";
  auto issued = issue(ca_dir_, options);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  EXPECT_EQ(mode_of(options.out_key), 0600u);
  EXPECT_EQ(verify(options.out_cert, ca_dir_ / "ca.pem"), "");

  auto info = inspect_certificate(options.out_cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->serial_hex, issued->serial_hex);
  EXPECT_GE(info->serial_hex.size(), 20u);  // 128 random bits, leading zero bytes aside
  EXPECT_EQ(info->sans, (std::vector<std::string>{"DNS:pacs.example.org", "IP:192.168.1.10",
                                                  "DNS:localhost", "IP:::1"}));
  EXPECT_EQ(info->ekus, std::vector<std::string>{"serverAuth"});
  EXPECT_FALSE(info->is_ca);
  EXPECT_GE(info->days_until_expiry, 824);
  EXPECT_LE(info->days_until_expiry, 825);

  auto certs = read_certificates(options.out_cert);
  ASSERT_TRUE(certs.ok());
  X509* leaf = certs->front().get();
  EXPECT_EQ(X509_get_key_usage(leaf), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_NE(X509_get0_subject_key_id(leaf), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(leaf), nullptr);

  CheckOptions check;
  check.cert = options.out_cert;
  check.key = options.out_key;
  check.ca = ca_dir_ / "ca.pem";
  check.hostname = "192.168.1.10";
  const CheckReport report = check_certificate(check);
  EXPECT_TRUE(report.ok()) << report.problems.front();
  EXPECT_EQ(report.status, CertStatus::kValid);
  EXPECT_EQ(report.chain_verified, std::optional<bool>(true));
}

TEST_F(PkiTest, ServerCertificateDefaultsSanToCommonName) {
  ASSERT_TRUE(init_ca(ca_dir_, CaOptions{}).ok());
  IssueOptions options;
  options.common_name = "iris";
  options.out_cert = tmp_.path() / "iris.pem";
  options.out_key = tmp_.path() / "iris.key";
  ASSERT_TRUE(issue(ca_dir_, options).ok());
  EXPECT_EQ(inspect_certificate(options.out_cert)->sans, std::vector<std::string>{"DNS:iris"});

  options.common_name = "Not A Host";
  options.overwrite = true;
  auto bad = issue(ca_dir_, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, core::ErrorCode::kInvalidArgument);

  options.sans = {"URI:https://x"};
  EXPECT_FALSE(issue(ca_dir_, options).ok());
  options.sans = {"IP:300.1.1.1"};
  EXPECT_FALSE(issue(ca_dir_, options).ok());
}

TEST_F(PkiTest, IssueRsaClientCertificate) {
  ASSERT_TRUE(init_ca(ca_dir_, CaOptions{}).ok());
  IssueOptions options;
  options.kind = CertKind::kClient;
  options.common_name = "SCU_DCM1";
  options.key.type = KeySpec::Type::kRsa2048;
  options.out_cert = tmp_.path() / "scu1.pem";
  options.out_key = tmp_.path() / "scu1.key";
  ASSERT_TRUE(issue(ca_dir_, options).ok());
  EXPECT_EQ(mode_of(options.out_key), 0600u);
  EXPECT_EQ(verify(options.out_cert, ca_dir_ / "ca.pem"), "");

  auto info = inspect_certificate(options.out_cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->ekus, std::vector<std::string>{"clientAuth"});
  EXPECT_TRUE(info->sans.empty());
  EXPECT_EQ(info->key_type, "RSA");
  EXPECT_EQ(info->key_bits, 2048);
  EXPECT_EQ(info->signature_algorithm, "ecdsa-with-SHA256");  // signed by the EC root

  auto certs = read_certificates(options.out_cert);
  ASSERT_TRUE(certs.ok());
  EXPECT_EQ(X509_get_key_usage(certs->front().get()),
            static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));

  // The same issue again does not clobber the key.
  auto again = issue(ca_dir_, options);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, core::ErrorCode::kAlreadyExists);
}

TEST_F(PkiTest, IssueFromIntermediateWithChainInCertFile) {
  CaOptions ca;
  ca.with_intermediate = true;
  ASSERT_TRUE(init_ca(ca_dir_, ca).ok());
  IssueOptions options;
  options.kind = CertKind::kBoth;
  options.common_name = "gateway.local";
  options.include_chain_in_cert = true;
  options.out_cert = tmp_.path() / "gw.pem";
  options.out_key = tmp_.path() / "gw.key";
  ASSERT_TRUE(issue(ca_dir_, options).ok());

  auto chain = inspect_chain(options.out_cert);
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 2u);  // leaf + intermediate, not the root
  EXPECT_EQ((*chain)[0].issuer, "CN=dicom-gw Demo Intermediate CA");
  EXPECT_EQ((*chain)[0].ekus, (std::vector<std::string>{"serverAuth", "clientAuth"}));
  EXPECT_EQ((*chain)[1].subject, "CN=dicom-gw Demo Intermediate CA");

  // Verifies with only the root trusted (intermediate from the cert file) ...
  EXPECT_EQ(verify(options.out_cert, ca_dir_ / "ca.pem"), "");
  // ... and a leaf-only file needs the intermediate from somewhere.
  IssueOptions bare = options;
  bare.include_chain_in_cert = false;
  bare.out_cert = tmp_.path() / "bare.pem";
  bare.out_key = tmp_.path() / "bare.key";
  ASSERT_TRUE(issue(ca_dir_, bare).ok());
  EXPECT_EQ(inspect_chain(bare.out_cert)->size(), 1u);
  EXPECT_NE(verify(bare.out_cert, ca_dir_ / "ca.pem"), "");
  EXPECT_EQ(verify(bare.out_cert, ca_dir_ / "ca-chain.pem"), "");
}

TEST_F(PkiTest, OpensslCliVerifiesIssuedCertificates) {
  CaOptions ca;
  ca.key.type = KeySpec::Type::kRsa2048;
  ca.with_intermediate = true;
  ASSERT_TRUE(init_ca(ca_dir_, ca).ok());
  IssueOptions options;
  options.common_name = "localhost";
  options.sans = {"DNS:localhost", "IP:127.0.0.1"};
  options.out_cert = tmp_.path() / "server.pem";
  options.out_key = tmp_.path() / "server.key";
  ASSERT_TRUE(issue(ca_dir_, options).ok());

  const std::string server = options.out_cert.string();
  const std::string ca_pem = (ca_dir_ / "ca.pem").string();
  expect_cli_ok({"openssl", "verify", "-CAfile", (ca_dir_ / "ca-chain.pem").string(), "-purpose",
                 "sslserver", server});
  expect_cli_ok({"openssl", "verify", "-CAfile", ca_pem, "-untrusted",
                 (ca_dir_ / "intermediate.pem").string(), server});
  EXPECT_FALSE(openssl({"verify", "-CAfile", ca_pem, server}).ok());  // intermediate missing
  // The key is a PKCS#8 key the CLI reads without a passphrase.
  expect_cli_ok({"openssl", "pkey", "-in", options.out_key.string(), "-passin", "pass:", "-noout"});
  const auto host = openssl({"x509", "-in", server, "-noout", "-checkhost", "localhost"});
  EXPECT_NE(host.out.find("does match"), std::string::npos) << host.out << host.err;

  // Root-only CA: the plain `openssl verify -CAfile ca.pem server.pem` of the seed.
  const fs::path simple = tmp_.path() / "simple";
  ASSERT_TRUE(init_ca(simple, CaOptions{}).ok());
  options.out_cert = tmp_.path() / "simple-server.pem";
  options.out_key = tmp_.path() / "simple-server.key";
  ASSERT_TRUE(issue(simple, options).ok());
  expect_cli_ok(
      {"openssl", "verify", "-CAfile", (simple / "ca.pem").string(), options.out_cert.string()});
}

TEST_F(PkiTest, ExportP12ReimportsWithPassword) {
  CaOptions ca;
  ca.with_intermediate = true;
  ASSERT_TRUE(init_ca(ca_dir_, ca).ok());
  IssueOptions options;
  options.kind = CertKind::kClient;
  options.common_name = "SCU_DCM1";
  options.out_cert = tmp_.path() / "scu1.pem";
  options.out_key = tmp_.path() / "scu1.key";
  ASSERT_TRUE(issue(ca_dir_, options).ok());

  ExportP12Options p12;
  p12.cert = options.out_cert;
  p12.key = options.out_key;
  p12.ca = ca_dir_ / "ca-chain.pem";
  p12.out = tmp_.path() / "scu1.p12";
  p12.password = "changeit";
  p12.friendly_name = "scu1";
  auto exported = export_p12(p12);
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_EQ(mode_of(p12.out), 0600u);

  BioPtr bio(BIO_new_file(p12.out.c_str(), "rb"));
  ASSERT_TRUE(bio);
  Pkcs12Ptr parsed(d2i_PKCS12_bio(bio.get(), nullptr));
  ASSERT_TRUE(parsed);
  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_ca = nullptr;
  EXPECT_EQ(PKCS12_parse(parsed.get(), "wrong", &raw_key, &raw_cert, &raw_ca), 0);
  ERR_clear_error();
  ASSERT_EQ(PKCS12_parse(parsed.get(), "changeit", &raw_key, &raw_cert, &raw_ca), 1);
  PkeyPtr key(raw_key);
  X509Ptr cert(raw_cert);
  X509StackPtr chain(raw_ca);
  ASSERT_TRUE(key && cert && chain);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get()), 1);
  EXPECT_EQ(sk_X509_num(chain.get()), 2);  // intermediate + root
  int alias_len = 0;
  const unsigned char* alias = X509_alias_get0(cert.get(), &alias_len);
  ASSERT_NE(alias, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alias), alias_len), "scu1");

  // And the CLI agrees (AES-256/SHA-256 defaults need no -legacy).
  expect_cli_ok(
      {"openssl", "pkcs12", "-in", p12.out.string(), "-passin", "pass:changeit", "-noout"});

  // A key that is not the certificate's is refused.
  p12.key = ca_dir_ / "intermediate.key";
  p12.out = tmp_.path() / "bad.p12";
  auto bad = export_p12(p12);
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(fs::exists(p12.out));
}

TEST_F(PkiTest, WeakKeysNeedAllowWeak) {
  KeySpec weak;
  weak.type = KeySpec::Type::kRsa1024;
  EXPECT_FALSE(generate_key(weak).ok());
  weak.allow_weak = true;
  auto key = generate_key(weak);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(EVP_PKEY_get_bits(key->get()), 1024);
}

TEST_F(PkiTest, KeyTypeAndKindNamesRoundTrip) {
  for (auto type : {KeySpec::Type::kEcP256, KeySpec::Type::kRsa3072, KeySpec::Type::kRsa2048,
                    KeySpec::Type::kRsa1024}) {
    EXPECT_EQ(parse_key_type(key_type_name(type)).value(), type);
  }
  for (auto kind : {CertKind::kServer, CertKind::kClient, CertKind::kBoth}) {
    EXPECT_EQ(parse_cert_kind(cert_kind_name(kind)).value(), kind);
  }
  EXPECT_FALSE(parse_key_type("dsa").ok());
}

TEST_F(PkiTest, TestCertificatesHonourExplicitValidity) {
  ASSERT_TRUE(init_ca(ca_dir_, CaOptions{}).ok());
  const auto now = std::chrono::system_clock::now();
  TestCertificateOptions options;
  options.ca_dir = ca_dir_;
  options.not_before = now - std::chrono::days(400);
  options.not_after = now - std::chrono::days(35);
  options.out_cert = tmp_.path() / "old.pem";
  options.out_key = tmp_.path() / "old.key";
  ASSERT_TRUE(make_test_certificate(options).ok());
  auto info = inspect_certificate(options.out_cert, now);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->days_until_expiry, -35);
  EXPECT_EQ(verify(options.out_cert, ca_dir_ / "ca.pem"), "certificate has expired");

  options.self_signed = true;
  options.not_before.reset();
  options.not_after.reset();
  ASSERT_TRUE(make_test_certificate(options).ok());
  info = inspect_certificate(options.out_cert, now);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->self_signed);
  EXPECT_NE(verify(options.out_cert, ca_dir_ / "ca.pem"), "");
}

}  // namespace
}  // namespace gw::certs
