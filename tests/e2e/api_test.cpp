// The REST API of a real `dicom-gw serve`, with curl as the client: the role x route matrix
// over every route docs/openapi.yaml lists (which a unit test keeps equal to what the server
// registers), login brute force from one address while the user logs in from another, the
// audit trail of it all, HTTPS, and what the database and the log hold (hashes, never tokens or
// passwords). The first admin is bootstrapped with `dicom-gw user add` / `user token`.

#include <gtest/gtest.h>
#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
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
#include "support/test_pki.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kAdminPassword = "admin password, long enough";
constexpr const char* kOperatorPassword = "operator password, long enough";
constexpr const char* kViewerPassword = "viewer password, long enough";

struct HttpAnswer {
  int status = 0;
  std::string headers;  ///< the header block, lines "Name: value"
  std::string body;
  json body_json() const { return json::parse(body, nullptr, false); }
  bool has_header(const std::string& line) const {
    return ("\r\n" + headers + "\r\n").find("\r\n" + line + "\r\n") != std::string::npos;
  }
  std::string header(const std::string& name) const {
    const auto at = ("\r\n" + headers).find("\r\n" + name + ": ");
    if (at == std::string::npos) return "";
    const auto start = at + name.size() + 2;
    return headers.substr(start, headers.find("\r\n", start) - start);
  }
};

struct CurlOptions {
  CurlOptions(std::string t = "", std::string b = "", std::string from = "",  // NOLINT: implicit
              std::vector<std::string> f = {})
      : token(std::move(t)),
        body(std::move(b)),
        interface_ip(std::move(from)),
        form(std::move(f)) {}
  std::string token;         ///< "" = no Authorization header
  std::string body;          ///< sent as application/json when not empty
  std::string interface_ip;  ///< "127.0.0.2": the client address the gateway sees
  std::string scheme = "http";
  fs::path cacert;
  std::vector<std::string> form;     ///< multipart/form-data fields for curl -F ("cert_file=@path")
  std::vector<std::string> headers;  ///< extra request headers ("Origin: https://…")
};

/// One request with curl (the body on stdin, so it never shows in a process list).
HttpAnswer curl(std::uint16_t port, const std::string& method, const std::string& target,
                const CurlOptions& o = {}) {
  std::vector<std::string> argv{"curl", "-sS", "-i", "--max-time", "30", "-X", method};
  if (!o.token.empty()) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + o.token});
  if (!o.body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@-"});
  }
  if (!o.interface_ip.empty()) argv.insert(argv.end(), {"--interface", o.interface_ip});
  if (!o.cacert.empty()) argv.insert(argv.end(), {"--cacert", o.cacert.string()});
  for (const auto& f : o.form) argv.insert(argv.end(), {"-F", f});
  for (const auto& h : o.headers) argv.insert(argv.end(), {"-H", h});
  argv.push_back(o.scheme + "://127.0.0.1:" + std::to_string(port) + target);
  const auto r = run_command_with_input(argv, o.body, {}, std::chrono::seconds(60));
  HttpAnswer a;
  if (!r.ok()) {
    ADD_FAILURE() << join_argv(argv) << ": " << r.err;
    return a;
  }
  // The last header block (a 100 Continue may come first).
  std::string rest = r.out;
  for (;;) {
    const auto end = rest.find("\r\n\r\n");
    if (end == std::string::npos) break;
    const std::string head = rest.substr(0, end);
    rest = rest.substr(end + 4);
    if (head.rfind("HTTP/1.1 100", 0) == 0) continue;
    a.status = std::stoi(head.substr(9, 3));
    a.headers = head.substr(head.find("\r\n") + 2);
    a.body = rest;
    break;
  }
  return a;
}

std::string gateway_cli(const Gateway& gw, std::vector<std::string> args,
                        const std::string& input = "") {
  std::vector<std::string> argv{gateway_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--config", gw.config_path().string()});
  const auto r = run_command_with_input(argv, input, {}, std::chrono::seconds(60));
  EXPECT_TRUE(r.ok()) << join_argv(argv) << "\n" << r.out << r.err;
  return r.out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path openapi_path() {
  // tests/e2e/api_test.cpp -> docs/openapi.yaml
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "docs" / "openapi.yaml";
}

class ApiTest : public ::testing::Test {
 protected:
  /// A gateway with the API, a destination nobody listens on (rows stay queued), the admin
  /// bootstrapped from the command line, an operator and a viewer created through the API.
  void start_gateway(GatewayOptions o = {}) {
    o.http = true;
    dead_port_ = free_tcp_port();
    o.extra_yaml += "destinations:\n  - {name: PACS, ae_title: PACS, host: 127.0.0.1, port: " +
                    std::to_string(dead_port_) +
                    "}\nroutes:\n  - {name: all, destinations: [PACS]}\n"
                    "retry:\n  initial_backoff: 3600s\n  max_backoff: 3600s\n";
    gw_ = Gateway::start(o);
    port_ = gw_->http_port();
    gateway_cli(*gw_, {"user", "add", "--name", "admin", "--role", "admin"},
                std::string(kAdminPassword) + "\n");
    admin_ = trim(gateway_cli(*gw_, {"user", "token", "--name", "admin", "--ttl", "1h"}));
    ASSERT_EQ(admin_.rfind("dgw_", 0), 0u) << admin_;
    create_user("olga", "operator", kOperatorPassword);
    create_user("vic", "viewer", kViewerPassword);
    operator_ = login("olga", kOperatorPassword);
    viewer_ = login("vic", kViewerPassword);
  }

  void create_user(const std::string& name, const std::string& role, const std::string& password) {
    auto r = api("POST", "/api/v1/users",
                 {admin_, json{{"name", name}, {"role", role}, {"password", password}}.dump()});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  std::string login(const std::string& user, const std::string& password,
                    const std::string& from = "") {
    auto r = api("POST", "/api/v1/auth/token",
                 {"", json{{"username", user}, {"password", password}}.dump(), from});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body_json().value("token", "");
  }

  /// Stores `count` generated instances through the DICOM port; returns their SOP UIDs.
  std::vector<std::string> store_instances(int count, const std::string& seed) {
    const auto files = generate_dicom(dir_.path() / ("data-" + seed),
                                      {"--count", std::to_string(count), "--seed", seed});
    std::vector<std::string> argv{
        gateway_binary().string(),  "send", "--aec", "DICOM_GW", "--no-progress", "127.0.0.1",
        std::to_string(gw_->port())};
    for (const auto& f : files) argv.push_back(f.string());
    const auto r = run_command(argv, {}, std::chrono::seconds(120));
    EXPECT_TRUE(r.ok()) << r.out << r.err;
    std::vector<std::string> uids;
    for (const auto& f : files) uids.push_back(sop_instance_uid_of(f));
    return uids;
  }

  /// A request to this gateway's API (over HTTPS once scheme_ says so).
  HttpAnswer api(const std::string& method, const std::string& target, CurlOptions o = {}) {
    o.scheme = scheme_;
    o.cacert = cacert_;
    return curl(port_, method, target, o);
  }

  TempDir dir_{"gw-e2e-api"};
  std::string scheme_ = "http";
  fs::path cacert_;
  std::unique_ptr<Gateway> gw_;
  std::uint16_t port_ = 0;
  std::uint16_t dead_port_ = 0;
  std::string admin_, operator_, viewer_;
};

std::string role_of(const YAML::Node& op) { return op["x-required-role"].as<std::string>(); }

int rank(const std::string& role) {
  if (role == "viewer") return 0;
  if (role == "operator") return 1;
  if (role == "admin") return 2;
  return -1;  // none
}

TEST_F(ApiTest, RoleByRouteMatrix) {
  // A DICOM TLS listener, so the certificate routes have a certificate to show and replace.
  TestPki pki(dir_.path() / "pki");
  pki.issue("server", certs::CertKind::kServer);
  GatewayOptions with_tls;
  with_tls.tls_yaml = "tls:\n  enabled: true\n  cert_file: " + pki.cert("server").string() +
                      "\n  key_file: " + pki.key("server").string() +
                      "\n  ca_file: " + pki.chain().string() + "\n";
  start_gateway(with_tls);
  const auto sops = store_instances(2, "71");
  ASSERT_EQ(sops.size(), 2u);
  const auto instance = api("GET", "/api/v1/instances/" + sops[0], {viewer_});
  ASSERT_EQ(instance.status, 200) << instance.body;
  const std::string study = instance.body_json()["study_instance_uid"];

  // Queue rows: both instances are queued for PACS (nobody listens there).
  std::vector<std::int64_t> queue_ids;
  ASSERT_TRUE(wait_until(
      [&] {
        auto q = api("GET", "/api/v1/queue?destination=PACS", {viewer_}).body_json();
        queue_ids.clear();
        for (const auto& item : q["items"]) queue_ids.push_back(item["id"]);
        return queue_ids.size() == 2;
      },
      std::chrono::seconds(20)));

  // Tokens that must be refused: unknown, expired, revoked.
  const std::string wrong = "dgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  auto short_lived = api("POST", "/api/v1/tokens", {admin_, R"({"ttl": 1})"});
  ASSERT_EQ(short_lived.status, 201) << short_lived.body;
  const std::string expired = short_lived.body_json()["token"];
  auto to_revoke = api("POST", "/api/v1/tokens", {admin_, R"({"description":"x"})"});
  ASSERT_EQ(to_revoke.status, 201);
  const std::string revoked = to_revoke.body_json()["token"];
  ASSERT_EQ(
      api("DELETE", "/api/v1/tokens/" + std::to_string(to_revoke.body_json()["id"].get<int>()),
          {admin_})
          .status,
      204);
  ASSERT_TRUE(wait_until([&] { return api("GET", "/api/v1/tokens", {expired}).status == 401; },
                         std::chrono::seconds(5)));

  const std::map<std::string, std::string> token_of_role = {
      {"viewer", viewer_}, {"operator", operator_}, {"admin", admin_}};
  int made = 0;  // unique names for what the 2xx calls create
  // How to call each route successfully: the path with its placeholders filled, the body, and
  // anything to prepare first. A route the document lists and this table does not fails.
  struct Call {
    std::string target;
    std::string body;
    std::vector<std::string> form = {};  ///< multipart fields (certificate upload)
  };
  auto success_call = [&](const std::string& method,
                          const std::string& path) -> std::optional<Call> {
    const auto key = method + " " + path;
    if (key == "GET /health" || key == "GET /api/v1/health") return Call{path, ""};
    if (key == "POST /api/v1/auth/token") {
      return Call{path, json{{"username", "vic"}, {"password", kViewerPassword}}.dump()};
    }
    if (key == "GET /api/v1/users" || key == "GET /api/v1/tokens" || key == "GET /api/v1/studies" ||
        key == "GET /api/v1/queue" || key == "GET /api/v1/audit" || key == "GET /api/v1/status" ||
        key == "GET /api/v1/metrics") {
      return Call{path, ""};
    }
    if (key == "POST /api/v1/users") {
      return Call{path, json{{"name", "made" + std::to_string(++made)},
                             {"role", "viewer"},
                             {"password", "made password, long"}}
                            .dump()};
    }
    if (key == "PUT /api/v1/users/{name}") return Call{"/api/v1/users/vic", R"({"role":"viewer"})"};
    if (key == "DELETE /api/v1/users/{name}") {
      create_user("doomed", "viewer", "doomed password, long");
      return Call{"/api/v1/users/doomed", ""};
    }
    if (key == "POST /api/v1/tokens") return Call{path, R"({"ttl":"1h"})"};
    if (key == "DELETE /api/v1/tokens/{id}") {
      // The caller's own token (the viewer's): a fresh one, so viewer_ stays valid.
      auto t = api("POST", "/api/v1/tokens", {viewer_, "{}"});
      return Call{"/api/v1/tokens/" + std::to_string(t.body_json()["id"].get<int>()), ""};
    }
    if (key == "GET /api/v1/studies/{uid}") return Call{"/api/v1/studies/" + study, ""};
    if (key == "GET /api/v1/studies/{uid}/series") {
      return Call{"/api/v1/studies/" + study + "/series", ""};
    }
    if (key == "GET /api/v1/instances/{uid}") return Call{"/api/v1/instances/" + sops[1], ""};
    if (key == "GET /api/v1/instances/{uid}/file") {
      return Call{"/api/v1/instances/" + sops[1] + "/file", ""};
    }
    if (key == "POST /api/v1/queue/{id}/retry") {
      return Call{"/api/v1/queue/" + std::to_string(queue_ids[0]) + "/retry", ""};
    }
    if (key == "DELETE /api/v1/queue/{id}") {
      return Call{"/api/v1/queue/" + std::to_string(queue_ids[1]), ""};
    }
    // The unchanged config file reloads (200); PACS: nobody listens, so the echo is a 200
    // with ok:false.
    if (key == "POST /api/v1/config/reload" || key == "GET /api/v1/destinations") {
      return Call{path, ""};
    }
    if (key == "GET /api/v1/destinations/{name}") return Call{"/api/v1/destinations/PACS", ""};
    // API destinations (admin): no match, so nothing is routed to them.
    auto api_destination = [&](const std::string& name) {
      return json{{"name", name}, {"ae_title", "MATRIX"}, {"host", "127.0.0.1"}, {"port", 104}}
          .dump();
    };
    if (key == "POST /api/v1/destinations") {
      return Call{path, api_destination("MATRIX_" + std::to_string(++made))};
    }
    if (key == "PUT /api/v1/destinations/{name}" || key == "DELETE /api/v1/destinations/{name}") {
      const std::string name = method == "PUT" ? "MATRIX_PUT" : "MATRIX_DELETE";
      api("POST", "/api/v1/destinations", {admin_, api_destination(name)});
      return Call{"/api/v1/destinations/" + name, method == "PUT" ? api_destination(name) : ""};
    }
    if (key == "POST /api/v1/destinations/{name}/echo") {
      return Call{"/api/v1/destinations/PACS/echo", ""};
    }
    if (key == "GET /api/v1/certs/info") return Call{path, ""};
    if (key == "POST /api/v1/certs/upload") {
      // The certificate being served, again: valid, so the admin gets 200.
      return Call{
          path,
          "",
          {"cert_file=@" + pki.cert("server").string(), "key_file=@" + pki.key("server").string()}};
    }
    return std::nullopt;
  };

  const YAML::Node doc = YAML::LoadFile(openapi_path().string());
  int routes = 0;
  for (const auto& path_node : doc["paths"]) {
    const std::string path = path_node.first.as<std::string>();
    for (const auto& op_node : path_node.second) {
      std::string method = op_node.first.as<std::string>();
      if (method == "parameters") continue;
      std::transform(method.begin(), method.end(), method.begin(), ::toupper);
      const std::string role = role_of(op_node.second);
      const std::string key = method + " " + path;
      SCOPED_TRACE(key);
      ++routes;
      auto call = success_call(method, path);
      ASSERT_TRUE(call) << key << ": documented, but the matrix does not know how to call it";
      if (role != "none") {
        for (const auto& [label, token] : std::vector<std::pair<std::string, std::string>>{
                 {"no token", ""}, {"wrong", wrong}, {"expired", expired}, {"revoked", revoked}}) {
          auto r = api(method, call->target, {token, call->body, "", call->form});
          EXPECT_EQ(r.status, 401) << label << ": " << r.body;
          EXPECT_EQ(r.body_json().value("error", ""), "unauthenticated") << label;
          EXPECT_NE(r.header("WWW-Authenticate").find("Bearer"), std::string::npos) << label;
        }
        for (const auto& [lower, token] : token_of_role) {
          if (rank(lower) >= rank(role)) continue;
          auto r = api(method, call->target, {token, call->body, "", call->form});
          EXPECT_EQ(r.status, 403) << lower << ": " << r.body;
          EXPECT_EQ(r.body_json().value("error", ""), "permission_denied");
        }
      }
      const std::string token = role == "none" ? "" : token_of_role.at(role);
      HttpAnswer ok;
      // A queue row may be in flight for a moment (its forwarder just claimed it): 409, again.
      ASSERT_TRUE(wait_until(
          [&] {
            ok = api(method, call->target, {token, call->body, "", call->form});
            return ok.status != 409 || key.find("/queue/") == std::string::npos;
          },
          std::chrono::seconds(20), std::chrono::milliseconds(200)));
      EXPECT_GE(ok.status, 200) << ok.body;
      EXPECT_LT(ok.status, 300) << ok.body;
      EXPECT_TRUE(ok.has_header("X-Content-Type-Options: nosniff"));
      EXPECT_TRUE(ok.has_header("Cache-Control: no-store"));
    }
  }
  EXPECT_GE(routes, 20);

  // The writes above are in the audit trail with their actors.
  auto audit = api("GET", "/api/v1/audit?limit=1000", {admin_}).body_json()["events"];
  std::set<std::string> actions;
  for (const auto& e : audit)
    actions.insert(e["action"].get<std::string>() + " " + e["actor"].get<std::string>());
  for (const char* expected :
       {"user.create cli", "user.create user:admin", "user.update user:admin",
        "user.delete user:admin", "token.create cli", "token.create user:admin",
        "token.revoke user:admin", "token.revoke user:vic", "auth.login user:olga",
        "auth.login user:vic", "queue.retry user:olga", "queue.delete user:olga",
        "auth.denied anonymous", "auth.denied user:vic"}) {
    EXPECT_TRUE(actions.count(expected)) << expected;
  }
}

TEST_F(ApiTest, BruteForceIsRateLimitedWhileTheUserLogsInFromAnotherAddress) {
  start_gateway();
  for (int i = 0; i < 5; ++i) {
    auto r =
        api("POST", "/api/v1/auth/token",
            {"", json{{"username", "vic"}, {"password", "guess " + std::to_string(i)}}.dump()});
    EXPECT_EQ(r.status, 401) << r.body;
  }
  auto blocked = api("POST", "/api/v1/auth/token",
                     {"", json{{"username", "vic"}, {"password", kViewerPassword}}.dump()});
  EXPECT_EQ(blocked.status, 429) << blocked.body;
  EXPECT_EQ(blocked.body_json()["error"], "rate_limited");
  EXPECT_FALSE(blocked.header("Retry-After").empty());
  EXPECT_GT(std::stoi(blocked.header("Retry-After")), 0);

  // The real user, from another address (127.0.0.2 is loopback too).
  const auto token = login("vic", kViewerPassword, "127.0.0.2");
  EXPECT_EQ(api("GET", "/api/v1/studies", {token}).status, 200);

  auto events = api("GET", "/api/v1/audit?action=auth.*&limit=100", {admin_}).body_json()["events"];
  int failed = 0;
  bool login_from_other = false;
  for (const auto& e : events) {
    if (e["action"] == "auth.login_failed" && e["target"] == "user:vic") {
      ++failed;
      EXPECT_EQ(e["peer_address"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
    }
    if (e["action"] == "auth.login" && e["actor"] == "user:vic" &&
        e["peer_address"].get<std::string>().rfind("127.0.0.2:", 0) == 0) {
      login_from_other = true;
    }
  }
  // The first failure is written at once, the next ones folded into one row per (user,
  // address) and minute; the 429 opens the rate limiter's own row (keyed by the address alone).
  // tests/e2e/audit_test.cpp checks the counts.
  EXPECT_EQ(failed, 2);
  EXPECT_TRUE(login_from_other);
  // The audit filters: by user and by time.
  auto mine = api("GET", "/api/v1/audit?user=vic", {admin_}).body_json()["events"];
  for (const auto& e : mine) EXPECT_EQ(e["actor"], "user:vic");
  EXPECT_FALSE(mine.empty());
  EXPECT_EQ(
      api("GET", "/api/v1/audit?since=2999-01-01T00:00:00Z", {admin_}).body_json()["events"].size(),
      0u);
  EXPECT_EQ(api("GET", "/api/v1/audit?since=soon", {admin_}).status, 400);
}

TEST_F(ApiTest, TheDatabaseAndTheLogHoldNoTokenOrPassword) {
  start_gateway();
  auto created = api("POST", "/api/v1/tokens", {viewer_, R"({"description":"probe"})"});
  ASSERT_EQ(created.status, 201);
  const std::string api_token = created.body_json()["token"];
  EXPECT_EQ(api("GET", "/api/v1/studies", {api_token}).status, 200);
  api("POST", "/api/v1/auth/token",
      {"", json{{"username", "vic"}, {"password", "a wrong password to log"}}.dump()});
  const int rc = gw_->stop();
  EXPECT_EQ(rc, 0);
  std::string everything = gw_->log();
  for (const auto& entry : fs::directory_iterator(gw_->data_dir())) {
    if (entry.path().filename().string().rfind("index.db", 0) == 0) {
      everything += read_all(entry.path());
    }
  }
  ASSERT_FALSE(everything.empty());
  for (const std::string& secret :
       {admin_, operator_, viewer_, api_token, std::string(kAdminPassword),
        std::string(kOperatorPassword), std::string(kViewerPassword),
        std::string("a wrong password to log")}) {
    EXPECT_EQ(everything.find(secret), std::string::npos)
        << "found in the database or log: " << secret;
  }
  EXPECT_NE(everything.find("$argon2id$"), std::string::npos) << "password hashes are stored";
}

TEST_F(ApiTest, CorsOnlyForConfiguredOrigins) {
  GatewayOptions o;
  o.http_yaml = "  cors_origins: [\"https://Admin.Example.ORG\", \"http://127.0.0.1:3000\"]\n";
  start_gateway(o);
  auto with_origin = [&](const std::string& method, const std::string& origin,
                         const std::string& token, std::vector<std::string> extra = {}) {
    CurlOptions c(token);
    c.headers = std::move(extra);
    c.headers.push_back("Origin: " + origin);
    return api(method, "/api/v1/studies", c);
  };
  // An allowed origin (configured in mixed case, matched lower-case).
  auto ok = with_origin("GET", "https://admin.example.org", viewer_);
  EXPECT_EQ(ok.status, 200);
  EXPECT_TRUE(ok.has_header("Access-Control-Allow-Origin: https://admin.example.org"))
      << ok.headers;
  EXPECT_TRUE(ok.has_header("Vary: Origin")) << ok.headers;
  EXPECT_EQ(ok.headers.find("Access-Control-Allow-Credentials"), std::string::npos);
  // Its preflight needs no token and names what may follow; the real call still needs one.
  auto preflight = with_origin(
      "OPTIONS", "http://127.0.0.1:3000", "",
      {"Access-Control-Request-Method: DELETE", "Access-Control-Request-Headers: authorization"});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_TRUE(preflight.has_header("Access-Control-Allow-Origin: http://127.0.0.1:3000"));
  EXPECT_TRUE(preflight.has_header("Access-Control-Allow-Headers: Authorization, Content-Type"));
  EXPECT_EQ(with_origin("GET", "http://127.0.0.1:3000", "").status, 401);
  // Another origin gets no CORS header at all, and no preflight answer.
  auto other = with_origin("GET", "https://evil.example.net", viewer_);
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.headers.find("Access-Control-"), std::string::npos) << other.headers;
  auto other_preflight = with_origin("OPTIONS", "https://evil.example.net", "",
                                     {"Access-Control-Request-Method: GET"});
  EXPECT_NE(other_preflight.status, 204);
  EXPECT_EQ(other_preflight.headers.find("Access-Control-"), std::string::npos);
}

TEST_F(ApiTest, LimitsHeadersAndErrorsOverHttp) {
  start_gateway();
  auto big = api("POST", "/api/v1/users", {admin_, std::string(2 << 20, ' ')});
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.body_json()["error"], "too_large");
  auto missing = api("GET", "/api/v1/nothing", {admin_});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body_json()["error"], "not_found");
  auto method = api("PATCH", "/api/v1/users", {admin_});
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.header("Allow"), "GET, POST");
  auto query_token = api("GET", "/api/v1/studies?access_token=" + admin_);
  EXPECT_EQ(query_token.status, 400);
  auto bad_param = api("GET", "/api/v1/studies?limit=5000", {viewer_});
  EXPECT_EQ(bad_param.status, 400);
  EXPECT_NE(bad_param.body_json()["message"].get<std::string>().find("`limit`"), std::string::npos);
  auto health = api("GET", "/health");
  EXPECT_EQ(health.status, 200);
  for (const char* h : {"X-Content-Type-Options: nosniff", "X-Frame-Options: DENY",
                        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'",
                        "Referrer-Policy: no-referrer", "Cache-Control: no-store"}) {
    EXPECT_TRUE(health.has_header(h)) << h << "\n" << health.headers;
  }
  EXPECT_EQ(health.headers.find("Access-Control-"), std::string::npos);
  EXPECT_EQ(health.headers.find("Strict-Transport-Security"), std::string::npos);

  // Status and metrics of the running gateway.
  auto status = api("GET", "/api/v1/status", {viewer_}).body_json();
  EXPECT_EQ(status["listeners"][0]["port"], gw_->port());
  EXPECT_EQ(status["queue"][0]["destination"], "PACS");
  EXPECT_EQ(status["status"], "ok");
  EXPECT_EQ(status["storage"]["flush"], "shared");  // SQLite in data_dir, fsync on: ADR 012
  EXPECT_EQ(status["storage"]["ingest_stopped"], false);
  auto metrics = api("GET", "/api/v1/metrics", {viewer_});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("dicom_gw_associations_total{outcome=\"accepted\"}"),
            std::string::npos);
}

/// The serial (upper-case hex, no leading zeros) of the certificate served on `port`.
std::string served_serial(std::uint16_t port) {
  const auto r = run_command({"sh", "-c",
                              "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                                  " </dev/null 2>/dev/null | openssl x509 -noout -serial"},
                             {}, std::chrono::seconds(30));
  std::string serial = trim(r.out);
  if (serial.rfind("serial=", 0) == 0) serial = serial.substr(7);
  while (serial.size() > 1 && serial[0] == '0') serial.erase(0, 1);
  return serial;
}

std::string no_leading_zeros(std::string hex) {
  std::transform(hex.begin(), hex.end(), hex.begin(), ::toupper);
  while (hex.size() > 1 && hex[0] == '0') hex.erase(0, 1);
  return hex;
}

TEST_F(ApiTest, HttpsServesItsCertificateWithHstsAndReloadsItOnSighup) {
  TestPki pki(dir_.path() / "pki");
  const auto first = pki.issue("api", certs::CertKind::kServer, {"IP:127.0.0.1", "DNS:localhost"});
  GatewayOptions o;
  o.http_yaml = "  tls:\n    enabled: true\n    cert_file: " + pki.cert("api").string() +
                "\n    key_file: " + pki.key("api").string() + "\n";
  scheme_ = "https";
  cacert_ = pki.chain();
  start_gateway(o);  // the bootstrap's API calls already go over verified HTTPS
  auto health = api("GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_TRUE(health.has_header("Strict-Transport-Security: max-age=31536000")) << health.headers;
  EXPECT_EQ(api("GET", "/api/v1/users", {admin_}).status, 200);
  EXPECT_EQ(served_serial(port_), no_leading_zeros(first));
  // Plain HTTP on the HTTPS port gets nowhere.
  const auto plain =
      run_command({"curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://127.0.0.1:" + std::to_string(port_) + "/health"},
                  {}, std::chrono::seconds(30));
  EXPECT_NE(trim(plain.out), "200");

  // A new certificate in the same files, then SIGHUP: served without a restart.
  const auto second = pki.issue("api", certs::CertKind::kServer, {"IP:127.0.0.1"});
  ASSERT_NE(first, second);
  ASSERT_TRUE(gw_->process().signal_group(SIGHUP));
  EXPECT_TRUE(wait_until([&] { return served_serial(port_) == no_leading_zeros(second); },
                         std::chrono::seconds(10), std::chrono::milliseconds(100)))
      << served_serial(port_);
  EXPECT_EQ(api("GET", "/api/v1/users", {admin_}).status, 200);
}

}  // namespace
}  // namespace gw::test
