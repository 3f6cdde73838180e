// `dicom-gw serve` on PostgreSQL (database.url: postgresql://…): DCMTK storescu sends, the REST
// API lists what arrived, the forwarder delivers it to a DCMTK storescp, the admin commands
// (`user add`, `user token`, `queue list`) work on the same database, and the password never
// reaches the log. A database nobody listens on stops the start with a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
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

constexpr const char* kAdminPassword = "admin password, long enough";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

CommandResult gateway_cli(const Gateway& gw, std::vector<std::string> args,
                          const std::string& input = "") {
  std::vector<std::string> argv{gateway_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--config", gw.config_path().string()});
  return run_command_with_input(argv, input, {}, std::chrono::seconds(60));
}

/// GET http://127.0.0.1:PORT/TARGET with a bearer token; the body as JSON (null on failure).
json api_get(std::uint16_t port, const std::string& token, const std::string& target) {
  const auto r = run_command(
      {"curl", "-sS", "--fail", "--max-time", "30", "-H", "Authorization: Bearer " + token,
       "http://127.0.0.1:" + std::to_string(port) + target},
      {}, std::chrono::seconds(60));
  if (!r.ok()) return json();
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

class PostgresGatewayTest : public ::testing::Test {
 protected:
  TempDir dir_{"gw-e2e-pg"};
  PostgresServer& server_ = PostgresServer::shared();
};

TEST_F(PostgresGatewayTest, StorescuToGatewayOnPostgresListedAndForwarded) {
  const std::string database = server_.create_database();
  const auto files = generate_dicom(dir_ / "source", {"--count", "12", "--seed", "71"});
  StoreScp scp = start_storescp(0, dir_.subdir("received"));

  GatewayOptions o;
  o.http = true;
  o.extra_yaml = "database:\n  url: " + server_.url(database) +
                 "\n  pool_size: 4\n"
                 "destinations:\n  - {name: PACS, ae_title: STORESCP, host: 127.0.0.1, port: " +
                 std::to_string(scp.port) +
                 "}\nroutes:\n  - {name: all, destinations: [PACS]}\n"
                 "retry:\n  initial_backoff: 1s\n  max_backoff: 2s\n";
  auto gw = Gateway::start(o);
  // PostgreSQL commits are flushed by the server: the file is flushed first (ADR 009, not 012).
  EXPECT_NE(gw->log().find("event=ingest_durability fsync=true flush=per_file"), std::string::npos)
      << gw->log();

  // The admin commands open the same PostgreSQL index.
  const auto added = gateway_cli(*gw, {"user", "add", "--name", "admin", "--role", "admin"},
                                 std::string(kAdminPassword) + "\n");
  ASSERT_TRUE(added.ok()) << added.out << added.err;
  const auto token_out = gateway_cli(*gw, {"user", "token", "--name", "admin", "--ttl", "1h"});
  ASSERT_TRUE(token_out.ok()) << token_out.out << token_out.err;
  const std::string token = trim(token_out.out);
  ASSERT_EQ(token.rfind("dgw_", 0), 0u) << token;

  const auto sent = run_storescu("127.0.0.1", gw->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err << gw->log();

  // Listed by the API: every instance, in its study.
  json studies;
  ASSERT_TRUE(wait_until(
      [&] {
        studies = api_get(gw->http_port(), token, "/api/v1/studies");
        if (!studies.is_object() || !studies["studies"].is_array()) return false;
        std::int64_t instances = 0;
        for (const auto& s : studies["studies"]) instances += s.value("instance_count", 0);
        return instances == static_cast<std::int64_t>(files.size());
      },
      std::chrono::seconds(30)))
      << studies.dump(1) << gw->log();
  ASSERT_FALSE(studies["studies"].empty());
  const std::string study_uid = studies["studies"][0].value("study_instance_uid", "");
  const json one = api_get(gw->http_port(), token, "/api/v1/studies/" + study_uid + "/series");
  EXPECT_TRUE(one.is_object()) << one.dump();

  // Forwarded to storescp, and the queue (read from PostgreSQL by the CLI) says delivered.
  ASSERT_TRUE(wait_until([&] { return scp.received_files().size() >= files.size(); },
                         std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(scp.received_files().size(), files.size());
  std::size_t delivered = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto listed = gateway_cli(*gw, {"queue", "list", "--limit", "1000", "--json"});
        const json rows = json::parse(listed.out, nullptr, false);
        delivered = 0;
        if (!rows.is_array()) return false;
        for (const auto& r : rows) delivered += r.value("state", "") == "delivered" ? 1 : 0;
        return delivered == files.size();
      },
      std::chrono::seconds(20)))
      << delivered;

  // Rows really are in PostgreSQL, and nothing went to a SQLite file.
  const auto counted = server_.psql(database, "SELECT count(*) FROM instances");
  ASSERT_TRUE(counted.ok()) << counted.err;
  EXPECT_EQ(trim(counted.out), std::to_string(files.size()));
  EXPECT_FALSE(fs::exists(gw->data_dir() / "index.db"));

  EXPECT_EQ(gw->stop(), 0);
  const std::string log = gw->log();
  EXPECT_NE(log.find("backend=postgresql"), std::string::npos) << log;
  EXPECT_EQ(log.find(server_.password()), std::string::npos) << "the password reached the log";
}

// PostgreSQL refuses text that is not UTF-8: a study in ISO 8859-1 (the usual European
// character set) is indexed converted, not refused with 0xA700 for ever.
TEST_F(PostgresGatewayTest, Latin1TextIsStoredAsUtf8) {
  const std::string database = server_.create_database();
  const auto files = generate_dicom(dir_ / "source", {"--count", "1", "--seed", "72"});
  ASSERT_EQ(files.size(), 1u);
  const auto modified = run_command({"dcmodify", "-nb", "-i", "(0008,0005)=ISO_IR 100", "-i",
                                     "(0008,1030)=Sch\xE4"
                                     "del",
                                     "-i",
                                     "(0010,0010)=M\xFC"
                                     "ller^J\xF6"
                                     "rg",
                                     files[0].string()},
                                    {}, std::chrono::seconds(60));
  ASSERT_TRUE(modified.ok()) << modified.out << modified.err;

  GatewayOptions o;
  o.extra_yaml = "database:\n  url: " + server_.url(database) + "\n";
  auto gw = Gateway::start(o);
  const auto sent = run_storescu("127.0.0.1", gw->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err << gw->log();

  const auto description = server_.psql(database, "SELECT study_description FROM studies");
  ASSERT_TRUE(description.ok()) << description.err;
  EXPECT_EQ(trim(description.out),
            "Sch\xC3\xA4"
            "del");
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(PostgresGatewayTest, AnUnreachableDatabaseStopsTheStartNamingHostAndPort) {
  const std::uint16_t closed = free_tcp_port();
  const fs::path config = dir_ / "config.yaml";
  std::ofstream(config) << "data_dir: " << (dir_ / "data").string() << "\n"
                        << "listeners:\n  - {name: plain, bind: 127.0.0.1, port: "
                        << free_tcp_port() << "}\n"
                        << "http:\n  enabled: false\n"
                        << "database:\n  url: postgresql://gw:hunter2-secret@127.0.0.1:" << closed
                        << "/gw\n";
  const auto r = run_command({gateway_binary().string(), "serve", "--config", config.string()}, {},
                             std::chrono::seconds(60));
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  const std::string output = r.out + r.err;
  EXPECT_NE(output.find("127.0.0.1:" + std::to_string(closed)), std::string::npos) << output;
  EXPECT_EQ(output.find("hunter2-secret"), std::string::npos) << output;
}

}  // namespace
}  // namespace gw::test
