// DICOM TLS end to end (issue 3): the gateway's TLS listener against DCMTK (echoscu/storescu
// +tls), `dicom-gw echo|send --tls` against the gateway and against DCMTK's storescp, client
// certificate checks, AE title <-> certificate bindings and bad TLS configuration.
// tls_policy_test.cpp has the protocol probes, require_tls_for, CRLs, silent connections and
// reload under a held association.

#include "tls_e2e_fixture.h"

namespace gw::test {
namespace {

using namespace tls_e2e;  // NOLINT(google-build-using-namespace): the fixture's helpers

// ---- profiles against DCMTK ------------------------------------------------------------------

TEST_F(TlsE2eTest, DcmtkEchoAndStoreUnderEveryProfile) {
  const auto files = generate_dicom(dir_.path() / "source", {"--count", "2", "--seed", "31"});
  for (const std::string profile : {"bcp195-rfc8996", "bcp195-nd", "bcp195-extended", "modern"}) {
    SCOPED_TRACE(profile);
    auto gw = start(tls_yaml("  profile: " + profile + "\n"));
    const auto echo = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client"));
    EXPECT_TRUE(echo.ok()) << echo.err << "\n" << gw->log();
    auto store_args = dcmtk_tls("client");
    store_args.insert(store_args.begin(), {"-aec", "DICOM_GW"});
    const auto store = run_storescu("127.0.0.1", gw->tls_port(), files, store_args);
    EXPECT_TRUE(store.ok()) << store.err << "\n" << gw->log();
    EXPECT_EQ(gw->count_instances(), static_cast<std::int64_t>(files.size()));
    EXPECT_TRUE(log_shows(*gw, "protocol=TLSv1.3"));
    EXPECT_TRUE(log_shows(*gw, "tls=true tls_subject=\"CN=client\""));
    EXPECT_EQ(gw->stop(), 0);
  }
}

TEST_F(TlsE2eTest, DcmtkTls12UnderBcp195Nd) {
  // DCMTK offers TLS 1.2 + 1.3; an openssl peer limited to TLS 1.2 gets an AEAD ECDHE suite.
  auto gw = start(tls_yaml("  profile: bcp195-nd\n"));
  const auto r = s_client(gw->tls_port(), {"-tls1_2", "-cert", cert("client").string(), "-key",
                                           key("client").string(), "-CAfile", chain_.string()});
  EXPECT_TRUE(contains(r.out, "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384")) << r.out;
}

// ---- what the listener refuses ---------------------------------------------------------------

TEST_F(TlsE2eTest, ModernRefusesTls12) {
  auto gw = start(tls_yaml("  profile: modern\n"));
  const auto r = s_client(gw->tls_port(), {"-tls1_2", "-cert", cert("client").string(), "-key",
                                           key("client").string(), "-CAfile", chain_.string()});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_TRUE(log_shows(*gw, "protocol too old"));
}

TEST_F(TlsE2eTest, BadClientCertificatesAreRefusedWithTheReason) {
  // Untrusted CA.
  const fs::path other = dir_.path() / "other-ca";
  ASSERT_TRUE(certs::init_ca(other, certs::CaOptions{}).ok());
  certs::TestCertificateOptions stranger;
  stranger.kind = certs::CertKind::kClient;
  stranger.ca_dir = other;
  issue_test("stranger", stranger);
  // Expired.
  certs::TestCertificateOptions expired;
  expired.kind = certs::CertKind::kClient;
  expired.not_before = system_clock::now() - hours(24 * 30);
  expired.not_after = system_clock::now() - hours(24);
  issue_test("expired", expired);
  // 1024-bit RSA.
  certs::TestCertificateOptions weak;
  weak.kind = certs::CertKind::kClient;
  weak.key.type = certs::KeySpec::Type::kRsa1024;
  weak.key.allow_weak = true;
  issue_test("weak", weak);
  // serverAuth only: not a client certificate.
  certs::TestCertificateOptions server_only;
  server_only.kind = certs::CertKind::kServer;
  issue_test("serveronly", server_only);

  auto gw = start(tls_yaml());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"stranger", "unknown CA"},
      {"expired", "client certificate expired"},
      {"weak", "key too small"},
      {"serveronly", "unsupported certificate purpose"},
  };
  for (const auto& [name, reason] : cases) {
    SCOPED_TRACE(name);
    const auto r = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls(name));
    EXPECT_FALSE(r.ok()) << r.out;
    EXPECT_TRUE(log_shows(*gw, reason)) << gw->log();
  }
  EXPECT_EQ(gw->count_instances(), 0);
  // The listener still serves good clients.
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client")).ok());
}

TEST_F(TlsE2eTest, NoClientCertificateRequiredVersusOptional) {
  const std::vector<std::string> anonymous{"+tla", "+cf", chain_.string()};
  {
    auto gw = start(tls_yaml());  // peer_certificate: required (the default)
    const auto r = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", anonymous);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(log_shows(*gw, "peer sent no certificate"));
  }
  {
    auto gw = start(tls_yaml("  peer_certificate: optional\n"));
    const auto r = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", anonymous);
    EXPECT_TRUE(r.ok()) << r.err << gw->log();
    // optional still refuses a certificate that does not verify.
    certs::TestCertificateOptions selfie;
    selfie.kind = certs::CertKind::kClient;
    selfie.self_signed = true;
    issue_test("selfie", selfie);
    EXPECT_FALSE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("selfie")).ok());
    EXPECT_TRUE(log_shows(*gw, "self-signed"));
  }
}

TEST_F(TlsE2eTest, IntermediateIssuedClientNeedsTheChainInTheBundle) {
  // A leaf-only client certificate from the intermediate; the client trusts the root alone, so
  // it cannot send the intermediate either.
  certs::TestCertificateOptions leaf;
  leaf.kind = certs::CertKind::kClient;
  issue_test("leafonly", leaf);
  {
    auto gw = start(tls_yaml());  // bundle: intermediate + root
    const auto r =
        run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("leafonly", root_));
    EXPECT_TRUE(r.ok()) << r.err << gw->log();
  }
  {
    auto gw = start(tls_yaml("", "server", root_));  // bundle: root only
    const auto r =
        run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("leafonly", root_));
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(log_shows(*gw, "unknown CA"));
  }
}

TEST_F(TlsE2eTest, PlainDicomOnTheTlsPortIsNamed) {
  auto gw = start(tls_yaml());
  const auto r = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(log_shows(*gw, "plain DICOM spoken to the TLS port"));
  // The plain listener is unaffected.
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->port(), "DICOM_GW").ok());
}

TEST_F(TlsE2eTest, NoVerifyAcceptsAnyClientAndWarns) {
  certs::TestCertificateOptions selfie;
  selfie.kind = certs::CertKind::kClient;
  selfie.self_signed = true;
  issue_test("selfie", selfie);
  auto gw = start(tls_yaml("  no_verify: true\n"));
  EXPECT_TRUE(log_shows(*gw, "tls.no_verify is true"));  // at start
  const auto r = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("selfie"));
  EXPECT_TRUE(r.ok()) << r.err << gw->log();
  EXPECT_TRUE(log_shows(*gw, "event=tls_no_verify"));  // on the association
}

// ---- our client --------------------------------------------------------------------------------

TEST_F(TlsE2eTest, GatewayEchoChecksTheServerName) {
  auto gw = start(tls_yaml());
  EXPECT_TRUE(gw_echo("127.0.0.1", gw->tls_port(), gw_identity("client")).ok());
  EXPECT_TRUE(gw_echo("localhost", gw->tls_port(), gw_identity("client")).ok());
  EXPECT_EQ(gw->stop(), 0);

  // A server certificate that names another host.
  issue("elsewhere", certs::CertKind::kServer, {"DNS:pacs.example.org"});
  auto other = start(tls_yaml("", "elsewhere"));
  auto r = gw_echo("127.0.0.1", other->tls_port(), gw_identity("client"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "IP address mismatch")) << r.err;
  r = gw_echo("localhost", other->tls_port(), gw_identity("client"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "host name mismatch")) << r.err;
  auto flags = gw_identity("client");
  flags.push_back("--no-verify-hostname");
  r = gw_echo("127.0.0.1", other->tls_port(), flags);
  EXPECT_TRUE(r.ok()) << r.err;
}

TEST_F(TlsE2eTest, GatewayEchoReportsTheServersRefusal) {
  auto gw = start(tls_yaml());
  // No client certificate against peer_certificate: required.
  auto r = gw_echo("127.0.0.1", gw->tls_port(), {"--ca", chain_.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "requires a certificate")) << r.err;
  // TLS to the plain port.
  r = gw_echo("127.0.0.1", gw->port(), gw_identity("client"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "does not speak TLS")) << r.err;
  // A key that does not match the certificate: a usage error, before any connection.
  r = gw_echo("127.0.0.1", gw->tls_port(),
              {"--cert", cert("client").string(), "--key", key("server").string(), "--ca",
               chain_.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "does not match")) << r.err;
}

TEST_F(TlsE2eTest, GatewaySendToDcmtkStorescpWithMutualTls) {
  const auto files = generate_dicom(dir_.path() / "source", {"--count", "3", "--seed", "32"});
  StoreScp scp = start_storescp(0, dir_.subdir("received"),
                                {"+tls", key("server").string(), cert("server").string(), "+cf",
                                 chain_.string(), "--require-peer-cert"});
  std::vector<std::string> argv{gateway_binary().string(), "send", "--aec", "STORESCP",
                                "--no-progress",           "--tls"};
  for (const auto& a : gw_identity("client")) argv.push_back(a);
  argv.insert(argv.end(), {"127.0.0.1", std::to_string(scp.port)});
  for (const auto& f : files) argv.push_back(f.string());
  const auto r = run_command(argv, {}, std::chrono::seconds(60));
  EXPECT_TRUE(r.ok()) << r.out << r.err;
  EXPECT_EQ(scp.received_files().size(), files.size());
  for (const auto& f : files) {
    bool found = false;
    for (const auto& got : scp.received_files()) {
      if (sop_instance_uid_of(got) == sop_instance_uid_of(f)) {
        found = true;
        EXPECT_EQ(data_set_bytes(got), data_set_bytes(f)) << f;  // streamed unchanged
      }
    }
    EXPECT_TRUE(found) << f;
  }

  // Without a client certificate storescp (--require-peer-cert) refuses us.
  std::vector<std::string> anon{gateway_binary().string(),
                                "send",
                                "--aec",
                                "STORESCP",
                                "--no-progress",
                                "--tls",
                                "--ca",
                                chain_.string(),
                                "127.0.0.1",
                                std::to_string(scp.port),
                                files[0].string()};
  const auto refused = run_command(anon, {}, std::chrono::seconds(60));
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
}

// ---- AE title <-> certificate bindings (peers:) ---------------------------------------------

TEST_F(TlsE2eTest, PeersBindAeTitlesToCertificates) {
  issue("ct1", certs::CertKind::kClient, {"DNS:ct1.hospital.org"});
  issue("ct2", certs::CertKind::kClient, {});
  auto fp = run_command(
      {"openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert("ct2").string()}, {},
      std::chrono::seconds(20));
  ASSERT_TRUE(fp.ok()) << fp.err;
  const auto eq = fp.out.find('=');
  ASSERT_NE(eq, std::string::npos) << fp.out;
  std::string fingerprint = fp.out.substr(eq + 1);
  while (!fingerprint.empty() && (fingerprint.back() == '\n' || fingerprint.back() == '\r')) {
    fingerprint.pop_back();
  }
  GatewayOptions o;
  o.tls_yaml = tls_yaml();
  o.extra_yaml =
      "peers:\n  - {ae_title: CT1, certificate: {san: \"DNS:ct1.hospital.org\"}}\n"
      "  - {ae_title: CT2, certificate: {sha256: \"" +
      fingerprint + "\"}}\n";
  auto gw = Gateway::start(o);
  auto echo_as = [&](const std::string& ae, const std::string& name) {
    auto flags = gw_identity(name);
    flags.insert(flags.end(), {"--aet", ae});
    return gw_echo("127.0.0.1", gw->tls_port(), flags);
  };
  // Each certificate with its own AE title.
  EXPECT_TRUE(echo_as("CT1", "ct1").ok()) << gw->log();
  EXPECT_TRUE(echo_as("CT2", "ct2").ok()) << gw->log();
  // A valid certificate calling with an AE title it is not bound to.
  auto r = echo_as("CT2", "ct1");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(log_shows(*gw, "is bound to calling AE title(s) CT1 in peers, not CT2")) << gw->log();
  r = echo_as("SOMEONE_ELSE", "ct1");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // A bound AE title with a valid but unbound certificate, and over plain DICOM.
  r = echo_as("CT1", "client");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(log_shows(*gw, "calling AE title CT1 is bound to another certificate")) << gw->log();
  EXPECT_FALSE(run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "CT1"}).ok());
  EXPECT_TRUE(log_shows(*gw, "must call over TLS with it")) << gw->log();
  // Neither the certificate nor the AE title is bound: the bindings do not apply.
  EXPECT_TRUE(echo_as("SOMEONE_ELSE", "client").ok()) << gw->log();
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "PLAIN1"}).ok());
  EXPECT_EQ(gw->stop(), 0);
}

// ---- configuration -----------------------------------------------------------------------------

TEST_F(TlsE2eTest, BadTlsConfigIsRefusedAtStartAndByConfigCheck) {
  // A CBC cipher override and a key that does not match: refused with the reason, exit 2.
  const fs::path config = dir_.path() / "bad.yaml";
  std::ofstream(config) << "data_dir: " << (dir_.path() / "data").string() << "\n"
                        << "listeners:\n  - {name: s, bind: 127.0.0.1, port: 0, tls: true}\n"
                        << tls_yaml("  ciphers: \"AES128-SHA\"\n");
  auto r = run_command({gateway_binary().string(), "config", "check", "--config", config.string()},
                       {}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "tls.ciphers")) << r.err;
  r = run_command({gateway_binary().string(), "serve", "--config", config.string()}, {},
                  std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "tls.ciphers")) << r.err;

  std::ofstream(config) << "data_dir: " << (dir_.path() / "data").string() << "\n"
                        << "listeners:\n  - {name: s, bind: 127.0.0.1, port: 0, tls: true}\n"
                        << "tls:\n  enabled: true\n  cert_file: " << cert("server").string()
                        << "\n  key_file: " << key("client").string()
                        << "\n  ca_file: " << chain_.string() << "\n";
  r = run_command({gateway_binary().string(), "serve", "--config", config.string()}, {},
                  std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "does not match the certificate")) << r.err;
}

}  // namespace
}  // namespace gw::test
