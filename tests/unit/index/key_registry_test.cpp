// The key registry's rules (ADR 010): versions, registration of a new key, and the refusals.
#include "index/key_registry.h"

#include <gtest/gtest.h>

namespace gw::index {
namespace {

using core::ErrorCode;

crypto::MasterKey key(char c) { return crypto::MasterKey::from_secret(std::string(40, c)).value(); }

crypto::Keyring ring(std::optional<char> current, std::optional<char> previous = std::nullopt) {
  crypto::Keyring k;
  if (current) k.current = key(*current);
  if (previous) k.previous = key(*previous);
  return k;
}

TEST(KeyRegistry, NoKeyAndNothingEncryptedIsPlaintext) {
  auto plan = plan_keys({}, ring(std::nullopt), {0});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->keyring.empty());
  EXPECT_FALSE(plan->add);
}

TEST(KeyRegistry, TheFirstKeyBecomesVersionOne) {
  auto plan = plan_keys({}, ring('a'), {0});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->keyring.current->version, 1u);
  ASSERT_TRUE(plan->add);
  EXPECT_EQ(plan->add->version, 1u);
  EXPECT_EQ(plan->add->check_value, key('a').check_value());
}

TEST(KeyRegistry, AKnownKeyGetsItsVersionAndNothingIsAdded) {
  std::vector<RegisteredKey> registry{{1, key('a').check_value()}, {2, key('b').check_value()}};
  auto plan = plan_keys(registry, ring('b', 'a'), {1, 2});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->keyring.current->version, 2u);
  EXPECT_EQ(plan->keyring.previous->version, 1u);
  EXPECT_FALSE(plan->add);
}

TEST(KeyRegistry, ANewKeyBesideAKnownPreviousGetsTheNextVersion) {
  std::vector<RegisteredKey> registry{{1, key('a').check_value()}, {2, key('b').check_value()}};
  auto plan = plan_keys(registry, ring('c', 'b'), {2});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->keyring.current->version, 3u);
  ASSERT_TRUE(plan->add);
  EXPECT_EQ(plan->add->version, 3u);
}

TEST(KeyRegistry, AnUnknownKeyAloneIsAWrongKey) {
  std::vector<RegisteredKey> registry{{1, key('a').check_value()}};
  auto plan = plan_keys(registry, ring('z'), {1});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::kConfig);
  EXPECT_NE(plan.error().message.find("wrong encryption key"), std::string::npos);
  EXPECT_EQ(plan.error().message.find(std::string(40, 'z')), std::string::npos);
}

TEST(KeyRegistry, AnUnknownPreviousKeyIsRefused) {
  std::vector<RegisteredKey> registry{{1, key('a').check_value()}};
  auto plan = plan_keys(registry, ring('b', 'z'), {1});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("previous"), std::string::npos);
}

TEST(KeyRegistry, EncryptedRowsWithoutAKeyAreRefused) {
  std::vector<RegisteredKey> registry{{1, key('a').check_value()}};
  auto plan = plan_keys(registry, ring(std::nullopt), {0, 1});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("no encryption key is configured"), std::string::npos);
}

TEST(KeyRegistry, RowsOfAVersionTheKeyringCannotReadAreRefused) {
  // Rotation to b was not finished, and a is no longer given as the previous key.
  std::vector<RegisteredKey> registry{{1, key('a').check_value()}, {2, key('b').check_value()}};
  auto plan = plan_keys(registry, ring('b'), {1, 2});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("key version 1"), std::string::npos);
  EXPECT_NE(plan.error().message.find("rotate-key"), std::string::npos);
}

}  // namespace
}  // namespace gw::index
