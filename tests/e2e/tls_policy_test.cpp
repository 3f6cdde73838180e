// DICOM TLS end to end (issue 3), the policy side: openssl s_client probes of old protocols and
// CBC suites that can actually fail (PEERS.md), accept.require_tls_for, tls.crl_file, silent
// connections to the TLS port, and SIGHUP certificate reload under a held association.

#include "tls_e2e_fixture.h"

namespace gw::test {
namespace {

using namespace tls_e2e;  // NOLINT(google-build-using-namespace): the fixture's helpers

TEST_F(TlsE2eTest, OldProtocolsAndCbcSuitesWorkAgainstAPermissiveServer) {
  // The control for the refusals below: the very same probes complete against a server that
  // allows them, with the gateway's server certificate. (An RSA-only suite such as AES128-SHA
  // would fail against any ECDSA server, which is why the probes use ECDHE-ECDSA suites.)
  std::optional<Process> server;
  const std::uint16_t port = start_permissive_server(server);
  for (const auto& probe : old_tls_probes()) {
    SCOPED_TRACE(probe.version_flag);
    const auto r = s_client(port, probe_args(probe));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "Protocol  : " + probe.protocol + "\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "Cipher    : " + probe.cipher + "\n")) << r.out;
  }
}

TEST_F(TlsE2eTest, OldProtocolsAndCbcSuitesAreRefusedUnderEveryProfile) {
  for (const std::string profile : {"bcp195-rfc8996", "bcp195-nd", "bcp195-extended", "modern"}) {
    SCOPED_TRACE(profile);
    auto gw = start(tls_yaml("  profile: " + profile + "\n"));
    for (const auto& probe : old_tls_probes()) {
      SCOPED_TRACE(probe.version_flag);
      const std::size_t before = gw->log().size();
      const auto r = s_client(gw->tls_port(), probe_args(probe));
      EXPECT_NE(r.exit_code, 0) << r.out;
      EXPECT_FALSE(contains(r.out, "Cipher    : " + probe.cipher + "\n")) << r.out;
      EXPECT_FALSE(contains(r.out, "Cipher is " + probe.cipher)) << r.out;
      // TLS 1.0/1.1 are too old everywhere; TLS 1.2 is too old for `modern` only, and the
      // other profiles have no CBC suite to share.
      const bool tls12 = probe.protocol == "TLSv1.2";
      const std::string why =
          tls12 && profile != "modern" ? "no shared cipher" : "protocol too old";
      EXPECT_TRUE(log_shows_after(*gw, before, why)) << gw->log();
    }
    // The same client with an AEAD suite is served: TLS 1.2 except under `modern`, TLS 1.3.
    std::vector<std::string> good{"-cert",   cert("client").string(),
                                  "-key",    key("client").string(),
                                  "-CAfile", chain_.string()};
    if (profile != "modern") {
      good.insert(good.end(), {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
    }
    const auto ok = s_client(gw->tls_port(), good);
    EXPECT_EQ(ok.exit_code, 0) << ok.out;
    // (TLS 1.3 prints no session block here: the gateway issues no session tickets.)
    EXPECT_TRUE(contains(ok.out, profile == "modern" ? "Cipher is TLS_AES_256_GCM_SHA384\n"
                                                     : "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256\n"))
        << ok.out;
    EXPECT_EQ(gw->stop(), 0);
  }
}

TEST_F(TlsE2eTest, RequireTlsForRefusesThatAeTitleOnThePlainPortOnly) {
  GatewayOptions o;
  o.tls_yaml = tls_yaml();
  o.http = true;
  o.extra_yaml = "accept:\n  require_tls_for: [MR1]\n";
  auto gw = Gateway::start(o);
  // MR1 over plain DICOM: A-ASSOCIATE-RJ, calling AE title not recognized.
  const auto plain = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "MR1"});
  EXPECT_FALSE(plain.ok());
  EXPECT_TRUE(contains(plain.out + plain.err, "Association Rejected")) << plain.out << plain.err;
  EXPECT_TRUE(contains(plain.out + plain.err, "Calling AE Title Not Recognized"))
      << plain.out << plain.err;
  EXPECT_TRUE(log_shows(*gw, "category=tls_required")) << gw->log();
  // The same AE title over TLS, and another AE title over plain DICOM, are accepted.
  auto over_tls = dcmtk_tls("client");
  over_tls.insert(over_tls.begin(), {"-aet", "MR1"});
  const auto secure = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", over_tls);
  EXPECT_TRUE(secure.ok()) << secure.out << secure.err << gw->log();
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "CT1"}).ok());

  const std::string token = admin_token(*gw);
  std::string m;
  EXPECT_TRUE(wait_until(
      [&]() {
        m = metrics(*gw, token);
        return contains(m, "dicom_gw_associations_total{outcome=\"accepted\"} 2\n");
      },
      std::chrono::seconds(10)))
      << m;
  for (const char* line :
       {"dicom_gw_associations_rejected_total{reason=\"tls_required\"} 1\n",
        "dicom_gw_associations_total{outcome=\"rejected\"} 1\n",
        "dicom_gw_associations_rejected_total{reason=\"calling_ae_not_allowed\"} "
        "0\n"}) {
    EXPECT_TRUE(contains(m, line)) << line << m;
  }
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(TlsE2eTest, CrlFileRefusesARevokedClientCertificate) {
  const std::string revoked_serial = issue("revoked", certs::CertKind::kClient, {});
  const std::string later_serial = issue("later", certs::CertKind::kClient, {});
  const fs::path crl = pki_->revoke({revoked_serial});
  {
    // Control: without a CRL the certificate is fine, so the refusal below is the CRL's.
    auto gw = start(tls_yaml());
    EXPECT_TRUE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("revoked")).ok())
        << gw->log();
  }
  auto gw = start(tls_yaml("  crl_file: " + crl.string() + "\n"));
  const auto refused = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("revoked"));
  EXPECT_FALSE(refused.ok()) << refused.out;
  EXPECT_TRUE(log_shows(*gw, "client certificate revoked (tls.crl_file) (CN=revoked)"))
      << gw->log();
  // Our own client hears why.
  const auto ours = gw_echo("127.0.0.1", gw->tls_port(), gw_identity("revoked"));
  EXPECT_EQ(ours.exit_code, 1) << ours.out << ours.err;
  EXPECT_TRUE(contains(ours.err, "revoked")) << ours.err;
  // Certificates the CRL does not list are accepted (the CRL is the issuer's and current).
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client")).ok())
      << gw->log();
  EXPECT_TRUE(gw_echo("127.0.0.1", gw->tls_port(), gw_identity("later")).ok()) << gw->log();

  // SIGHUP re-reads crl_file: a newly revoked certificate is refused on the next connection.
  pki_->revoke({revoked_serial, later_serial});
  ASSERT_TRUE(gw->process().signal_group(SIGHUP));
  ASSERT_TRUE(log_shows(*gw, "event=tls_reloaded")) << gw->log();
  EXPECT_FALSE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("later")).ok());
  EXPECT_TRUE(log_shows(*gw, "client certificate revoked (tls.crl_file) (CN=later)")) << gw->log();
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client")).ok());
  EXPECT_EQ(gw->count_instances(), 0);
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(TlsE2eTest, SilentConnectionsToTheTlsPortDoNotDelayOthers) {
  GatewayOptions o;
  o.tls_yaml = tls_yaml();
  o.artim_timeout_s = 60;  // a handshake done in turn would hold every later client >= 60 s
  auto gw = Gateway::start(o);
  RawConnection idle(gw->tls_port());     // connects, never sends a ClientHello
  RawConnection partial(gw->tls_port());  // a TLS record header announcing 200 bytes, then nothing
  ASSERT_TRUE(partial.send_all({0x16, 0x03, 0x01, 0x00, 0xc8}));

  // Bounded well below ARTIM: a client served only after the silent ones would time out.
  const auto dcmtk = run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client"),
                                 std::chrono::seconds(20));
  EXPECT_TRUE(dcmtk.ok()) << dcmtk.out << dcmtk.err << gw->log();
  const auto ours = gw_echo("127.0.0.1", gw->tls_port(), gw_identity("client"));
  EXPECT_TRUE(ours.ok()) << ours.out << ours.err << gw->log();
  // The silent connections were held open all along (ARTIM has not expired).
  EXPECT_FALSE(idle.peer_closed());
  EXPECT_FALSE(partial.peer_closed());
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(TlsE2eTest, SighupReloadKeepsAHeldAssociationOnItsSessionAndTheOldOnAMismatchedKey) {
  const auto files = generate_dicom(dir_.path() / "source", {"--count", "2", "--seed", "33"});
  ASSERT_EQ(files.size(), 2u);
  std::vector<dicom::SendItem> items;
  for (const auto& f : files) {
    auto item = dicom::prepare_send_item(f);
    ASSERT_TRUE(item.ok()) << item.error().message;
    items.push_back(std::move(item).value());
  }
  std::vector<dicom::PresentationContextRq> contexts;
  for (std::size_t i = 0; i < items.size(); ++i) {
    contexts.push_back({static_cast<std::uint8_t>(1 + 2 * i),
                        items[i].header.meta.media_storage_sop_class_uid,
                        {items[i].header.meta.transfer_syntax_uid}});
  }
  auto gw = start(tls_yaml());
  ASSERT_EQ(served_serial(gw->tls_port()), strip_leading_zeros(server_serial_));

  // An association opened in-process over TLS, on the first certificate's context.
  dicom::ScuOptions options;
  options.calling_ae = "HOLDER";
  options.called_ae = "DICOM_GW";
  options.port = gw->tls_port();
  dicom::ScuTlsOptions tls;
  tls.cert = cert("client");
  tls.key = key("client");
  tls.ca = chain_;
  options.tls = tls;
  IoThread io;
  std::unique_ptr<dicom::ScuAssociation> held;
  // Destroyed first: the io thread stops before `held` goes, so nothing runs on it meanwhile.
  struct StopIoFirst {
    IoThread& io;
    ~StopIoFirst() { io.stop(); }
  } stop_io_first{io};
  using Opened = core::Result<std::unique_ptr<dicom::ScuAssociation>>;
  auto opened = io.run<Opened>(
      [&]() { return dicom::ScuAssociation::open(io.executor(), options, contexts); });
  ASSERT_TRUE(opened.ok()) << opened.error().message << gw->log();
  held = std::move(opened).value();
  auto stored = io.run<core::Result<std::uint16_t>>([&]() { return store_one(*held, items[0]); });
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_EQ(*stored, 0x0000);

  // New certificate and key in the same files, SIGHUP: new connections get the new one.
  const std::string second = issue("server", certs::CertKind::kServer, {"IP:127.0.0.1"});
  ASSERT_NE(second, server_serial_);
  ASSERT_TRUE(gw->process().signal_group(SIGHUP));
  ASSERT_TRUE(log_shows(*gw, "event=tls_reloaded")) << gw->log();
  EXPECT_TRUE(
      wait_until([&]() { return served_serial(gw->tls_port()) == strip_leading_zeros(second); },
                 std::chrono::seconds(15)))
      << gw->log();

  // The held association still works on the session it started with: C-STORE, then release.
  stored = io.run<core::Result<std::uint16_t>>([&]() { return store_one(*held, items[1]); });
  ASSERT_TRUE(stored.ok()) << stored.error().message << gw->log();
  EXPECT_EQ(*stored, 0x0000);
  const auto released = io.run<core::Status>([&]() { return held->release(); });
  EXPECT_TRUE(released.ok()) << released.error().message;
  EXPECT_EQ(gw->count_instances(), 2);
  // The gateway logs the release after it has sent A-RELEASE-RP: wait for the line.
  ASSERT_TRUE(log_shows(*gw, "event=association_released")) << gw->log();
  {
    const std::string log = gw->log();
    const auto accepted = log.find("calling_ae=\"HOLDER\" called_ae=\"DICOM_GW\" tls=true");
    const auto reloaded = log.find("event=tls_reloaded");
    const auto released_at = log.find("event=association_released");
    ASSERT_NE(accepted, std::string::npos) << log;
    ASSERT_NE(released_at, std::string::npos) << log;
    EXPECT_LT(accepted, reloaded) << log;
    EXPECT_LT(reloaded, released_at) << log;
  }
  // A new association is served with the new certificate.
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client")).ok());
  EXPECT_EQ(served_serial(gw->tls_port()), strip_leading_zeros(second));

  // A third certificate whose key file is not its own: the reload fails, the second stays.
  issue("third", certs::CertKind::kServer, {"IP:127.0.0.1"});
  fs::copy_file(cert("third"), cert("server"), fs::copy_options::overwrite_existing);
  ASSERT_TRUE(gw->process().signal_group(SIGHUP));
  EXPECT_TRUE(log_shows(*gw, "event=tls_reload_failed")) << gw->log();
  EXPECT_TRUE(log_shows(*gw, "does not match"));
  EXPECT_EQ(served_serial(gw->tls_port()), strip_leading_zeros(second));
  // And associations still work on it.
  EXPECT_TRUE(run_echoscu("127.0.0.1", gw->tls_port(), "DICOM_GW", dcmtk_tls("client")).ok());
  EXPECT_EQ(gw->stop(), 0);
}

}  // namespace
}  // namespace gw::test
