// API tokens: shape, uniqueness, and the stored hash.
#include "crypto/token.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>

namespace gw::crypto {
namespace {

TEST(TokenTest, ShapeIsPrefixAnd43Base64UrlCharacters) {
  auto token = new_api_token();
  ASSERT_TRUE(token.ok()) << token.error().message;
  EXPECT_EQ(token->size(), 4u + 43u);
  EXPECT_TRUE(token->starts_with("dgw_"));
  for (char c : token->substr(4)) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << c;
  }
  EXPECT_TRUE(looks_like_api_token(*token));
}

TEST(TokenTest, EveryTokenIsNew) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto token = new_api_token();
    ASSERT_TRUE(token.ok());
    EXPECT_TRUE(seen.insert(*token).second) << *token;
  }
}

TEST(TokenTest, LooksLikeApiTokenRejectsOtherShapes) {
  auto token = new_api_token();
  ASSERT_TRUE(token.ok());
  const std::string t = *token;
  EXPECT_FALSE(looks_like_api_token(""));
  EXPECT_FALSE(looks_like_api_token("dgw_"));
  EXPECT_FALSE(looks_like_api_token(t.substr(0, t.size() - 1)));
  EXPECT_FALSE(looks_like_api_token(t + "A"));
  EXPECT_FALSE(looks_like_api_token("xgw_" + t.substr(4)));
  EXPECT_FALSE(looks_like_api_token("DGW_" + t.substr(4)));
  for (char bad : {'+', '/', '=', ' ', '.', '\0', '\n'}) {
    std::string changed = t;
    changed[10] = bad;
    EXPECT_FALSE(looks_like_api_token(changed)) << static_cast<int>(bad);
  }
}

TEST(TokenTest, HashIsStableLowerHexSha256) {
  // SHA-256("abc") from FIPS 180-2.
  EXPECT_EQ(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto token = new_api_token();
  ASSERT_TRUE(token.ok());
  const std::string h = token_hash(*token);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, token_hash(*token));
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(h.find(token->substr(4)), std::string::npos);
  EXPECT_NE(h, token_hash(*token + "x"));
}

}  // namespace
}  // namespace gw::crypto
