// POST /api/v1/config/reload and /api/v1/destinations on a real `dicom-gw serve`, curl as the
// client: a broken config file (an unknown key, a route to an unknown destination) is refused
// with 422 listing both and changes nothing; a good one adding a DCMTK storescp destination
// and a route to it applies at once: the destination is listed, answers a C-ECHO through the
// API, and receives what the gateway receives. Each attempt leaves a config.reload audit row,
// SIGHUP's with the actor "system".

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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

/// One request with curl; the status code on the last line of stdout.
Answer curl(std::uint16_t port, const std::string& method, const std::string& target,
            const std::string& token) {
  std::vector<std::string> argv{"curl",
                                "-sS",
                                "--max-time",
                                "30",
                                "-X",
                                method,
                                "-H",
                                "Authorization: Bearer " + token,
                                "-w",
                                "\n%{http_code}",
                                "http://127.0.0.1:" + std::to_string(port) + target};
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

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// `text` with the first `from` replaced by `to` (which must be there).
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::set<std::string> destination_names(const Answer& a) {
  std::set<std::string> names;
  for (const auto& d : a.body["items"]) names.insert(d["name"].get<std::string>());
  return names;
}

TEST(ApiReloadTest, BrokenConfigIsRefusedGoodOneAppliesAtOnce) {
  TempDir dir("gw-e2e-reload");
  GatewayOptions o;
  o.http = true;
  const auto dead_port = free_tcp_port();
  // Rows for OLD stay queued (nobody listens there) and are not retried during the test.
  o.extra_yaml = "destinations:\n  - {name: OLD, ae_title: OLD, host: 127.0.0.1, port: " +
                 std::to_string(dead_port) +
                 "}\nroutes:\n  - {name: all, destinations: [OLD]}\n"
                 "retry:\n  initial_backoff: 3600s\n  max_backoff: 3600s\n";
  auto gw = Gateway::start(o);
  const auto port = gw->http_port();
  gateway_cli(*gw, {"user", "add", "--name", "admin", "--role", "admin"},
              std::string(kAdminPassword) + "\n");
  const std::string admin = gateway_cli(*gw, {"user", "token", "--name", "admin", "--ttl", "1h"});
  ASSERT_EQ(admin.rfind("dgw_", 0), 0u) << admin;
  const std::string original = read_all(gw->config_path());

  const auto before = curl(port, "GET", "/api/v1/destinations", admin);
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_EQ(destination_names(before), std::set<std::string>{"OLD"});
  EXPECT_EQ(before.body["items"][0]["source"], "config");

  // ---- broken: an unknown key and a route to an unknown destination ----
  std::ofstream(gw->config_path())
      << replaced(original, "routes:\n", "routes:\n  - {name: broken, destinations: [NOPE]}\n") +
             "bogus_key: 1\n";
  const auto refused = curl(port, "POST", "/api/v1/config/reload", admin);
  ASSERT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(refused.body["error"], "config_error");
  std::set<std::string> paths;
  for (const auto& d : refused.body["details"]) paths.insert(d["path"].get<std::string>());
  EXPECT_TRUE(paths.count("bogus_key")) << refused.body;
  EXPECT_TRUE(paths.count("routes[0].destinations[0]")) << refused.body;
  // Unchanged: the same destinations, DICOM still answers.
  EXPECT_EQ(destination_names(curl(port, "GET", "/api/v1/destinations", admin)),
            std::set<std::string>{"OLD"});
  const auto echo_gw = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW");
  EXPECT_TRUE(echo_gw.ok()) << echo_gw.out << echo_gw.err;

  // ---- good: a storescp destination and a route to it ----
  StoreScp scp = start_storescp(0, dir.subdir("received"));
  std::string good = replaced(original, "destinations:\n",
                              "destinations:\n  - {name: NEW, ae_title: STORESCP, host: "
                              "127.0.0.1, port: " +
                                  std::to_string(scp.port) + "}\n");
  good = replaced(good, "routes:\n",
                  "routes:\n  - {name: to-new, destinations: [NEW], continue: true}\n");
  std::ofstream(gw->config_path()) << good;
  const auto applied = curl(port, "POST", "/api/v1/config/reload", admin);
  ASSERT_EQ(applied.status, 200) << applied.body;
  EXPECT_EQ(applied.body["status"], "applied");
  EXPECT_EQ(applied.body["destinations"], 2);
  EXPECT_EQ(applied.body["routes"], 2);

  const auto listed = curl(port, "GET", "/api/v1/destinations", admin);
  EXPECT_EQ(destination_names(listed), (std::set<std::string>{"NEW", "OLD"}));
  const auto one = curl(port, "GET", "/api/v1/destinations/NEW", admin);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.body["port"], scp.port);
  EXPECT_EQ(one.body["ae_title"], "STORESCP");
  EXPECT_EQ(curl(port, "GET", "/api/v1/destinations/NOPE", admin).status, 404);

  const auto echo_new = curl(port, "POST", "/api/v1/destinations/NEW/echo", admin);
  ASSERT_EQ(echo_new.status, 200) << echo_new.body;
  EXPECT_EQ(echo_new.body["ok"], true) << echo_new.body;
  EXPECT_EQ(echo_new.body["status"], 0);
  const auto echo_old = curl(port, "POST", "/api/v1/destinations/OLD/echo", admin);
  ASSERT_EQ(echo_old.status, 200) << echo_old.body;
  EXPECT_EQ(echo_old.body["ok"], false);
  EXPECT_FALSE(echo_old.body["reason"].get<std::string>().empty());
  EXPECT_EQ(curl(port, "POST", "/api/v1/destinations/NOPE/echo", admin).status, 404);

  // What the gateway receives now reaches NEW.
  const auto files = generate_dicom(dir.path() / "data", {"--count", "1", "--seed", "5"});
  ASSERT_EQ(files.size(), 1u);
  const auto sent =
      run_command({gateway_binary().string(), "send", "--aec", "DICOM_GW", "--no-progress",
                   "127.0.0.1", std::to_string(gw->port()), files[0].string()},
                  {}, std::chrono::seconds(60));
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  // storescp creates the file before it has written all of it: wait until it reads whole.
  const std::string expected_uid = sop_instance_uid_of(files[0]);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto got = scp.received_files();
        return got.size() == 1 && sop_instance_uid_of(got[0]) == expected_uid;
      },
      std::chrono::seconds(30)))
      << "NEW did not receive the instance";

  // SIGHUP runs the same reload; its audit row names the system.
  ASSERT_TRUE(gw->process().signal_group(SIGHUP));
  json rows;
  ASSERT_TRUE(wait_until(
      [&] {
        rows =
            curl(port, "GET", "/api/v1/audit?action=config.reload&limit=100", admin).body["events"];
        return rows.size() >= 3;
      },
      std::chrono::seconds(10)));
  std::multiset<std::string> seen;
  for (const auto& e : rows) {
    seen.insert(e["actor"].get<std::string>() + " " + e["outcome"].get<std::string>());
  }
  EXPECT_EQ(seen.count("user:admin failed"), 1u) << rows;
  EXPECT_EQ(seen.count("user:admin ok"), 1u) << rows;
  EXPECT_EQ(seen.count("system ok"), 1u) << rows;
  const auto echoes = curl(port, "GET", "/api/v1/audit?action=destination.echo", admin);
  EXPECT_EQ(echoes.body["events"].size(), 2u) << echoes.body;

  EXPECT_EQ(gw->stop(), 0);
}

}  // namespace
}  // namespace gw::test
