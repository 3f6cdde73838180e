// Encryption at rest of the index, end to end (issue 6, ADR 010): `dicom-gw serve` with
// DICOM_GW_DB_ENCRYPTION_KEY on SQLite and on a real PostgreSQL with log_statement=all.
// storescu sends; the API shows the patient data; a dump of the database does not; a wrong or
// missing key stops the start with a clear error; `dicom-gw db rotate-key` killed half-way
// finishes when run again, while the gateway serves, and then only the new key works.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/postgres.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kKeyA = "Tq0n6xVb1kq4S0m1+fH8yA0rDgq7m9bQ3wZpL2eN5sU=";
constexpr const char* kKeyB = "b9Y3kLmN0pQrStUvWxYz1234567890AbCdEfGhIjKl=";
constexpr const char* kAdminPassword = "admin password, long enough";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

Env key_env(const char* current, const char* previous = nullptr) {
  Env env{{"DICOM_GW_DB_ENCRYPTION_KEY", current}};
  if (previous != nullptr) env.emplace_back("DICOM_GW_DB_ENCRYPTION_KEY_PREVIOUS", previous);
  return env;
}

CommandResult gateway_cli(const Gateway& gw, std::vector<std::string> args, const Env& env,
                          const std::string& input = "") {
  std::vector<std::string> argv{gateway_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--config", gw.config_path().string()});
  return run_command_with_input(argv, input, env, std::chrono::seconds(120));
}

json api_get(std::uint16_t port, const std::string& token, const std::string& target) {
  const auto r =
      run_command({"curl", "-sS", "--max-time", "30", "-H", "Authorization: Bearer " + token,
                   "http://127.0.0.1:" + std::to_string(port) + target},
                  {}, std::chrono::seconds(60));
  if (!r.ok()) return json();
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

class EncryptionTest : public ::testing::Test {
 protected:
  /// A gateway with the API, an admin token, and `count` instances in `count` studies sent by
  /// storescu (one synthetic patient per study: TEST^PATIENT^nnnn / GWTESTnnnn).
  void start_and_ingest(const std::string& extra_yaml, int count, bool encrypt_files = false) {
    files_ = generate_dicom(dir_ / "source", {"--count", std::to_string(count), "--studies",
                                              std::to_string(count), "--seed", "606"});
    GatewayOptions o;
    o.http = true;
    o.extra_yaml = extra_yaml;
    o.env = key_env(kKeyA);
    o.encrypt = encrypt_files;
    gw_ = Gateway::start(o);
    const auto added = gateway_cli(*gw_, {"user", "add", "--name", "admin", "--role", "admin"},
                                   key_env(kKeyA), std::string(kAdminPassword) + "\n");
    ASSERT_TRUE(added.ok()) << added.out << added.err;
    const auto token =
        gateway_cli(*gw_, {"user", "token", "--name", "admin", "--ttl", "1h"}, key_env(kKeyA));
    ASSERT_TRUE(token.ok()) << token.out << token.err;
    token_ = trim(token.out);
    const auto sent = run_storescu("127.0.0.1", gw_->port(), files_, {"-aec", "DICOM_GW"});
    ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err << gw_->log();
  }

  /// Downloads an instance through the API and compares it with what was sent.
  void expect_download_equals_sent(std::size_t i) {
    const std::string uid = sop_instance_uid_of(files_[i]);
    const fs::path out = dir_ / ("download-" + std::to_string(i) + ".dcm");
    const auto r = run_command({"curl", "-sS", "--fail", "--max-time", "30", "-o", out.string(),
                                "-H", "Authorization: Bearer " + token_,
                                "http://127.0.0.1:" + std::to_string(gw_->http_port()) +
                                    "/api/v1/instances/" + uid + "/file"},
                               {}, std::chrono::seconds(60));
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_TRUE(dcmdump_equal(out, files_[i])) << dcmdump(out);
  }

  /// The patient names the API lists, sorted.
  std::vector<std::string> listed_names() {
    const json studies = api_get(gw_->http_port(), token_, "/api/v1/studies?limit=1000");
    std::vector<std::string> names;
    if (!studies.is_object() || !studies["studies"].is_array()) return names;
    for (const auto& s : studies["studies"]) names.push_back(s.value("patient_name", ""));
    std::sort(names.begin(), names.end());
    return names;
  }

  std::vector<std::string> expected_names() const {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < files_.size(); ++i) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "TEST^PATIENT^%04zu", i);
      names.emplace_back(buf);
    }
    return names;
  }

  /// Restarting with `env` must fail; returns the gateway's log of that attempt.
  std::string refused_start(Env env) {
    gw_->stop();
    gw_->set_env(std::move(env));
    EXPECT_THROW(gw_->restart(), std::runtime_error);
    return gw_->log();
  }

  /// rotate-key with one row per batch and a pause, killed after its first progress line;
  /// then run again to the end. Returns the second run's output.
  std::string rotate_killed_then_resumed(const Env& env) {
    std::vector<std::string> argv{gateway_binary().string(),
                                  "db",
                                  "rotate-key",
                                  "--batch",
                                  "1",
                                  "--pause-ms",
                                  "300",
                                  "--config",
                                  gw_->config_path().string()};
    ProcessOptions po;
    po.argv = argv;
    po.env = env;
    po.log_dir = dir_ / "rotate-logs";
    po.log_name = "rotate-1";
    auto first = Process::start(po);
    EXPECT_TRUE(
        wait_until([&] { return first.read_stdout().find("rotate-key:") != std::string::npos; },
                   std::chrono::seconds(30)))
        << first.read_stdout() << first.read_stderr();
    first.kill9();
    const std::string out1 = first.read_stdout();
    EXPECT_EQ(out1.find("done"), std::string::npos) << "it finished before the kill:\n" << out1;
    const auto second = gateway_cli(*gw_, {"db", "rotate-key", "--batch", "5"}, env);
    EXPECT_TRUE(second.ok()) << second.out << second.err;
    EXPECT_NE(second.out.find("done"), std::string::npos) << second.out;
    return second.out;
  }

  TempDir dir_{"gw-e2e-encryption"};
  std::vector<fs::path> files_;
  std::unique_ptr<Gateway> gw_;
  std::string token_;
};

TEST_F(EncryptionTest, SqliteFieldsEncryptedWrongKeyRefusedRotationResumes) {
  start_and_ingest("", 10, /*encrypt_files=*/true);
  ASSERT_TRUE(
      wait_until([&] { return listed_names() == expected_names(); }, std::chrono::seconds(30)))
      << gw_->log();
  const json status = api_get(gw_->http_port(), token_, "/api/v1/status");
  ASSERT_TRUE(status.contains("encryption")) << status.dump(1);
  EXPECT_EQ(status["encryption"]["fields"]["enabled"], true);
  EXPECT_EQ(status["encryption"]["fields"]["key_version"], 1);
  EXPECT_EQ(status["encryption"]["files"]["enabled"], true);
  EXPECT_TRUE(status["encryption"]["volume"].contains("dm_crypt"));
  expect_download_equals_sent(0);

  // A dump of the database holds no patient name or ID.
  gw_->stop();
  const auto dump = run_command({"sqlite3", (gw_->data_dir() / "index.db").string(), ".dump"});
  ASSERT_TRUE(dump.ok()) << dump.err;
  EXPECT_NE(dump.out.find("CREATE TABLE patients"), std::string::npos);
  EXPECT_EQ(dump.out.find("TEST^PATIENT"), std::string::npos);
  EXPECT_EQ(dump.out.find("GWTEST"), std::string::npos);
  EXPECT_EQ(dump.out.find(kKeyA), std::string::npos);

  // A wrong key and no key stop the start, saying so (and never echoing a key).
  std::string log = refused_start(key_env(kKeyB));
  EXPECT_NE(log.find("wrong encryption key"), std::string::npos) << log;
  EXPECT_EQ(log.find(kKeyB), std::string::npos);
  log = refused_start({});
  EXPECT_NE(log.find("needs an encryption key"), std::string::npos) << log;

  // Rotation: the new key with the old one as previous; the gateway serves meanwhile.
  gw_->set_env(key_env(kKeyB, kKeyA));
  gw_->restart();
  EXPECT_EQ(listed_names(), expected_names());
  const std::string out = rotate_killed_then_resumed(key_env(kKeyB, kKeyA));
  // Every stored file's data key is rewrapped by the new key (their contents stay).
  EXPECT_NE(out.find("of 10 files rewrapped"), std::string::npos) << out;
  EXPECT_NE(out.find("version 2"), std::string::npos) << out;
  EXPECT_EQ(listed_names(), expected_names());
  const auto db_status = gateway_cli(*gw_, {"db", "status"}, key_env(kKeyB));
  EXPECT_TRUE(db_status.ok()) << db_status.err;
  EXPECT_NE(db_status.out.find("key version 2: 20"), std::string::npos) << db_status.out;

  // Only the new key now: the gateway starts and reads everything; the old one is refused
  // (the database knows it, but no value is readable with it any more).
  log = refused_start(key_env(kKeyA));
  EXPECT_NE(log.find("encrypted with key version 2"), std::string::npos) << log;
  gw_->set_env(key_env(kKeyB));
  gw_->restart();
  EXPECT_EQ(listed_names(), expected_names());
  expect_download_equals_sent(3);
  EXPECT_EQ(gw_->stop(), 0);
}

TEST_F(EncryptionTest, PostgresFieldsReadableWithPgcryptoAndTheKeyNeverReachesTheServerLog) {
  PostgresServer& server = PostgresServer::shared();
  const std::string database = server.create_database();
  // Every statement the gateway sends is logged, with its parameters.
  const auto logged =
      server.psql(database, "ALTER DATABASE " + database + " SET log_statement = 'all'");
  ASSERT_TRUE(logged.ok()) << logged.err;
  start_and_ingest("database:\n  url: " + server.url(database) + "\n  pool_size: 4\n", 6);
  ASSERT_TRUE(
      wait_until([&] { return listed_names() == expected_names(); }, std::chrono::seconds(30)))
      << gw_->log();
  const json status = api_get(gw_->http_port(), token_, "/api/v1/status");
  EXPECT_EQ(status["encryption"]["fields"]["pgcrypto"], true) << status.dump(1);

  const auto dump = server.pg_dump(database);
  ASSERT_TRUE(dump.ok()) << dump.err;
  EXPECT_NE(dump.out.find("patient_name_enc"), std::string::npos);
  EXPECT_EQ(dump.out.find("TEST^PATIENT"), std::string::npos);
  EXPECT_EQ(dump.out.find("GWTEST"), std::string::npos);

  // Rotation while serving, killed half-way and resumed.
  gw_->stop();
  gw_->set_env(key_env(kKeyB, kKeyA));
  gw_->restart();
  rotate_killed_then_resumed(key_env(kKeyB, kKeyA));
  EXPECT_EQ(listed_names(), expected_names());
  EXPECT_EQ(gw_->stop(), 0);

  // The server logged every statement of the gateway and of rotate-key, and no key: we never
  // send one. (Checked before this test's own psql below puts one in the log.)
  const std::string log = server.log();
  EXPECT_NE(log.find("encryption_keys"), std::string::npos) << "log_statement=all is not on";
  EXPECT_EQ(log.find(kKeyA), std::string::npos);
  EXPECT_EQ(log.find(kKeyB), std::string::npos);

  // The operator's plain SQL (seed 004) recovers the values with the new key only.
  const auto names =
      server.psql(database, std::string("SELECT pgp_sym_decrypt(patient_name_enc, '") + kKeyB +
                                "') FROM patients ORDER BY 1");
  ASSERT_TRUE(names.ok()) << names.err;
  std::string expected;
  for (const auto& n : expected_names()) expected += n + "\n";
  EXPECT_EQ(names.out, expected);
  const auto ids = server.psql(database, std::string("SELECT count(*) FROM patients WHERE "
                                                     "pgp_sym_decrypt(patient_id_enc, '") +
                                             kKeyB + "') LIKE 'GWTEST%'");
  ASSERT_TRUE(ids.ok()) << ids.err;
  EXPECT_EQ(trim(ids.out), "6");
  const auto old_key =
      server.psql(database, std::string("SELECT pgp_sym_decrypt(patient_id_enc, '") + kKeyA +
                                "') FROM patients LIMIT 1");
  EXPECT_FALSE(old_key.ok()) << old_key.out;
}

}  // namespace
}  // namespace gw::test
