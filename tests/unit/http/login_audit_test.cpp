// auth.login_failed rows under a brute force: the first failure of a (user, address) at once,
// the rest of the minute folded into one row that counts them (the 429s included).
#include <map>
#include <nlohmann/json.hpp>
#include <set>

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
  // One row for vic from 10.0.0.1 (its 5 wrong passwords), one for the address's 429s.
  auto rows = audit("auth.login_failed");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_EQ(details(row)["attempts"], 1);
    EXPECT_EQ(row.target, "user:vic");
  }
  std::set<std::string> reasons;
  for (const auto& row : rows) reasons.insert(details(row)["reason"]);
  EXPECT_EQ(reasons, (std::set<std::string>{"wrong_password", "rate_limited"}));

  // Another address is another key: written at once.
  EXPECT_EQ(try_login("vic", "guess", "10.0.0.2").status, 401);
  EXPECT_EQ(audit("auth.login_failed").size(), 3u);

  // A minute later any login request writes the folded attempts from 10.0.0.1.
  now_ += 60'000;
  add_user("ann", index::Role::kViewer);
  EXPECT_EQ(try_login("ann", kPassword, "10.0.0.3").status, 200);
  rows = audit("auth.login_failed");
  ASSERT_EQ(rows.size(), 5u);
  std::map<std::string, std::int64_t> per_reason;
  std::int64_t attempts = 0;
  for (const auto& row : rows) {
    const auto d = details(row);
    attempts += d["attempts"].get<std::int64_t>();
    if (d["attempts"] == 1) continue;
    for (const auto& [reason, n] : d["reasons"].items())
      per_reason[reason] += n.get<std::int64_t>();
    EXPECT_EQ(row.peer_address, "10.0.0.1:40000");
  }
  EXPECT_EQ(attempts, 21);
  EXPECT_EQ(per_reason,
            (std::map<std::string, std::int64_t>{{"wrong_password", 4}, {"rate_limited", 14}}));
}

// A fresh user name per request must not open a fresh row: once the address is rate-limited,
// its refusals are keyed by the address alone.
TEST_F(LoginAuditTest, FreshUserNamesFromOneAddressAreFewRowsThatCountThemAll) {
  constexpr int kRequests = 1000;
  int limited = 0;
  for (int i = 0; i < kRequests; ++i) {
    const auto r = try_login("nobody" + std::to_string(i), "guess", "198.51.100.9");
    EXPECT_TRUE(r.status == 401 || r.status == 429) << r.status;
    limited += r.status == 429 ? 1 : 0;
    now_ += 100;
  }
  EXPECT_EQ(limited, kRequests - 20);  // RateLimitPolicy: 20 failures per address
  dispatcher_.reset();                 // writes what is still folded
  const auto rows = audit("auth.login_failed");
  // 20 names tried before the limit, then one row a minute for the address's 429s.
  EXPECT_LE(rows.size(), 20u + 3u);
  std::int64_t attempts = 0;
  for (const auto& row : rows) attempts += details(row)["attempts"].get<std::int64_t>();
  EXPECT_EQ(attempts, kRequests);
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
