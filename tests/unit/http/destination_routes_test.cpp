// /api/v1/destinations against a fake gateway: configured destinations with live status and
// queue depth, no key material, 404 for unknown names, echo (ok, unreachable = 200 ok:false)
// with its audit row, and the roles.
#include <map>
#include <set>

#include "api_fixture.h"
#include "http/control.h"

namespace gw::http {
namespace {

using index::Role;

class FakeDestinationControl : public GatewayControl {
 public:
  GatewaySnapshot snapshot() const override { return snapshot_; }
  void queue_changed(const std::string&) override {}
  std::vector<DestinationConfigSnapshot> destinations() const override { return configured; }
  std::optional<EchoOutcome> echo_destination(const std::string& name,
                                              std::chrono::milliseconds timeout) override {
    echoed.push_back(name);
    last_timeout = timeout;
    const auto it = echo_answers.find(name);
    if (it == echo_answers.end()) return std::nullopt;
    return it->second;
  }
  GatewaySnapshot snapshot_;
  std::vector<DestinationConfigSnapshot> configured;
  std::map<std::string, EchoOutcome> echo_answers;
  std::vector<std::string> echoed;
  std::chrono::milliseconds last_timeout{0};
};

class DestinationRoutesTest : public ApiFixture {
 protected:
  DestinationRoutesTest() {
    DestinationConfigSnapshot archive{
        "ARCHIVE", "ARCH", "", "10.0.0.9", 104, false, true, 2, 1, "bcp195-rfc8996", "", "", ""};
    DestinationConfigSnapshot pacs{"PACS",
                                   "PACS_AE",
                                   "GW_OUT",
                                   "pacs.example",
                                   2762,
                                   true,
                                   false,
                                   4,
                                   8,
                                   "bcp195-rfc8996",
                                   "/etc/gw/c.pem",
                                   "/etc/gw/c-key.pem",
                                   "/etc/gw/ca.pem"};
    control_.configured = {archive, pacs};
    DestinationSnapshot live;
    live.name = "PACS";
    live.paused = true;
    live.pause_reason = "connection refused";
    live.open_associations = 1;
    live.forwarded = 7;
    control_.snapshot_.destinations = {live};
    ctx_->control = &control_;
  }
  FakeDestinationControl control_;
};

TEST_F(DestinationRoutesTest, ListsConfiguredDestinationsWithStatus) {
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  const auto r = get("/api/v1/destinations", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto items = json_of(r)["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["name"], "ARCHIVE");
  EXPECT_TRUE(items[0]["status"].is_null());
  EXPECT_EQ(items[0]["queue"]["pending"], 0);
  const auto& pacs = items[1];
  EXPECT_EQ(pacs["ae_title"], "PACS_AE");
  EXPECT_EQ(pacs["host"], "pacs.example");
  EXPECT_EQ(pacs["port"], 2762);
  EXPECT_EQ(pacs["tls_enabled"], true);
  EXPECT_EQ(pacs["verify_hostname"], false);
  EXPECT_EQ(pacs["max_associations"], 4);
  EXPECT_EQ(pacs["max_async_operations"], 8);
  EXPECT_EQ(pacs["source"], "config");
  EXPECT_EQ(pacs["tls_key_path"], "/etc/gw/c-key.pem");
  EXPECT_EQ(pacs["status"]["paused"], true);
  EXPECT_EQ(pacs["status"]["reason"], "connection refused");
  EXPECT_EQ(pacs["status"]["open_associations"], 1);
  EXPECT_EQ(pacs["status"]["forwarded"], 7);
  EXPECT_EQ(r.body.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(DestinationRoutesTest, OneDestinationOr404) {
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  const auto r = get("/api/v1/destinations/PACS", viewer);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_of(r)["name"], "PACS");
  const auto missing = get("/api/v1/destinations/NOPE", viewer);
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(json_of(missing)["error"], "not_found");
}

TEST_F(DestinationRoutesTest, EchoAnswersOutcomeAndIsAudited) {
  const auto op = add_token(add_user("olga", Role::kOperator));
  control_.echo_answers["ARCHIVE"] = {true, 0, 12, ""};
  control_.echo_answers["PACS"] = {false, -1, 3, "connection refused"};

  auto r = post("/api/v1/destinations/ARCHIVE/echo", op, nullptr);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = json_of(r);
  EXPECT_EQ(body["ok"], true);
  EXPECT_EQ(body["status"], 0);
  EXPECT_EQ(body["elapsed_ms"], 12);
  EXPECT_EQ(control_.last_timeout, std::chrono::seconds(10));

  // Unreachable: the API call worked, the echo did not.
  r = post("/api/v1/destinations/PACS/echo", op, nullptr);
  ASSERT_EQ(r.status, 200) << r.body;
  body = json_of(r);
  EXPECT_EQ(body["ok"], false);
  EXPECT_TRUE(body["status"].is_null());
  EXPECT_EQ(body["reason"], "connection refused");

  EXPECT_EQ(post("/api/v1/destinations/NOPE/echo", op, nullptr).status, 404);

  const auto rows = audit("destination.echo");
  ASSERT_EQ(rows.size(), 2u);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& e : rows) {
    EXPECT_EQ(e.actor, "user:olga");
    seen.insert({e.target, e.outcome});
  }
  EXPECT_TRUE(seen.count({"destination:ARCHIVE", "ok"}));
  EXPECT_TRUE(seen.count({"destination:PACS", "failed"}));
}

TEST_F(DestinationRoutesTest, EchoNeedsOperator) {
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  EXPECT_EQ(post("/api/v1/destinations/PACS/echo", viewer, nullptr).status, 403);
  EXPECT_TRUE(control_.echoed.empty());
  EXPECT_EQ(get("/api/v1/destinations", "").status, 401);
}

}  // namespace
}  // namespace gw::http
