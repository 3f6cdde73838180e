#include "audit/throttle.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gw::audit {
namespace {

using Json = nlohmann::json;
constexpr std::int64_t kMinute = 60'000;

index::AuditEvent failed_login(std::int64_t at_ms, const std::string& reason) {
  index::AuditEvent e;
  e.at_ms = at_ms;
  e.actor = "anonymous";
  e.action = "auth.login_failed";
  e.target = "user:vic";
  e.outcome = "failed";
  e.peer_address = "127.0.0.1:5000";
  e.details = Json{{"reason", reason}}.dump();
  return e;
}

Json details(const index::AuditEvent& e) { return Json::parse(e.details); }

TEST(AuditThrottleTest, FirstIsWrittenAtOnceTheRestFoldedIntoOneRow) {
  AuditThrottle t(std::chrono::minutes(1));
  auto first = t.record("vic|127.0.0.1", failed_login(1000, "wrong_password"));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(details(first[0])["attempts"], 1);
  EXPECT_EQ(details(first[0])["reason"], "wrong_password");
  // 19 more within the minute: nothing written, nothing lost.
  for (int i = 1; i < 20; ++i) {
    const auto reason = i < 5 ? "wrong_password" : "rate_limited";
    EXPECT_TRUE(t.record("vic|127.0.0.1", failed_login(1000 + i * 100, reason)).empty());
  }
  EXPECT_TRUE(t.take_due(1000 + kMinute - 1).empty()) << "the window is still open";
  auto folded = t.take_due(1000 + kMinute);
  ASSERT_EQ(folded.size(), 1u);
  const auto d = details(folded[0]);
  EXPECT_EQ(d["attempts"], 19);
  EXPECT_EQ(d["reasons"]["wrong_password"], 4);
  EXPECT_EQ(d["reasons"]["rate_limited"], 15);
  EXPECT_EQ(folded[0].at_ms, 1000 + 19 * 100) << "the latest folded attempt";
  EXPECT_EQ(t.size(), 0u);
  // The next failure opens a new window: written at once again.
  EXPECT_EQ(t.record("vic|127.0.0.1", failed_login(3 * kMinute, "wrong_password")).size(), 1u);
}

TEST(AuditThrottleTest, NextWindowCarriesTheFoldedCountInOneRow) {
  AuditThrottle t(std::chrono::minutes(1));
  ASSERT_EQ(t.record("k", failed_login(0, "wrong_password")).size(), 1u);
  EXPECT_TRUE(t.record("k", failed_login(10, "wrong_password")).empty());
  EXPECT_TRUE(t.record("k", failed_login(20, "unknown_user")).empty());
  // No sweep in between: the next window's first row stands for all three.
  auto rows = t.record("k", failed_login(kMinute + 5, "wrong_password"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(details(rows[0])["attempts"], 3);
  EXPECT_EQ(details(rows[0])["reasons"]["wrong_password"], 2);
  EXPECT_EQ(details(rows[0])["reasons"]["unknown_user"], 1);
}

TEST(AuditThrottleTest, KeysAreIndependent) {
  AuditThrottle t(std::chrono::minutes(1));
  EXPECT_EQ(t.record("vic|10.0.0.1", failed_login(0, "wrong_password")).size(), 1u);
  EXPECT_EQ(t.record("vic|10.0.0.2", failed_login(1, "wrong_password")).size(), 1u);
  EXPECT_EQ(t.record("ann|10.0.0.1", failed_login(2, "wrong_password")).size(), 1u);
  EXPECT_TRUE(t.record("vic|10.0.0.1", failed_login(3, "wrong_password")).empty());
}

TEST(AuditThrottleTest, TakeAllWritesWhatIsFoldedAtShutdown) {
  AuditThrottle t(std::chrono::minutes(1));
  t.record("a", failed_login(0, "wrong_password"));
  t.record("b", failed_login(0, "wrong_password"));
  t.record("a", failed_login(1, "wrong_password"));
  t.record("a", failed_login(2, "wrong_password"));
  auto rows = t.take_all();
  ASSERT_EQ(rows.size(), 1u) << "b folded nothing";
  EXPECT_EQ(details(rows[0])["attempts"], 2);
  EXPECT_EQ(t.size(), 0u);
}

TEST(AuditThrottleTest, BoundedAndEvictionLosesNoCount) {
  AuditThrottle t(std::chrono::minutes(1), 2);
  t.record("a", failed_login(0, "wrong_password"));
  t.record("a", failed_login(1, "wrong_password"));  // folded
  t.record("b", failed_login(2, "wrong_password"));
  auto rows = t.record("c", failed_login(3, "wrong_password"));
  EXPECT_LE(t.size(), 2u);
  ASSERT_EQ(rows.size(), 2u) << "c itself and a's folded attempt";
  EXPECT_EQ(rows[0].at_ms, 1);
  EXPECT_EQ(details(rows[0])["attempts"], 1);
  EXPECT_EQ(rows[1].at_ms, 3);
}

}  // namespace
}  // namespace gw::audit
