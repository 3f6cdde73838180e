// auth.login_failed rows under a brute force: the first failure of a (user, address) at once,
// the rest of the minute folded into one row that counts them (the 429s included).
#include <nlohmann/json.hpp>

#include "api_fixture.h"

namespace gw::http {
namespace {

class LoginAuditTest : public ApiFixture {
 protected:
  Response try_login(const std::string& user, const std::string& password,
                     const std::string& from = "10.0.0.1") {
    return post("/api/v1/auth/token", "", {{"username", user}, {"password", password}}, from);
  }
  static Json details(const index::AuditEvent& e) { return Json::parse(e.details); }
};

TEST_F(LoginAuditTest, BruteForceCostsOneRowAMinuteAndLosesNoCount) {
  add_user("vic", index::Role::kViewer);
  for (int i = 0; i < 20; ++i) {
    const auto r = try_login("vic", "guess " + std::to_string(i));
    EXPECT_TRUE(r.status == 401 || r.status == 429) << r.status;
    now_ += 100;
  }
  auto rows = audit("auth.login_failed");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(details(rows[0])["attempts"], 1);
  EXPECT_EQ(details(rows[0])["reason"], "wrong_password");
  EXPECT_EQ(rows[0].target, "user:vic");

  // Another address is another key: written at once.
  EXPECT_EQ(try_login("vic", "guess", "10.0.0.2").status, 401);
  EXPECT_EQ(audit("auth.login_failed").size(), 2u);

  // A minute later any login request writes vic's folded attempts from 10.0.0.1.
  now_ += 60'000;
  add_user("ann", index::Role::kViewer);
  EXPECT_EQ(try_login("ann", kPassword, "10.0.0.3").status, 200);
  rows = audit("auth.login_failed");
  ASSERT_EQ(rows.size(), 3u);
  // Dated by its last attempt, so it sorts before the 10.0.0.2 row.
  const auto& row = rows[1];
  const auto folded = details(row);
  EXPECT_EQ(folded["attempts"], 19);
  EXPECT_EQ(folded["reasons"]["wrong_password"], 4);
  EXPECT_EQ(folded["reasons"]["rate_limited"], 15);
  EXPECT_EQ(row.peer_address, "10.0.0.1:40000");
}

TEST_F(LoginAuditTest, FoldedAttemptsAreWrittenWhenTheApiStops) {
  add_user("vic", index::Role::kViewer);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(try_login("vic", "guess").status, 401);
  EXPECT_EQ(audit("auth.login_failed").size(), 1u);
  dispatcher_.reset();  // the route table goes away, as when the HTTP service stops
  auto rows = audit("auth.login_failed");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(details(rows[0])["attempts"], 2);
}

}  // namespace
}  // namespace gw::http
