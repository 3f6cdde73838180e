// argon2id password hashes: round trip, refusals, and the parameters actually encoded.
#include "crypto/password.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace gw::crypto {
namespace {

// One hash for the tests that only read it: each costs 64 MiB and ~0.1 s.
const std::string& sample_hash() {
  static const std::string hash = [] {
    auto h = hash_password("correct horse battery staple");
    EXPECT_TRUE(h.ok()) << h.error().message;
    return h.ok() ? *h : std::string();
  }();
  return hash;
}

TEST(PasswordTest, RoundTrip) {
  EXPECT_TRUE(verify_password("correct horse battery staple", sample_hash()));
  EXPECT_FALSE(verify_password("correct horse battery stapler", sample_hash()));
  EXPECT_FALSE(verify_password("Correct horse battery staple", sample_hash()));
}

TEST(PasswordTest, SaltedSoTwoHashesOfOnePasswordDiffer) {
  auto again = hash_password("correct horse battery staple");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, sample_hash());
  EXPECT_TRUE(verify_password("correct horse battery staple", *again));
}

TEST(PasswordTest, EncodesArgon2idWithAtLeastOwaspParameters) {
  std::smatch m;
  const std::regex shape(
      R"(^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$)");
  ASSERT_TRUE(std::regex_match(sample_hash(), m, shape)) << sample_hash();
  EXPECT_GE(std::stoll(m[1]), 19456) << "memory in KiB";
  EXPECT_GE(std::stoll(m[2]), 2) << "iterations";
  EXPECT_GE(std::stoll(m[3]), 1) << "lanes";
}

TEST(PasswordTest, RefusesEmptyAndOverlongPasswords) {
  auto empty = hash_password("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, core::ErrorCode::kInvalidArgument);
  auto longest = std::string(kMaxPasswordBytes + 1, 'x');
  auto too_long = hash_password(longest);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_FALSE(verify_password("", sample_hash()));
  EXPECT_FALSE(verify_password(longest, sample_hash()));
}

TEST(PasswordTest, MalformedHashesNeverVerify) {
  const std::string password = "correct horse battery staple";
  for (const std::string& bad :
       {std::string(), std::string("plaintext"), std::string("$argon2id$"),
        sample_hash().substr(0, sample_hash().size() - 4), sample_hash() + "AAAA",
        std::string(sample_hash()).replace(1, 8, "argon2i"), std::string(4096, '$'),
        sample_hash() + std::string(1, '\0')}) {
    EXPECT_FALSE(verify_password(password, bad)) << bad;
  }
  // The password itself stored as if it were a hash.
  EXPECT_FALSE(verify_password(password, password));
}

TEST(PasswordTest, NeedsRehashOnlyForOtherParameters) {
  EXPECT_FALSE(password_needs_rehash(sample_hash()));
  // Same password, weaker parameters (what an older build might have stored): still verifies,
  // but wants a rehash.
  std::string weak = sample_hash();
  weak.replace(weak.find("m=65536,t=2"), 11, "m=19456,t=2");
  EXPECT_TRUE(password_needs_rehash(weak));
  EXPECT_TRUE(password_needs_rehash("not a hash"));
  EXPECT_TRUE(password_needs_rehash(""));
}

}  // namespace
}  // namespace gw::crypto
