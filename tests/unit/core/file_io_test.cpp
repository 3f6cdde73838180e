#include "core/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <numeric>
#include <vector>

#include "core/unique_fd.h"

namespace gw::core {
namespace {

namespace fs = std::filesystem;

class PreadFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-file-io-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = dir_ / "data.bin";
    bytes_.resize(100000);
    std::iota(bytes_.begin(), bytes_.end(), std::uint8_t{0});
    UniqueFd w(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(w.valid());
    ASSERT_EQ(::write(w.get(), bytes_.data(), bytes_.size()), static_cast<ssize_t>(bytes_.size()));
    fd_ = UniqueFd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  fs::path path_;
  std::vector<std::uint8_t> bytes_;
  UniqueFd fd_;
};

TEST_F(PreadFullTest, FillsTheBufferFromTheOffset) {
  std::vector<std::uint8_t> out(70000);
  auto n = pread_full(fd_.get(), out, 1234, path_);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, out.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), bytes_.begin() + 1234));
}

TEST_F(PreadFullTest, ShortOnlyAtTheEndAndZeroPastIt) {
  std::vector<std::uint8_t> out(5000);
  auto n = pread_full(fd_.get(), out, bytes_.size() - 10, path_);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 10u);
  EXPECT_EQ(out[9], bytes_.back());
  auto past = pread_full(fd_.get(), out, bytes_.size() + 7, path_);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
}

TEST_F(PreadFullTest, AnErrorNamesThePathAndTheReason) {
  UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  std::array<std::uint8_t, 16> out{};
  auto n = pread_full(dir.get(), out, 0, dir_);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, ErrorCode::kIo);
  EXPECT_NE(n.error().message.find(dir_.string()), std::string::npos) << n.error().message;
  EXPECT_NE(n.error().message.find("directory"), std::string::npos) << n.error().message;
}

}  // namespace
}  // namespace gw::core
