// /api/v1/destinations on a real `dicom-gw serve`, curl as the client, DCMTK storescp as the
// destinations (ADR 005). An API destination with a match on the calling AE title receives only
// what that AE title sends; PUT moves it to a second storescp at once; it survives a restart;
// DELETE refuses while rows are queued and dead-letters them with force. Bad bodies get 422
// with every issue, names of the config file's destinations 409, and a config reload that
// would reuse an API destination's name is refused. Every write leaves its audit row.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kAdminPassword = "admin password, long enough";

struct Answer {
  int status = 0;
  json body;
};

/// One request with curl (a JSON body when given); the status code on the last line of stdout.
Answer curl(std::uint16_t port, const std::string& method, const std::string& target,
            const std::string& token, const std::optional<json>& body = std::nullopt) {
  std::vector<std::string> argv{
      "curl", "-sS",           "--max-time", "30",
      "-X",   method,          "-H",         "Authorization: Bearer " + token,
      "-w",   "\n%{http_code}"};
  if (body) {
    argv.insert(argv.end(),
                {"-H", "Content-Type: application/json", "--data-binary", body->dump()});
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + target);
  const auto r = run_command(argv, {}, std::chrono::seconds(60));
  Answer a;
  if (!r.ok()) {
    ADD_FAILURE() << join_argv(argv) << ": " << r.err;
    return a;
  }
  const auto nl = r.out.rfind('\n');
  a.status = std::stoi(r.out.substr(nl + 1));
  a.body = json::parse(r.out.substr(0, nl), nullptr, false);
  return a;
}

std::string gateway_cli(const Gateway& gw, std::vector<std::string> args,
                        const std::string& input = "") {
  std::vector<std::string> argv{gateway_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--config", gw.config_path().string()});
  const auto r = run_command_with_input(argv, input, {}, std::chrono::seconds(60));
  EXPECT_TRUE(r.ok()) << join_argv(argv) << "\n" << r.out << r.err;
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string admin_token(const Gateway& gw) {
  gateway_cli(gw, {"user", "add", "--name", "admin", "--role", "admin"},
              std::string(kAdminPassword) + "\n");
  return gateway_cli(gw, {"user", "token", "--name", "admin", "--ttl", "1h"});
}

/// `dicom-gw send` with this calling AE title; true when the gateway stored the file.
bool send_as(const Gateway& gw, const std::string& calling_ae, const fs::path& file) {
  const auto r =
      run_command({gateway_binary().string(), "send", "--aet", calling_ae, "--aec", "DICOM_GW",
                   "--no-progress", "127.0.0.1", std::to_string(gw.port()), file.string()},
                  {}, std::chrono::seconds(60));
  EXPECT_TRUE(r.ok()) << r.out << r.err;
  return r.ok();
}

std::set<std::string> issue_paths(const Answer& a) {
  std::set<std::string> paths;
  for (const auto& d : a.body["details"]) paths.insert(d["path"].get<std::string>());
  return paths;
}

/// API_PACS's delivered rows (storescp writes a file before it answers, so its files are not
/// yet deliveries).
int delivered(std::uint16_t port, const std::string& token) {
  const auto a = curl(port, "GET", "/api/v1/destinations/API_PACS", token);
  if (a.status != 200) return -1;
  return a.body["queue"]["delivered"].get<int>();
}

json destination_body(const std::string& name, std::uint16_t port) {
  return {{"name", name},
          {"ae_title", "STORESCP"},
          {"host", "127.0.0.1"},
          {"port", port},
          {"match", {{"calling_ae", "CT1"}}}};
}

/// A config destination nobody listens on (nothing routes to it), and retries an hour apart,
/// so a row that failed once stays queued for the rest of the test.
GatewayOptions options() {
  GatewayOptions o;
  o.http = true;
  o.extra_yaml = "destinations:\n  - {name: CFG_PACS, ae_title: CFG, host: 127.0.0.1, port: " +
                 std::to_string(free_tcp_port()) +
                 "}\nretry:\n  initial_backoff: 3600s\n  max_backoff: 3600s\n";
  return o;
}

TEST(ApiDestinationsTest, CreateRouteByMatchMoveRestartAndDelete) {
  TempDir dir("gw-e2e-api-dest");
  auto gw = Gateway::start(options());
  const auto port = gw->http_port();
  const std::string admin = admin_token(*gw);
  ASSERT_EQ(admin.rfind("dgw_", 0), 0u) << admin;
  const auto files = generate_dicom(dir.path() / "data", {"--count", "6", "--seed", "11"});
  ASSERT_EQ(files.size(), 6u);
  StoreScp first = start_storescp(0, dir.subdir("first"));
  std::optional<StoreScp> second = start_storescp(0, dir.subdir("second"));

  // ---- create: only CT1's instances reach it ----
  const auto created =
      curl(port, "POST", "/api/v1/destinations", admin, destination_body("API_PACS", first.port));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body["source"], "api");
  EXPECT_EQ(created.body["match"], json({{"calling_ae", "CT1"}}));
  EXPECT_EQ(created.body["created_by"], "user:admin");
  EXPECT_EQ(created.body["max_async_operations"], 1);  // no window proposed by default
  const auto listed = curl(port, "GET", "/api/v1/destinations", admin);
  ASSERT_EQ(listed.status, 200);
  std::map<std::string, std::string> sources;
  for (const auto& d : listed.body["items"]) sources[d["name"]] = d["source"];
  EXPECT_EQ(sources,
            (std::map<std::string, std::string>{{"API_PACS", "api"}, {"CFG_PACS", "config"}}));
  const auto echo = curl(port, "POST", "/api/v1/destinations/API_PACS/echo", admin);
  EXPECT_EQ(echo.body["ok"], true) << echo.body;

  ASSERT_TRUE(send_as(*gw, "CT1", files[0]));
  ASSERT_TRUE(send_as(*gw, "MR1", files[1]));
  // Both were committed with their routing before `send` returned: one row for API_PACS only.
  ASSERT_TRUE(wait_until([&] { return delivered(port, admin) == 1; }, std::chrono::seconds(30)));
  EXPECT_EQ(first.received_uids(), std::set<std::string>{sop_instance_uid_of(files[0])});
  EXPECT_EQ(gw->count_instances(), 2);
  const auto depth = curl(port, "GET", "/api/v1/destinations/API_PACS", admin).body["queue"];
  EXPECT_EQ(depth["pending"].get<int>() + depth["in_flight"].get<int>(), 0) << depth;

  // ---- PUT: new instances go to the second storescp at once ----
  // (It proposes a window now; storescp grants none, so one C-STORE at a time.)
  json body = destination_body("API_PACS", second->port);
  body["max_async_operations"] = 4;
  const auto moved = curl(port, "PUT", "/api/v1/destinations/API_PACS", admin, body);
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(moved.body["port"], second->port);
  EXPECT_EQ(moved.body["max_async_operations"], 4);
  ASSERT_TRUE(send_as(*gw, "CT1", files[2]));
  ASSERT_TRUE(wait_until([&] { return delivered(port, admin) == 2; }, std::chrono::seconds(30)));
  EXPECT_EQ(second->received_uids(), std::set<std::string>{sop_instance_uid_of(files[2])});
  EXPECT_EQ(first.received_files().size(), 1u);

  // ---- restart: still there, still used ----
  ASSERT_EQ(gw->stop(), 0);
  gw->restart();
  const auto after = curl(port, "GET", "/api/v1/destinations/API_PACS", admin);
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.body["source"], "api");
  EXPECT_EQ(after.body["port"], second->port);
  EXPECT_EQ(after.body["max_async_operations"], 4);
  ASSERT_TRUE(send_as(*gw, "CT1", files[3]));
  // Delivered (storescp answered), not merely written: it is stopped next.
  ASSERT_TRUE(wait_until([&] { return delivered(port, admin) == 3; }, std::chrono::seconds(30)));
  EXPECT_EQ(second->received_files().size(), 2u);

  // ---- DELETE with a queued row: 409, then force dead-letters it ----
  second.reset();  // nobody listens now: the next row fails once and waits an hour
  ASSERT_TRUE(send_as(*gw, "CT1", files[4]));
  const auto refused = curl(port, "DELETE", "/api/v1/destinations/API_PACS", admin);
  ASSERT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(curl(port, "GET", "/api/v1/destinations/API_PACS", admin).status, 200);
  const auto forced = curl(port, "DELETE", "/api/v1/destinations/API_PACS?force=true", admin);
  ASSERT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(forced.body["dead_lettered"], 1);
  EXPECT_EQ(curl(port, "GET", "/api/v1/destinations/API_PACS", admin).status, 404);
  const auto dead = curl(port, "GET", "/api/v1/queue?destination=API_PACS&state=dead", admin);
  ASSERT_EQ(dead.body["items"].size(), 1u) << dead.body;
  EXPECT_EQ(dead.body["items"][0]["last_error"], "destination deleted");
  // Gone from routing too: CT1's next instance is stored and goes nowhere.
  ASSERT_TRUE(send_as(*gw, "CT1", files[5]));
  const auto rows = curl(port, "GET", "/api/v1/queue?destination=API_PACS", admin);
  EXPECT_EQ(rows.body["items"].size(), 4u) << rows.body;  // files 0, 2, 3, 4

  // ---- audit: one row per write, in the write's transaction ----
  const auto audit = curl(port, "GET", "/api/v1/audit?action=destination.*&limit=100", admin);
  std::multiset<std::string> actions;
  for (const auto& e : audit.body["events"]) {
    if (e["action"] == "destination.echo") continue;
    actions.insert(e["action"].get<std::string>() + " " + e["target"].get<std::string>());
  }
  EXPECT_EQ(actions, (std::multiset<std::string>{"destination.create destination:API_PACS",
                                                 "destination.update destination:API_PACS",
                                                 "destination.delete destination:API_PACS"}))
      << audit.body;
  EXPECT_EQ(gw->stop(), 0);
}

TEST(ApiDestinationsTest, BadBodiesNameClashesAndReloadClash) {
  auto gw = Gateway::start(options());
  const auto port = gw->http_port();
  const std::string admin = admin_token(*gw);

  // Every issue at once, with its key path, as `config check` would report them.
  const json bad = {
      {"name", "BAD"},       {"ae_title", "THIS_AE_TITLE_IS_TOO_LONG"},
      {"port", 70000},       {"prot", 1},
      {"tls_enabled", true}, {"match", {{"calling_ae", json::array()}, {"modality", "ct"}}}};
  const auto refused = curl(port, "POST", "/api/v1/destinations", admin, bad);
  ASSERT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(refused.body["error"], "config_error");
  const std::set<std::string> expected{
      "ae_title", "host", "port", "prot", "tls_ca_path", "match.calling_ae", "match.modality"};
  EXPECT_EQ(issue_paths(refused), expected) << refused.body;
  // Tag keywords are checked like a route's.
  json keyword = destination_body("KW", 104);
  keyword["match"] = {{"tags", {{"StationNme", {{"equals", "X"}}}}}};
  const auto unknown = curl(port, "POST", "/api/v1/destinations", admin, keyword);
  ASSERT_EQ(unknown.status, 422) << unknown.body;
  EXPECT_EQ(issue_paths(unknown), std::set<std::string>{"match.tags.StationNme"});
  EXPECT_NE(unknown.body.dump().find("StationName"), std::string::npos) << unknown.body;
  EXPECT_EQ(curl(port, "POST", "/api/v1/destinations", admin, json::array()).status, 400);

  // The config file's destinations are read-only here.
  const auto clash =
      curl(port, "POST", "/api/v1/destinations", admin, destination_body("cfg_pacs", 104));
  EXPECT_EQ(clash.status, 409) << clash.body;
  const auto put_cfg =
      curl(port, "PUT", "/api/v1/destinations/CFG_PACS", admin, destination_body("CFG_PACS", 104));
  ASSERT_EQ(put_cfg.status, 409) << put_cfg.body;
  EXPECT_NE(put_cfg.body["message"].get<std::string>().find("config file"), std::string::npos);
  EXPECT_EQ(curl(port, "DELETE", "/api/v1/destinations/CFG_PACS", admin).status, 409);
  EXPECT_EQ(
      curl(port, "PUT", "/api/v1/destinations/NOPE", admin, destination_body("NOPE", 104)).status,
      404);
  EXPECT_EQ(curl(port, "DELETE", "/api/v1/destinations/NOPE", admin).status, 404);

  // Without match: accepted, and the answer says it receives nothing automatically.
  json plain = destination_body("Api_Plain", 104);
  plain.erase("match");
  const auto created = curl(port, "POST", "/api/v1/destinations", admin, plain);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_TRUE(created.body["match"].is_null());
  EXPECT_TRUE(created.body.contains("note"));
  EXPECT_EQ(
      curl(port, "POST", "/api/v1/destinations", admin, destination_body("API_PLAIN", 104)).status,
      409);
  json renamed = plain;
  renamed["name"] = "OTHER";
  const auto rename = curl(port, "PUT", "/api/v1/destinations/Api_Plain", admin, renamed);
  EXPECT_EQ(rename.status, 422) << rename.body;
  EXPECT_EQ(issue_paths(rename), std::set<std::string>{"name"});

  // A config file that now names a destination like the API one is refused as a whole.
  std::string config;
  {
    std::ifstream in(gw->config_path());
    config.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto at = config.find("destinations:\n");
  ASSERT_NE(at, std::string::npos);
  config.insert(at + 14, "  - {name: api_plain, ae_title: X, host: 127.0.0.1, port: 104}\n");
  std::ofstream(gw->config_path()) << config;
  const auto reload = curl(port, "POST", "/api/v1/config/reload", admin);
  ASSERT_EQ(reload.status, 422) << reload.body;
  EXPECT_EQ(issue_paths(reload), std::set<std::string>{"destinations[0].name"}) << reload.body;
  EXPECT_EQ(curl(port, "GET", "/api/v1/destinations/Api_Plain", admin).body["source"], "api");
  EXPECT_EQ(gw->stop(), 0);
}

}  // namespace
}  // namespace gw::test
