// The master keys: length rule, subkeys, check values, and where they are read from.
#include "crypto/keyring.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "support/temp_dir.h"

namespace gw::crypto {
namespace {

constexpr const char* kSecret = "0123456789abcdef0123456789abcdef0123";

/// Sets an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const char* value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value == nullptr) {
      ::unsetenv(name_.c_str());
    } else {
      ::setenv(name_.c_str(), value, 1);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::filesystem::path key_file(const test::TempDir& dir, const std::string& name,
                               const std::string& text, mode_t mode) {
  const auto path = dir.path() / name;
  std::ofstream(path) << text << "\n";
  ::chmod(path.c_str(), mode);
  return path;
}

std::string hex(const Key256& key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto b : key) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

TEST(Keyring, ShortKeysAreRefusedAndWhiteSpaceIsTrimmed) {
  auto too_short = MasterKey::from_secret("short");
  ASSERT_FALSE(too_short.ok());
  EXPECT_EQ(too_short.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(too_short.error().message,
            "the encryption key must be at least 32 characters (openssl rand -base64 32)");
  EXPECT_FALSE(MasterKey::from_secret(std::string(31, 'x')).ok());
  EXPECT_FALSE(MasterKey::from_secret("  " + std::string(31, 'x') + "\n\n").ok());
  EXPECT_TRUE(MasterKey::from_secret(std::string(32, 'x')).ok());
  EXPECT_EQ(MasterKey::from_secret(std::string(kSecret) + "\r\n")->secret(), kSecret);
  auto a = MasterKey::from_secret(std::string(kSecret) + "\n");
  auto b = MasterKey::from_secret(kSecret);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->secret(), kSecret);
  EXPECT_EQ(a->check_value(), b->check_value());
  EXPECT_EQ(a->check_value().size(), 32u);
  EXPECT_EQ(a->check_value().find(kSecret), std::string::npos);
}

TEST(Keyring, SubkeysAndCheckValuesAreStandardHkdfAndHmac) {
  // Computed apart from this code (openssl kdf ... HKDF, and RFC 5869 in Python): a check value
  // is stored in every database, so it must never change.
  auto key = MasterKey::from_secret(kSecret).value();
  EXPECT_EQ(key.check_value(), "585237ca9ce9604701a4821597e539d7");
  EXPECT_EQ(hex(key.derive(kFieldAead)),
            "3b9ed67bf9be604649c6457ee04ac016c3a84b95a4ea4ad5935b7710b7e7e88f");
  EXPECT_EQ(hex(key.derive(kBlindIndex)),
            "6df579e7b2d5d9b646c5c313709f8848746275cf35516125f357f5732e3ac190");
  EXPECT_EQ(key.version, 0u);
}

TEST(Keyring, SubkeysDifferByPurposeAndKey) {
  auto a = MasterKey::from_secret(kSecret).value();
  auto b = MasterKey::from_secret(std::string(kSecret) + "x").value();
  EXPECT_NE(a.derive(kFieldAead), a.derive(kBlindIndex));
  EXPECT_NE(a.derive(kFieldAead), a.derive(kFileWrap));
  EXPECT_NE(a.derive(kFieldAead), b.derive(kFieldAead));
  EXPECT_EQ(a.derive(kFileWrap), a.derive(kFileWrap));
  EXPECT_NE(a.check_value(), b.check_value());
}

TEST(Keyring, NothingConfiguredIsAnEmptyKeyring) {
  ScopedEnv env("GW_TEST_KEY", nullptr);
  ScopedEnv prev("GW_TEST_KEY_PREVIOUS", nullptr);
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  auto ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok());
  EXPECT_TRUE(ring->empty());
}

TEST(Keyring, KeyFileModesOtherThanOwnerOnlyAreRefused) {
  ScopedEnv env("GW_TEST_KEY", nullptr);
  test::TempDir dir("gw-keyring");
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  for (mode_t mode : {0644, 0640, 0604, 0440, 0460, 0401, 0410}) {
    sources.key_file = key_file(dir, "k" + std::to_string(mode) + ".key", kSecret, mode);
    auto ring = load_keyring(sources);
    ASSERT_FALSE(ring.ok()) << std::oct << mode;
    EXPECT_EQ(ring.error().code, core::ErrorCode::kInvalidArgument);
    EXPECT_NE(ring.error().message.find("must not be readable by group or others (chmod 400)"),
              std::string::npos)
        << ring.error().message;
    EXPECT_NE(ring.error().message.find(sources.key_file.string()), std::string::npos);
  }
  for (mode_t mode : {0400, 0600}) {
    sources.key_file = key_file(dir, "k" + std::to_string(mode) + ".key", kSecret, mode);
    auto ring = load_keyring(sources);
    ASSERT_TRUE(ring.ok()) << std::oct << mode << ": " << ring.error().message;
    EXPECT_EQ(ring->current->secret(), kSecret);
  }
}

TEST(Keyring, OnlyTheFirstLineOfARegularFileIsTheKey) {
  ScopedEnv env("GW_TEST_KEY", nullptr);
  test::TempDir dir("gw-keyring");
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  sources.key_file = key_file(dir, "two.key", std::string(kSecret) + "\r\nsecond line", 0400);
  auto ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->current->secret(), kSecret);

  sources.key_file = key_file(dir, "empty.key", "", 0400);
  EXPECT_FALSE(load_keyring(sources).ok());
  sources.key_file = key_file(dir, "long.key", std::string(10000, 'k'), 0400);
  auto long_line = load_keyring(sources);
  ASSERT_FALSE(long_line.ok());
  EXPECT_EQ(long_line.error().message.find("kkkk"), std::string::npos);

  const auto sub = dir.path() / "a-directory";
  std::filesystem::create_directory(sub);
  ::chmod(sub.c_str(), 0700);
  sources.key_file = sub;
  EXPECT_FALSE(load_keyring(sources).ok());
  const auto fifo = dir.path() / "a-fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  sources.key_file = fifo;  // refused without blocking on a writer
  auto from_fifo = load_keyring(sources);
  ASSERT_FALSE(from_fifo.ok());
  EXPECT_NE(from_fifo.error().message.find("not a regular file"), std::string::npos);
}

TEST(Keyring, ErrorsNameTheVariableNeverTheKey) {
  const std::string short_key = "tooshort-but-secret";
  ScopedEnv env("GW_TEST_KEY", short_key.c_str());
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  auto ring = load_keyring(sources);
  ASSERT_FALSE(ring.ok());
  EXPECT_EQ(ring.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(ring.error().message.find("GW_TEST_KEY"), std::string::npos) << ring.error().message;
  EXPECT_NE(ring.error().message.find("at least 32 characters"), std::string::npos);
  EXPECT_EQ(ring.error().message.find(short_key), std::string::npos);
}

TEST(Keyring, PreviousKeyFromAFileAndNeverWithoutACurrentOne) {
  ScopedEnv env("GW_TEST_KEY", nullptr);
  ScopedEnv prev("GW_TEST_KEY_PREVIOUS", nullptr);
  test::TempDir dir("gw-keyring");
  const std::string old_key = std::string(kSecret) + "-old";
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  sources.previous_key_file = key_file(dir, "old.key", old_key, 0400);
  auto alone = load_keyring(sources);
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.error().message.find(old_key), std::string::npos);

  sources.key_file = key_file(dir, "new.key", kSecret, 0600);
  auto ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->current->secret(), kSecret);
  ASSERT_TRUE(ring->previous);
  EXPECT_EQ(ring->previous->secret(), old_key);

  // The environment's previous key wins over the previous key file.
  const std::string env_old = std::string(kSecret) + "-env-old";
  ScopedEnv prev_env("GW_TEST_KEY_PREVIOUS", env_old.c_str());
  ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->previous->secret(), env_old);

  ::chmod(sources.previous_key_file.c_str(), 0644);  // not read when the environment has it
  EXPECT_TRUE(load_keyring(sources).ok());
}

TEST(Keyring, AnEmptyVariableFallsBackToTheFile) {
  ScopedEnv env("GW_TEST_KEY", "");
  test::TempDir dir("gw-keyring");
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  sources.key_file = key_file(dir, "k.key", kSecret, 0400);
  auto ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->current->secret(), kSecret);
}

TEST(Keyring, KeyFilesMustBeOwnerOnly) {
  ScopedEnv env("GW_TEST_KEY", nullptr);
  test::TempDir dir("gw-keyring");
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  sources.key_file = key_file(dir, "open.key", kSecret, 0644);
  auto refused = load_keyring(sources);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("chmod 400"), std::string::npos);
  EXPECT_EQ(refused.error().message.find(kSecret), std::string::npos);
  sources.key_file = key_file(dir, "ok.key", kSecret, 0400);
  auto ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->current->secret(), kSecret);
  sources.key_file = dir.path() / "missing.key";
  EXPECT_FALSE(load_keyring(sources).ok());
  sources.key_file = key_file(dir, "short.key", "too short", 0400);
  auto short_key = load_keyring(sources);
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(short_key.error().message.find("short.key"), std::string::npos);
}

TEST(Keyring, TheEnvironmentWinsOverAFileAndGivesThePreviousKey) {
  test::TempDir dir("gw-keyring");
  const std::string from_env = std::string(kSecret) + "-env";
  const std::string previous = std::string(kSecret) + "-old";
  ScopedEnv env("GW_TEST_KEY", from_env.c_str());
  ScopedEnv prev("GW_TEST_KEY_PREVIOUS", previous.c_str());
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  sources.key_file = key_file(dir, "file.key", kSecret, 0400);
  auto ring = load_keyring(sources);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->current->secret(), from_env);
  ASSERT_TRUE(ring->previous);
  EXPECT_EQ(ring->previous->secret(), previous);
  ring->current->version = 2;
  ring->previous->version = 1;
  EXPECT_EQ(ring->find(1), &*ring->previous);
  EXPECT_EQ(ring->find(2), &*ring->current);
  EXPECT_EQ(ring->find(3), nullptr);
  EXPECT_EQ(ring->find(0), nullptr);
}

TEST(Keyring, APreviousKeyEqualToTheCurrentOneIsRefused) {
  ScopedEnv env("GW_TEST_KEY", kSecret);
  ScopedEnv prev("GW_TEST_KEY_PREVIOUS", kSecret);
  KeySources sources;
  sources.env_name = "GW_TEST_KEY";
  auto same = load_keyring(sources);
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.error().message.find("same as the current"), std::string::npos);
  EXPECT_EQ(same.error().message.find(kSecret), std::string::npos);
}

}  // namespace
}  // namespace gw::crypto
