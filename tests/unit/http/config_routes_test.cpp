// POST /api/v1/config/reload against a fake gateway: 200 with the summary when applied, 422
// with every issue when not, the operator role, and a config.reload audit row either way.
#include "api_fixture.h"
#include "http/control.h"

namespace gw::http {
namespace {

using index::Role;

class FakeReloadControl : public GatewayControl {
 public:
  GatewaySnapshot snapshot() const override { return {}; }
  void queue_changed(const std::string&) override {}
  ReloadOutcome reload_config_file() override {
    ++reloads;
    return next;
  }
  ReloadOutcome next;
  int reloads = 0;
};

class ConfigRoutesTest : public ApiFixture {
 protected:
  ConfigRoutesTest() { ctx_->control = &control_; }
  FakeReloadControl control_;
};

TEST_F(ConfigRoutesTest, AppliedReloadAnswersSummaryAndIsAudited) {
  const auto op = add_token(add_user("olga", Role::kOperator));
  control_.next = {true, {}, 3, 2, {"listeners"}};
  const auto r = post("/api/v1/config/reload", op, nullptr);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = json_of(r);
  EXPECT_EQ(body["status"], "applied");
  EXPECT_EQ(body["destinations"], 3);
  EXPECT_EQ(body["routes"], 2);
  EXPECT_EQ(body["needs_restart"], Json::array({"listeners"}));
  const auto rows = audit("config.reload");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].actor, "user:olga");
  EXPECT_EQ(rows[0].outcome, "ok");
  EXPECT_EQ(Json::parse(rows[0].details)["destinations"], 3);
}

TEST_F(ConfigRoutesTest, RefusedReloadIs422WithEveryIssue) {
  const auto op = add_token(add_user("olga", Role::kOperator));
  control_.next.applied = false;
  control_.next.issues = {{"destinatons", "unknown key (did you mean `destinations`?)"},
                          {"routes[0].destinations[0]", "unknown destination `NOPE`"}};
  const auto r = post("/api/v1/config/reload", op, nullptr);
  ASSERT_EQ(r.status, 422) << r.body;
  const auto body = json_of(r);
  EXPECT_EQ(body["error"], "config_error");
  ASSERT_EQ(body["details"].size(), 2u);
  EXPECT_EQ(body["details"][0]["path"], "destinatons");
  EXPECT_EQ(body["details"][1]["path"], "routes[0].destinations[0]");
  EXPECT_EQ(body["details"][1]["message"], "unknown destination `NOPE`");
  const auto rows = audit("config.reload");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].outcome, "failed");
  // Key paths and counts only: messages can quote values of the file.
  EXPECT_EQ(rows[0].details.find("NOPE"), std::string::npos);
  EXPECT_EQ(Json::parse(rows[0].details)["issues"], 2);
}

TEST_F(ConfigRoutesTest, ViewersMayNotReload) {
  const auto viewer = add_token(add_user("vic", Role::kViewer));
  EXPECT_EQ(post("/api/v1/config/reload", viewer, nullptr).status, 403);
  EXPECT_EQ(post("/api/v1/config/reload", "", nullptr).status, 401);
  EXPECT_EQ(control_.reloads, 0);
  const auto admin = add_token(add_user("ada", Role::kAdmin));
  control_.next = {true, {}, 0, 0, {}};
  EXPECT_EQ(post("/api/v1/config/reload", admin, nullptr).status, 200);
  EXPECT_EQ(control_.reloads, 1);
}

}  // namespace
}  // namespace gw::http
