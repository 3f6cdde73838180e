// /api/v1/certs/info and /api/v1/certs/upload against real files and a real TLS context holder
// (the fake control reloads it like the App does): what info reports, an accepted upload
// replacing the files with the right modes and the served certificate, and refused uploads
// (every reason, files and served certificate untouched).
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "api_fixture.h"
#include "certs/openssl_util.h"
#include "certs/pki.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"
#include "support/text.h"
#include "tls/context.h"

namespace gw::http {
namespace {

namespace fs = std::filesystem;
using index::Role;

/// The gateway as the certificate routes see it: configured files and a TLS context holder
/// that reloads from them.
class FakeTlsControl : public GatewayControl {
 public:
  GatewaySnapshot snapshot() const override {
    GatewaySnapshot s;
    if (holder) {
      const auto current = holder->current();
      s.tls_certificate =
          CertificateSnapshot{current->certificate_subject(), current->certificate_serial(), "", 0};
    }
    return s;
  }
  void queue_changed(const std::string&) override {}
  std::vector<DestinationConfigSnapshot> destinations() const override { return {}; }
  ReloadOutcome reload_config_file() override { return {}; }
  std::optional<EchoOutcome> echo_destination(const std::string&,
                                              std::chrono::milliseconds) override {
    return std::nullopt;
  }
  std::optional<TlsCertificateFiles> tls_certificate_files() const override {
    if (!holder) return std::nullopt;
    return TlsCertificateFiles{tls.cert_file.string(), tls.key_file.string(), tls.ca_file.string(),
                               30};
  }
  core::Status reload_tls_certificate() override {
    ++reloads;
    if (fail_reload) return core::make_error(core::ErrorCode::kTls, "simulated reload failure");
    return holder->reload(tls);
  }

  config::Tls tls;
  std::shared_ptr<tls::TlsContextHolder> holder;
  bool fail_reload = false;
  int reloads = 0;
};

std::string strip_zeros(std::string s) {
  while (s.size() > 1 && s.front() == '0') s.erase(s.begin());
  return s;
}

class CertsRoutesTest : public ApiFixture {
 protected:
  CertsRoutesTest() : pki_(dir_.path() / "pki") {
    old_serial_ = pki_.issue("server", certs::CertKind::kServer, {"DNS:gw.example.org"});
    live_ = dir_.path() / "live";
    fs::create_directories(live_);
    control_.tls.enabled = true;
    control_.tls.cert_file = live_ / "server.pem";
    control_.tls.key_file = live_ / "server.key";
    control_.tls.ca_file = live_ / "ca.pem";
    fs::copy_file(pki_.cert("server"), control_.tls.cert_file);
    fs::copy_file(pki_.key("server"), control_.tls.key_file);
    fs::copy_file(pki_.chain(), control_.tls.ca_file);
    auto holder = tls::TlsContextHolder::create(control_.tls);
    if (!holder.ok()) throw std::runtime_error(holder.error().message);
    control_.holder = *holder;
    ctx_->control = &control_;
    admin_ = add_token(add_user("ada", Role::kAdmin));
    viewer_ = add_token(add_user("vic", Role::kViewer));
  }

  Response upload(const std::map<std::string, std::string>& parts, const std::string& token = "") {
    Request r;
    r.method = "POST";
    r.path = "/api/v1/certs/upload";
    r.headers["authorization"] = "Bearer " + (token.empty() ? admin_ : token);
    r.content_type = "multipart/form-data; boundary=x";
    for (const auto& [name, content] : parts) r.files[name] = FilePart{name + ".pem", "", content};
    r.client_ip = "10.0.0.1";
    r.peer_address = "10.0.0.1:40000";
    return dispatcher_->handle(r);
  }

  std::string served_serial() const { return control_.holder->current()->certificate_serial(); }

  /// The configured files, to show a refused upload left them alone.
  std::string live_files() const {
    return test::read_text(control_.tls.cert_file) + test::read_text(control_.tls.key_file) +
           test::read_text(control_.tls.ca_file);
  }

  test::TempDir dir_{"gw-unit-certs-routes"};
  test::TestPki pki_;
  fs::path live_;
  FakeTlsControl control_;
  std::string old_serial_;
  std::string admin_, viewer_;
};

TEST_F(CertsRoutesTest, InfoDescribesFilesAndServedCertificate) {
  auto r = get("/api/v1/certs/info", viewer_);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = json_of(r);
  EXPECT_EQ(j["cert_file"], control_.tls.cert_file.string());
  EXPECT_EQ(j["key_file"], control_.tls.key_file.string());
  EXPECT_EQ(j["ca_file"], control_.tls.ca_file.string());
  EXPECT_EQ(j["status"], "valid");
  EXPECT_NE(j["subject"].get<std::string>().find("CN=server"), std::string::npos);
  EXPECT_FALSE(j["issuer"].get<std::string>().empty());
  EXPECT_EQ(j["serial"], old_serial_);
  EXPECT_EQ(j["not_before"].get<std::string>().back(), 'Z');
  EXPECT_GE(j["days_until_expiry"].get<int>(), 300);
  EXPECT_EQ(j["sans"], Json::array({"DNS:gw.example.org"}));
  EXPECT_EQ(j["chain"]["verified"], true);
  EXPECT_TRUE(j["chain"]["reason"].is_null());
  EXPECT_EQ(j["problems"].size(), 0u);
  EXPECT_EQ(strip_zeros(j["served"]["serial"]), strip_zeros(old_serial_));
  EXPECT_EQ(j["reload_pending"], false);
  EXPECT_EQ(r.body.find("PRIVATE KEY"), std::string::npos);

  // The files changed behind the gateway's back: a reload is pending, and the chain reason
  // shows when the CA file no longer vouches for the certificate.
  certs::TestCertificateOptions selfie;
  selfie.self_signed = true;
  const auto other = pki_.issue_test("selfie", selfie);
  fs::copy_file(pki_.cert("selfie"), control_.tls.cert_file, fs::copy_options::overwrite_existing);
  fs::copy_file(pki_.key("selfie"), control_.tls.key_file, fs::copy_options::overwrite_existing);
  const auto pending = json_of(get("/api/v1/certs/info", viewer_));
  EXPECT_EQ(pending["serial"], other);
  EXPECT_EQ(pending["reload_pending"], true);
  EXPECT_EQ(pending["chain"]["verified"], false);
  EXPECT_NE(pending["chain"]["reason"].get<std::string>().find("chain does not verify"),
            std::string::npos);
}

TEST_F(CertsRoutesTest, InfoWithoutTlsIsNotFound) {
  control_.holder.reset();
  auto r = get("/api/v1/certs/info", viewer_);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(json_of(r)["error"], "not_found");
  ctx_->control = nullptr;
  EXPECT_EQ(get("/api/v1/certs/info", viewer_).status, 404);
}

TEST_F(CertsRoutesTest, ValidUploadReplacesFilesAndReloads) {
  const auto new_serial = pki_.issue("server2", certs::CertKind::kServer, {"DNS:gw2.example.org"});
  const std::string cert = test::read_text(pki_.cert("server2"));
  const std::string key = test::read_text(pki_.key("server2"));
  const std::string ca = test::read_text(pki_.chain());
  // Loose modes before: the upload sets them.
  fs::permissions(control_.tls.key_file, fs::perms(0644));

  EXPECT_EQ(upload({{"cert_file", cert}, {"key_file", key}}, viewer_).status, 403);

  auto r = upload({{"cert_file", cert}, {"key_file", key}, {"ca_file", ca}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = json_of(r);
  EXPECT_EQ(j["serial"], new_serial);
  EXPECT_EQ(j["status"], "valid");
  EXPECT_EQ(j["reload_pending"], false);
  EXPECT_EQ(strip_zeros(served_serial()), strip_zeros(new_serial));
  EXPECT_EQ(test::read_text(control_.tls.cert_file), cert);
  EXPECT_EQ(test::read_text(control_.tls.key_file), key);
  EXPECT_EQ(test::read_text(control_.tls.ca_file), ca);
  EXPECT_EQ(test::mode_of(control_.tls.cert_file), 0644u);
  EXPECT_EQ(test::mode_of(control_.tls.key_file), 0600u);
  EXPECT_EQ(test::mode_of(control_.tls.ca_file), 0644u);
  // No temporary files left beside the installed ones.
  EXPECT_EQ(std::distance(fs::directory_iterator(live_), fs::directory_iterator()), 3);

  const auto events = audit("certs.upload");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor, "user:ada");
  EXPECT_EQ(events[0].outcome, "ok");
  const auto details = Json::parse(events[0].details);
  EXPECT_EQ(details["serial"], new_serial);
  EXPECT_NE(details["subject"].get<std::string>().find("CN=server2"), std::string::npos);
  EXPECT_FALSE(details["not_after"].get<std::string>().empty());
  EXPECT_EQ(events[0].details.find("PRIVATE"), std::string::npos);

  // Without ca_file the configured one verifies the chain and stays as it is.
  const auto third = pki_.issue("server3", certs::CertKind::kServer);
  auto again = upload({{"cert_file", test::read_text(pki_.cert("server3"))},
                       {"key_file", test::read_text(pki_.key("server3"))}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(strip_zeros(served_serial()), strip_zeros(third));
  EXPECT_EQ(test::read_text(control_.tls.ca_file), ca);
}

TEST_F(CertsRoutesTest, RefusedUploadsListEveryReasonAndChangeNothing) {
  pki_.issue("other", certs::CertKind::kServer);
  certs::TestCertificateOptions expired;
  expired.not_before = std::chrono::system_clock::now() - std::chrono::hours(48);
  expired.not_after = std::chrono::system_clock::now() - std::chrono::hours(24);
  pki_.issue_test("expired", expired);
  certs::TestCertificateOptions weak;
  weak.key = {certs::KeySpec::Type::kRsa1024, true};
  pki_.issue_test("weak", weak);
  const std::string before = live_files();
  const auto served_before = served_serial();

  struct Case {
    std::string name;
    std::map<std::string, std::string> parts;
    std::vector<std::string> reasons;  ///< substrings of `details`, each must appear
  };
  const std::vector<Case> cases = {
      {"mismatched key",
       {{"cert_file", test::read_text(pki_.cert("server"))},
        {"key_file", test::read_text(pki_.key("other"))}},
       {"private key does not match"}},
      {"expired",
       {{"cert_file", test::read_text(pki_.cert("expired"))},
        {"key_file", test::read_text(pki_.key("expired"))}},
       {"expired on"}},
      {"1024-bit key",
       {{"cert_file", test::read_text(pki_.cert("weak"))},
        {"key_file", test::read_text(pki_.key("weak"))}},
       {"key too small"}},
      {"garbage",
       {{"cert_file", "not a certificate"}, {"key_file", "not a key"}},
       {"cannot parse certificate"}},
      {"expired and mismatched",
       {{"cert_file", test::read_text(pki_.cert("expired"))},
        {"key_file", test::read_text(pki_.key("other"))}},
       {"expired on", "private key does not match"}},
      {"foreign CA",
       {{"cert_file", test::read_text(pki_.cert("server"))},
        {"key_file", test::read_text(pki_.key("server"))},
        {"ca_file", test::read_text(pki_.cert("weak"))}},
       {"chain does not verify"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = upload(c.parts);
    ASSERT_EQ(r.status, 422) << r.body;
    const auto j = json_of(r);
    EXPECT_EQ(j["error"], "invalid_argument");
    ASSERT_TRUE(j["details"].is_array()) << r.body;
    const std::string details = j["details"].dump();
    for (const auto& reason : c.reasons) {
      EXPECT_NE(details.find(reason), std::string::npos) << reason << " not in " << details;
    }
    EXPECT_EQ(r.body.find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(live_files(), before);
    EXPECT_EQ(served_serial(), served_before);
  }
  EXPECT_EQ(control_.reloads, 0);
  EXPECT_EQ(audit("certs.upload").size(), cases.size());

  // Not a complete upload: 400.
  EXPECT_EQ(upload({{"cert_file", test::read_text(pki_.cert("server"))}}).status, 400);
  EXPECT_EQ(upload({{"cert_file", "x"}, {"key_file", "y"}, {"extra", "z"}}).status, 400);
  EXPECT_EQ(live_files(), before);
}

TEST_F(CertsRoutesTest, ReloadFailureRestoresPreviousFiles) {
  pki_.issue("server2", certs::CertKind::kServer);
  const std::string before = live_files();
  control_.fail_reload = true;
  auto r = upload({{"cert_file", test::read_text(pki_.cert("server2"))},
                   {"key_file", test::read_text(pki_.key("server2"))},
                   {"ca_file", test::read_text(pki_.chain())}});
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(json_of(r)["message"].get<std::string>().find("simulated reload failure"),
            std::string::npos);
  EXPECT_EQ(live_files(), before);
  EXPECT_EQ(strip_zeros(served_serial()), strip_zeros(old_serial_));
  const auto events = audit("certs.upload");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome, "failed");
}

/// DER bytes of the first certificate of a PEM file, or of a PEM private key.
std::string der_certificate(const fs::path& pem) {
  auto certs = certs::read_certificates(pem);
  if (!certs.ok()) throw std::runtime_error(certs.error().message);
  unsigned char* der = nullptr;
  const int len = i2d_X509(certs->front().get(), &der);
  if (len <= 0) throw std::runtime_error("i2d_X509");
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string der_key(const fs::path& pem) {
  auto key = certs::read_private_key(pem);
  if (!key.ok()) throw std::runtime_error(key.error().message);
  unsigned char* der = nullptr;
  const int len = i2d_PrivateKey(key->get(), &der);
  if (len <= 0) throw std::runtime_error("i2d_PrivateKey");
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

/// A certificate bought from a public CA: its files and the CA bundle that comes with it
/// (another CA than the site PKI the configured ca_file holds).
struct Bought {
  std::string cert, key, ca;
};

Bought buy_certificate(const fs::path& dir) {
  certs::CaOptions ca;
  ca.common_name = "Commercial Root CA";
  ca.with_intermediate = false;
  auto files = certs::init_ca(dir / "ca", ca);
  if (!files.ok()) throw std::runtime_error(files.error().message);
  certs::IssueOptions o;
  o.kind = certs::CertKind::kServer;
  o.common_name = "gw.example.org";
  o.out_cert = dir / "gw.pem";
  o.out_key = dir / "gw.key";
  if (auto issued = certs::issue(dir / "ca", o); !issued.ok()) {
    throw std::runtime_error(issued.error().message);
  }
  return {test::read_text(o.out_cert), test::read_text(o.out_key),
          test::read_text(files->root_cert)};
}

TEST_F(CertsRoutesTest, CaFileDroppingTrustedCasNeedsReplaceTrust) {
  const Bought bought = buy_certificate(dir_.path() / "bought");
  const std::string site_ca = test::read_text(control_.tls.ca_file);
  const std::string before = live_files();

  // The public CA bundle alone would drop the site PKI that verifies the modalities' client
  // certificates: refused, naming what would be dropped.
  auto r = upload({{"cert_file", bought.cert}, {"key_file", bought.key}, {"ca_file", bought.ca}});
  ASSERT_EQ(r.status, 422) << r.body;
  const auto j = json_of(r);
  const std::string message = j["message"];
  EXPECT_NE(message.find("CN=dicom-gw Demo Root CA"), std::string::npos) << message;
  EXPECT_NE(message.find("CN=dicom-gw Demo Intermediate CA"), std::string::npos) << message;
  EXPECT_NE(message.find("client certificates"), std::string::npos) << message;
  EXPECT_NE(message.find("replace_trust=true"), std::string::npos) << message;
  EXPECT_EQ(j["details"].size(), 1u) << r.body;
  EXPECT_EQ(live_files(), before);
  EXPECT_EQ(strip_zeros(served_serial()), strip_zeros(old_serial_));
  auto refused = upload({{"cert_file", bought.cert},
                         {"key_file", bought.key},
                         {"ca_file", bought.ca},
                         {"replace_trust", "false"}});
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(upload({{"cert_file", bought.cert},
                    {"key_file", bought.key},
                    {"ca_file", bought.ca},
                    {"replace_trust", "yes please"}})
                .status,
            400);
  EXPECT_EQ(live_files(), before);
  EXPECT_EQ(control_.reloads, 0);

  // A bundle that keeps the site PKI is accepted as it is.
  const std::string both = bought.ca + site_ca;
  auto kept = upload({{"cert_file", bought.cert}, {"key_file", bought.key}, {"ca_file", both}});
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(test::read_text(control_.tls.ca_file), both);

  // replace_trust=true replaces the trust store on purpose.
  auto replaced = upload({{"cert_file", bought.cert},
                          {"key_file", bought.key},
                          {"ca_file", bought.ca},
                          {"replace_trust", "true"}});
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(test::read_text(control_.tls.ca_file), bought.ca);
  EXPECT_EQ(test::read_text(control_.tls.cert_file), bought.cert);
  const auto events = audit("certs.upload");
  ASSERT_EQ(events.size(), 4u);  // two refused (422), two accepted; the 400 is not audited
}

TEST_F(CertsRoutesTest, CaFileWithoutConfiguredCaFileIsRefused) {
  pki_.issue("server2", certs::CertKind::kServer);
  control_.tls.ca_file.clear();  // peer_certificate none / no_verify: no trust store
  const std::string cert = test::read_text(control_.tls.cert_file);
  auto r = upload({{"cert_file", test::read_text(pki_.cert("server2"))},
                   {"key_file", test::read_text(pki_.key("server2"))},
                   {"ca_file", test::read_text(pki_.chain())}});
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_NE(json_of(r)["message"].get<std::string>().find("tls.ca_file is not configured"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(test::read_text(control_.tls.cert_file), cert);
  EXPECT_EQ(control_.reloads, 0);
  EXPECT_EQ(std::distance(fs::directory_iterator(live_), fs::directory_iterator()), 3);
}

TEST_F(CertsRoutesTest, DerUploadIsRefusedBecauseTheListenersLoadPemOnly) {
  pki_.issue("server2", certs::CertKind::kServer);
  const std::string before = live_files();
  auto r = upload({{"cert_file", der_certificate(pki_.cert("server2"))},
                   {"key_file", der_key(pki_.key("server2"))}});
  ASSERT_EQ(r.status, 422) << r.body;
  const std::string details = json_of(r)["details"].dump();
  EXPECT_NE(details.find("certificate file is DER-encoded"), std::string::npos) << details;
  EXPECT_NE(details.find("private key is DER-encoded"), std::string::npos) << details;
  EXPECT_EQ(live_files(), before);
  EXPECT_EQ(control_.reloads, 0);
}

// certbot's layout: live/NAME/*.pem are symlinks into archive/NAME/. An upload (and the
// restore after a failed reload) replaces the targets; the links stay, so a later certbot
// renewal still reaches the gateway.
TEST_F(CertsRoutesTest, SymlinkedFilesStaySymlinks) {
  const fs::path archive = dir_.path() / "letsencrypt" / "archive" / "gw";
  const fs::path links = dir_.path() / "letsencrypt" / "live" / "gw";
  fs::create_directories(archive);
  fs::create_directories(links);
  fs::copy_file(control_.tls.cert_file, archive / "fullchain1.pem");
  fs::copy_file(control_.tls.key_file, archive / "privkey1.pem");
  fs::create_symlink("../../archive/gw/fullchain1.pem", links / "fullchain.pem");
  fs::create_symlink("../../archive/gw/privkey1.pem", links / "privkey.pem");
  control_.tls.cert_file = links / "fullchain.pem";
  control_.tls.key_file = links / "privkey.pem";

  pki_.issue("server2", certs::CertKind::kServer);
  const std::string cert2 = test::read_text(pki_.cert("server2"));
  auto r = upload({{"cert_file", cert2}, {"key_file", test::read_text(pki_.key("server2"))}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(fs::is_symlink(control_.tls.cert_file));
  EXPECT_TRUE(fs::is_symlink(control_.tls.key_file));
  EXPECT_EQ(test::read_text(archive / "fullchain1.pem"), cert2);
  EXPECT_EQ(test::mode_of(archive / "privkey1.pem"), 0600u);
  EXPECT_EQ(std::distance(fs::directory_iterator(links), fs::directory_iterator()), 2);
  EXPECT_EQ(std::distance(fs::directory_iterator(archive), fs::directory_iterator()), 2);

  // A failed reload restores through the links as well.
  pki_.issue("server3", certs::CertKind::kServer);
  control_.fail_reload = true;
  auto failed = upload({{"cert_file", test::read_text(pki_.cert("server3"))},
                        {"key_file", test::read_text(pki_.key("server3"))}});
  ASSERT_EQ(failed.status, 500) << failed.body;
  EXPECT_TRUE(fs::is_symlink(control_.tls.cert_file));
  EXPECT_TRUE(fs::is_symlink(control_.tls.key_file));
  EXPECT_EQ(test::read_text(archive / "fullchain1.pem"), cert2);
}

}  // namespace
}  // namespace gw::http
