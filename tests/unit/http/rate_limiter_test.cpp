#include "http/rate_limiter.h"

#include <gtest/gtest.h>

namespace gw::http {
namespace {

class RateLimiterTest : public ::testing::Test {
 protected:
  RateLimitPolicy policy() {
    RateLimitPolicy p;
    p.max_failures_per_user_address = 5;
    p.max_failures_per_address = 20;
    p.window = std::chrono::minutes(15);
    return p;
  }
  std::int64_t now_ = 1'000'000;
  NowFn clock_ = [this] { return now_; };
};

TEST_F(RateLimiterTest, BlocksAUserFromOneAddressButNotFromAnother) {
  LoginRateLimiter limiter(policy(), clock_);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(limiter.blocked("admin", "10.0.0.1")) << i;
    limiter.record_failure("admin", "10.0.0.1");
  }
  const auto wait = limiter.blocked("admin", "10.0.0.1");
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 15 * 60);
  // The real admin, elsewhere: not locked out. Another user from the same address: not yet.
  EXPECT_FALSE(limiter.blocked("admin", "10.0.0.2"));
  EXPECT_FALSE(limiter.blocked("alice", "10.0.0.1"));
}

TEST_F(RateLimiterTest, AnAddressTryingManyUsersIsBlockedForAll) {
  LoginRateLimiter limiter(policy(), clock_);
  for (int i = 0; i < 20; ++i) limiter.record_failure("user" + std::to_string(i), "10.0.0.9");
  EXPECT_TRUE(limiter.blocked("someone-new", "10.0.0.9"));
  EXPECT_FALSE(limiter.blocked("someone-new", "10.0.0.8"));
}

TEST_F(RateLimiterTest, TheWindowEndsAndRetryAfterCountsDown) {
  LoginRateLimiter limiter(policy(), clock_);
  for (int i = 0; i < 5; ++i) limiter.record_failure("admin", "10.0.0.1");
  now_ += 10 * 60 * 1000;
  ASSERT_TRUE(limiter.blocked("admin", "10.0.0.1"));
  EXPECT_EQ(limiter.blocked("admin", "10.0.0.1")->count(), 5 * 60);
  now_ += 5 * 60 * 1000 - 1;
  ASSERT_TRUE(limiter.blocked("admin", "10.0.0.1"));
  EXPECT_EQ(limiter.blocked("admin", "10.0.0.1")->count(), 1);  // rounded up, never 0
  now_ += 1;
  EXPECT_FALSE(limiter.blocked("admin", "10.0.0.1"));
  // A new window starts from the next failure.
  limiter.record_failure("admin", "10.0.0.1");
  EXPECT_FALSE(limiter.blocked("admin", "10.0.0.1"));
}

TEST_F(RateLimiterTest, SuccessClearsTheUserCountNotTheAddressCount) {
  LoginRateLimiter limiter(policy(), clock_);
  for (int i = 0; i < 4; ++i) limiter.record_failure("admin", "10.0.0.1");
  limiter.record_success("admin", "10.0.0.1");
  for (int i = 0; i < 4; ++i) limiter.record_failure("admin", "10.0.0.1");
  EXPECT_FALSE(limiter.blocked("admin", "10.0.0.1"));
  for (int i = 0; i < 12; ++i) limiter.record_failure("x" + std::to_string(i), "10.0.0.1");
  EXPECT_TRUE(limiter.blocked("admin", "10.0.0.1"));  // 20 from the address
  limiter.record_success("admin", "10.0.0.1");
  EXPECT_TRUE(limiter.blocked("admin", "10.0.0.1"));
}

TEST_F(RateLimiterTest, BoundedSizeEvictsExpiredThenOldest) {
  auto p = policy();
  p.max_entries = 100;
  LoginRateLimiter limiter(p, clock_);
  for (int i = 0; i < 1000; ++i) {
    limiter.record_failure("u" + std::to_string(i),
                           "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250));
    ++now_;
  }
  EXPECT_LE(limiter.size(), 200u);
  // The newest entries are still counted.
  for (int i = 0; i < 4; ++i) limiter.record_failure("u999", "10.0.3.249");
  EXPECT_TRUE(limiter.blocked("u999", "10.0.3.249"));
}

TEST_F(RateLimiterTest, Ipv6IsCountedPerSlash64) {
  EXPECT_EQ(LoginRateLimiter::address_key("10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(LoginRateLimiter::address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(LoginRateLimiter::address_key("::ffff:10.1.2.3"), "::ffff:10.1.2.3");
  LoginRateLimiter limiter(policy(), clock_);
  for (int i = 0; i < 5; ++i) {
    limiter.record_failure("admin", "2001:db8:1:2::" + std::to_string(i + 1));
  }
  EXPECT_TRUE(limiter.blocked("admin", "2001:db8:1:2::ffff"));
  EXPECT_FALSE(limiter.blocked("admin", "2001:db8:1:3::1"));
}

}  // namespace
}  // namespace gw::http
