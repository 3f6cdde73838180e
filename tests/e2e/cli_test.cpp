// The command line's checks through the real binary: `config check` refuses what `serve`
// refuses (every problem at once, named by config key), and the options that take a fixed set
// of values or a range refuse the rest with exit code 2.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/paths.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

std::string both(const CommandResult& r) { return r.out + r.err; }
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_.path() / "pki");
    pki_->issue("server", certs::CertKind::kServer, {"IP:127.0.0.1"});
    pki_->issue("client", certs::CertKind::kClient);
  }

  fs::path write(const std::string& name, const std::string& text, fs::perms mode) {
    const fs::path path = dir_.path() / name;
    std::ofstream(path) << text;
    fs::permissions(path, mode);
    return path;
  }
  CommandResult gw(std::vector<std::string> args) {
    args.insert(args.begin(), gateway_binary().string());
    // Keys from files only, whatever the test's environment holds (empty counts as unset).
    return run_command(args, {{"DICOM_GW_DB_ENCRYPTION_KEY", ""}}, std::chrono::seconds(30));
  }
  CommandResult check(const fs::path& config) {
    return gw({"config", "check", "--config", config.string()});
  }
  /// The listener, destination and audit export over TLS, every key matching its certificate
  /// unless replaced by `server_key`, `destination_key`, `syslog_key`.
  std::string tls_config(const fs::path& server_key, const fs::path& destination_key,
                         const fs::path& syslog_key) const {
    const std::string chain = pki_->chain().string();
    return "data_dir: " + (dir_.path() / "data").string() +
           "\n"
           "listeners:\n  - {name: s, bind: 127.0.0.1, port: 0, tls: true}\n"
           "tls:\n  enabled: true\n  cert_file: " +
           pki_->cert("server").string() + "\n  key_file: " + server_key.string() +
           "\n  ca_file: " + chain +
           "\n"
           "destinations:\n"
           "  - name: PACS\n    ae_title: PACS\n    host: 127.0.0.1\n    port: 104\n"
           "    tls_enabled: true\n    tls_cert_path: " +
           pki_->cert("client").string() + "\n    tls_key_path: " + destination_key.string() +
           "\n    tls_ca_path: " + chain +
           "\n"
           "audit:\n  syslog:\n    enabled: true\n    host: 127.0.0.1\n    tls: true\n"
           "    cert_file: " +
           pki_->cert("client").string() + "\n    key_file: " + syslog_key.string() + "\n";
  }

  TempDir dir_{"gw-cli"};
  std::unique_ptr<TestPki> pki_;
};

TEST_F(CliTest, ConfigCheckListsEveryProblemServeWouldRefuse) {
  // Three TLS keys that are not their certificate's, a world-readable encryption key file and
  // PostgreSQL password file: all in one report, each under its config key.
  const fs::path key = write("db.key", std::string(44, 'k') + "\n",
                             fs::perms::owner_read | fs::perms::owner_write |
                                 fs::perms::group_read | fs::perms::others_read);
  const fs::path password =
      write("pg.password", "secret\n", fs::perms::owner_read | fs::perms::others_read);
  const fs::path config =
      write("bad.yaml",
            tls_config(pki_->key("client"), pki_->key("server"), pki_->key("server")) +
                "database:\n  url: postgresql://gw@127.0.0.1:1/gw\n  encryption_key_file: " +
                key.string() + "\n  password_file: " + password.string() + "\n",
            fs::perms::owner_read | fs::perms::owner_write);
  const auto r = check(config);
  EXPECT_EQ(r.exit_code, 2) << both(r);
  EXPECT_TRUE(contains(r.err, "5 problem(s)")) << r.err;
  EXPECT_TRUE(contains(r.err, "  tls.key_file: ")) << r.err;
  EXPECT_TRUE(contains(r.err, "  destinations[0].tls_key_path: ")) << r.err;
  EXPECT_TRUE(contains(r.err, "does not match the certificate in destinations[0].tls_cert_path"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "  audit.syslog: ")) << r.err;
  EXPECT_TRUE(contains(r.err, "audit.syslog.key_file")) << r.err;
  EXPECT_TRUE(contains(r.err, "database.encryption_key_file")) << r.err;
  EXPECT_TRUE(contains(r.err, "  database.password_file: ")) << r.err;
  // Config keys, never the SCU tools' flags.
  EXPECT_FALSE(contains(r.err, "--key")) << r.err;
  EXPECT_FALSE(contains(r.err, "--cert")) << r.err;

  // The same files, each key with its certificate and owner-only secrets: accepted.
  fs::permissions(key, fs::perms::owner_read);
  fs::permissions(password, fs::perms::owner_read);
  std::ofstream(config) << tls_config(pki_->key("server"), pki_->key("client"), pki_->key("client"))
                        << "database:\n  url: postgresql://gw@127.0.0.1:1/gw\n"
                        << "  encryption_key_file: " << key.string() << "\n"
                        << "  password_file: " << password.string() << "\n";
  const auto ok = check(config);
  EXPECT_EQ(ok.exit_code, 0) << both(ok);
}

TEST_F(CliTest, ConfigCheckAndServeRefuseStorageEncryptWithoutAKey) {
  const fs::path config = write("encrypt.yaml",
                                "data_dir: " + (dir_.path() / "data").string() +
                                    "\nlisteners:\n  - {name: p, bind: 127.0.0.1, port: 0}\n"
                                    "http: {enabled: false}\n"
                                    "storage: {encrypt: true}\n",
                                fs::perms::owner_read | fs::perms::owner_write);
  const auto r = check(config);
  EXPECT_EQ(r.exit_code, 2) << both(r);
  EXPECT_TRUE(contains(r.err, "  storage.encrypt: ")) << r.err;
  const auto serve = gw({"serve", "--config", config.string()});
  EXPECT_EQ(serve.exit_code, 2) << both(serve);
  EXPECT_TRUE(contains(serve.err, "storage.encrypt")) << serve.err;
}

TEST_F(CliTest, ListenerBindMustBeAnAddressForCheckAndServe) {
  const fs::path config = write("bind.yaml",
                                "data_dir: " + (dir_.path() / "data").string() +
                                    "\nlisteners:\n  - {name: p, bind: localhost, port: 0}\n"
                                    "http: {enabled: false}\n",
                                fs::perms::owner_read | fs::perms::owner_write);
  for (const char* command : {"check", "serve"}) {
    const auto r = std::string(command) == "check" ? check(config)
                                                   : gw({"serve", "--config", config.string()});
    EXPECT_EQ(r.exit_code, 2) << command << ": " << both(r);
    EXPECT_TRUE(contains(r.err, "listeners[0].bind")) << command << ": " << r.err;
  }
}

TEST_F(CliTest, ConfigCheckOfAMissingFileHasNoEmptyKeyPath) {
  const auto r = check(dir_.path() / "missing.yaml");
  EXPECT_EQ(r.exit_code, 2) << both(r);
  EXPECT_TRUE(contains(r.err, "\n  config: cannot read")) << r.err;
  EXPECT_FALSE(contains(r.err, "  : ")) << r.err;
}

TEST_F(CliTest, EchoRepeatNeedsAtLeastOne) {
  // Refused while parsing, before any connection (nothing listens on port 1).
  const auto r = gw({"echo", "--repeat", "0", "127.0.0.1", "1"});
  EXPECT_EQ(r.exit_code, 2) << both(r);
  EXPECT_TRUE(contains(r.err, "--repeat")) << r.err;
}

TEST_F(CliTest, CertsCheckPurposeIsServerOrClient) {
  const auto bad =
      gw({"certs", "check", "--cert", pki_->cert("server").string(), "--purpose", "clinet"});
  EXPECT_EQ(bad.exit_code, 2) << both(bad);
  EXPECT_TRUE(contains(bad.err, "--purpose")) << bad.err;
  // A client-only certificate checked as a server's is a problem (exit 1), as a client's not.
  const auto as_server = gw({"certs", "check", "--cert", pki_->cert("client").string(), "--ca",
                             pki_->chain().string(), "--purpose", "server"});
  EXPECT_EQ(as_server.exit_code, 1) << both(as_server);
  const auto as_client = gw({"certs", "check", "--cert", pki_->cert("client").string(), "--ca",
                             pki_->chain().string(), "--purpose", "client"});
  EXPECT_EQ(as_client.exit_code, 0) << both(as_client);
}

TEST_F(CliTest, PkiKeyTypesInBothSpellings) {
  // The help says rsa-2048; the older rsa2048 keeps working.
  const fs::path ca = dir_.path() / "rsa-ca";
  const auto init = gw({"pki", "init", "--dir", ca.string(), "--key", "rsa-2048"});
  ASSERT_EQ(init.exit_code, 0) << both(init);
  for (const char* spelling : {"rsa-2048", "rsa2048"}) {
    const fs::path cert = dir_.path() / (std::string(spelling) + ".pem");
    const auto issued = gw({"pki", "issue", "--ca", ca.string(), "--cn", "host", "--server",
                            "--key", spelling, "--out-cert", cert.string(), "--out-key",
                            (dir_.path() / (std::string(spelling) + ".key")).string()});
    EXPECT_EQ(issued.exit_code, 0) << spelling << ": " << both(issued);
    const auto info = gw({"certs", "info", cert.string()});
    EXPECT_TRUE(contains(info.out, "2048 bits")) << spelling << ": " << both(info);
  }
  const auto bad = gw({"pki", "init", "--dir", (dir_.path() / "x").string(), "--key", "rsa-1000"});
  EXPECT_EQ(bad.exit_code, 2) << both(bad);
}

}  // namespace
}  // namespace gw::test
