// write_file_atomic: content and mode, overwrite refusal, and a symlinked path (certbot's
// live/NAME/fullchain.pem -> ../../archive/NAME/fullchainN.pem) staying a symlink.
#include "certs/openssl_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "support/temp_dir.h"
#include "support/text.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;

std::size_t entries(const fs::path& dir) {
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(WriteFileAtomic, WritesWithModeAndRefusesToOverwriteUnlessAsked) {
  test::TempDir dir("gw-unit-write-atomic");
  const fs::path file = dir.path() / "a.pem";
  ASSERT_TRUE(write_file_atomic(file, "one", 0640, false).ok());
  EXPECT_EQ(test::read_text(file), "one");
  EXPECT_EQ(test::mode_of(file), 0640u);
  const auto refused = write_file_atomic(file, "two", 0640, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kAlreadyExists);
  EXPECT_EQ(test::read_text(file), "one");
  ASSERT_TRUE(write_file_atomic(file, "two", 0600, true).ok());
  EXPECT_EQ(test::read_text(file), "two");
  EXPECT_EQ(test::mode_of(file), 0600u);
  EXPECT_EQ(entries(dir.path()), 1u);  // no temporary file left
}

TEST(WriteFileAtomic, ReplacesTheTargetOfASymlinkAndKeepsTheLink) {
  test::TempDir dir("gw-unit-write-atomic");
  const fs::path archive = dir.path() / "archive" / "gw";
  const fs::path live = dir.path() / "live" / "gw";
  fs::create_directories(archive);
  fs::create_directories(live);
  const fs::path target = archive / "fullchain1.pem";
  const fs::path link = live / "fullchain.pem";
  std::ofstream(target) << "old";
  fs::create_symlink(fs::path("../../archive/gw/fullchain1.pem"), link);

  ASSERT_TRUE(write_file_atomic(link, "new", 0644, true).ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), fs::path("../../archive/gw/fullchain1.pem"));
  EXPECT_EQ(test::read_text(target), "new");
  EXPECT_EQ(test::mode_of(target), 0644u);
  // The temporary file was made beside the target, and is gone.
  EXPECT_EQ(entries(live), 1u);
  EXPECT_EQ(entries(archive), 1u);

  // A dangling link is not replaced by a regular file.
  const fs::path dangling = live / "privkey.pem";
  fs::create_symlink(fs::path("../../archive/gw/privkey9.pem"), dangling);
  EXPECT_FALSE(write_file_atomic(dangling, "key", 0600, true).ok());
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_EQ(entries(archive), 1u);
}

}  // namespace
}  // namespace gw::certs
