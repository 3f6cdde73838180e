// `dicom-gw db rotate-key` and the key loading around it (ADR 010), on a real SQLite index in a
// temporary data directory with real encrypted files: a stored file that cannot be read stops
// the run (it may be wrapped by the old key only), a missing one is reported and keeps the run
// from being "done", and only a complete run says the previous key can go.
#include "app/encryption.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/db_commands.h"
#include "index/index.h"
#include "storage/encrypted_file.h"
#include "support/temp_dir.h"

namespace gw::app {
namespace {

namespace fs = std::filesystem;

const std::string kKeyA = "rotation-test-key-A-0123456789abcdefghijklmnop";
const std::string kKeyB = "rotation-test-key-B-0123456789abcdefghijklmnop";

crypto::Keyring ring(const std::string& current, const std::string& previous = "") {
  crypto::Keyring r;
  r.current = crypto::MasterKey::from_secret(current).value();
  if (!previous.empty()) r.previous = crypto::MasterKey::from_secret(previous).value();
  return r;
}

void write_key_file(const fs::path& path, const std::string& key) {
  std::ofstream(path) << key << '\n';
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

class RotateKeyTest : public ::testing::Test {
 protected:
  static constexpr int kFiles = 5;

  void SetUp() override {
    data_ = dir_.subdir("data");
    fs::create_directories(data_ / "storage" / "ab");
    // Stored under key A: index rows with PHI and encrypted files.
    auto opened = index::open_index("", data_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto keys = (*opened)->use_keyring(ring(kKeyA));
    ASSERT_TRUE(keys.ok()) << keys.error().message;
    for (int i = 0; i < kFiles; ++i) {
      index::InstanceRecord r;
      r.sop_instance_uid = "1.2.3." + std::to_string(i);
      r.series_instance_uid = "1.2.3.100";
      r.study_instance_uid = "1.2.3.1000";
      r.patient_id = "PID-1";
      r.patient_name = "Test^Patient";
      r.storage_path = "storage/ab/" + std::to_string(i) + ".dcm";
      r.received_at_ms = 1'700'000'000'000;
      ASSERT_TRUE((*opened)->insert_instance(r, index::DuplicatePolicy::kKeepFirst).ok());
      paths_.push_back(r.storage_path);
      const fs::path path = data_ / r.storage_path;
      core::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      ASSERT_TRUE(fd.valid());
      auto writer = storage::EncryptedFileWriter::create(fd.get(), path, **keys);
      ASSERT_TRUE(writer.ok()) << writer.error().message;
      const std::string body = "DICM body of instance " + std::to_string(i);
      ASSERT_TRUE(
          writer->write({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()}).ok());
      ASSERT_TRUE(writer->finish().ok());
    }
    index_ = std::move(opened).value();
    write_key_file(dir_ / "key-a", kKeyA);
    write_key_file(dir_ / "key-b", kKeyB);
    config_ = dir_ / "config.yaml";
    std::ofstream(config_) << "data_dir: " << data_.string()
                           << "\nlisteners:\n  - {name: plain, port: 11112}\n"
                           << "database:\n  encryption_key_file: " << (dir_ / "key-b").string()
                           << "\n  previous_encryption_key_file: " << (dir_ / "key-a").string()
                           << '\n';
  }

  /// The keys of the rotation (B current, A previous), registered.
  std::shared_ptr<const crypto::Keyring> rotation_keys() {
    auto keys = index_->use_keyring(ring(kKeyB, kKeyA));
    EXPECT_TRUE(keys.ok()) << keys.error().message;
    return keys.ok() ? *keys : nullptr;
  }

  /// Whether the stored file opens with key B alone (A removed).
  bool opens_with_new_key_only(const std::string& relative) {
    auto keys = index_->use_keyring(ring(kKeyB, kKeyA));
    if (!keys.ok()) return false;
    crypto::Keyring only_b;
    only_b.current = (*keys)->current;
    const fs::path path = data_ / relative;
    core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return fd.valid() && storage::EncryptedFileReader::open(std::move(fd), path, only_b).ok();
  }

  struct Run {
    int rc = 0;
    std::string out, err;
  };
  Run run_command() {
    DbArgs args;
    args.config = config_;
    args.batch = 2;
    Run run;
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    run.rc = run_db_rotate_key(args);
    run.err = testing::internal::GetCapturedStderr();
    run.out = testing::internal::GetCapturedStdout();
    return run;
  }

  test::TempDir dir_{"gw-rotate-key"};
  fs::path data_;
  fs::path config_;
  std::vector<std::string> paths_;
  std::unique_ptr<index::Index> index_;
};

TEST_F(RotateKeyTest, ACompleteRunRewrapsEveryFileAndOnlyThenSaysTheOldKeyCanGo) {
  const Run run = run_command();
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_NE(run.out.find("done"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("remove it"), std::string::npos) << run.out;
  for (const auto& relative : paths_) EXPECT_TRUE(opens_with_new_key_only(relative)) << relative;
}

TEST_F(RotateKeyTest, AnUnreadableFileStopsTheRunAndTheOldKeyIsNotDeclaredUnneeded) {
  // A directory where the file should be: open succeeds, read fails (EISDIR) even as root.
  const fs::path broken = data_ / paths_[2];
  fs::remove(broken);
  fs::create_directory(broken);
  RotationOptions options;
  options.batch = 2;
  auto progress = rotate_keys(*index_, data_, rotation_keys(), options);
  ASSERT_FALSE(progress.ok());
  EXPECT_EQ(progress.error().code, core::ErrorCode::kIo);
  EXPECT_NE(progress.error().message.find(broken.string()), std::string::npos)
      << progress.error().message;
  EXPECT_NE(progress.error().message.find("errno " + std::to_string(EISDIR)), std::string::npos)
      << progress.error().message;

  const Run run = run_command();
  EXPECT_EQ(run.rc, 1);
  EXPECT_NE(run.err.find(broken.string()), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("keep the previous key"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("remove it"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("done"), std::string::npos) << run.out;
}

TEST_F(RotateKeyTest, AFileWithoutReadPermissionStopsTheRun) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a mode-000 file (see the EISDIR test)";
  const fs::path locked = data_ / paths_[1];
  fs::permissions(locked, fs::perms::none);
  RotationOptions options;
  auto progress = rotate_keys(*index_, data_, rotation_keys(), options);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_FALSE(progress.ok());
  EXPECT_NE(progress.error().message.find(locked.string()), std::string::npos);
  EXPECT_NE(progress.error().message.find("errno " + std::to_string(EACCES)), std::string::npos)
      << progress.error().message;
}

TEST_F(RotateKeyTest, AMissingFileIsReportedAndTheRunIsNotDone) {
  fs::remove(data_ / paths_[3]);
  RotationOptions options;
  options.batch = 2;
  auto progress = rotate_keys(*index_, data_, rotation_keys(), options);
  ASSERT_TRUE(progress.ok()) << progress.error().message;
  EXPECT_EQ(progress->rows_left, 0);
  EXPECT_EQ(progress->files_listed, kFiles);
  EXPECT_EQ(progress->files_missing, 1);
  ASSERT_EQ(progress->missing_files.size(), 1u);
  EXPECT_EQ(progress->missing_files[0], paths_[3]);
  EXPECT_FALSE(progress->done);
  // The others were rewrapped all the same.
  for (int i = 0; i < kFiles; ++i) {
    if (i == 3) continue;
    EXPECT_TRUE(opens_with_new_key_only(paths_[i])) << paths_[i];
  }

  const Run run = run_command();
  EXPECT_EQ(run.rc, 1);
  EXPECT_NE(run.err.find("1 of 5 stored files"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(paths_[3]), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("keep the previous key"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("remove it"), std::string::npos) << run.out;
}

TEST_F(RotateKeyTest, AllFilesMissingLikeAnUnmountedVolumeIsNeverDone) {
  fs::remove_all(data_ / "storage");
  fs::create_directories(data_ / "storage");  // the empty mount point
  const Run run = run_command();
  EXPECT_EQ(run.rc, 1);
  EXPECT_NE(run.err.find("5 of 5 stored files"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("remove it"), std::string::npos) << run.out;
}

// database.encryption_key_env naming a variable that is not set: an error at start, not
// encryption silently off. The default name unset keeps meaning "no encryption".
TEST(LoadKeys, ANamedKeyVariableThatIsNotSetIsAnError) {
  test::TempDir dir("gw-load-keys");
  auto index = index::open_index("", dir.path());
  ASSERT_TRUE(index.ok()) << index.error().message;
  config::Config config;
  config.data_dir = dir.path();
  ::unsetenv("GW_TEST_UNSET_KEY_VARIABLE");
  config.database.encryption_key_env = "GW_TEST_UNSET_KEY_VARIABLE";
  auto named = load_keys(config, **index);
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(named.error().message.find("GW_TEST_UNSET_KEY_VARIABLE"), std::string::npos);
  EXPECT_NE(named.error().message.find("not set"), std::string::npos);
  auto read = read_keys(config.database, false);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, core::ErrorCode::kConfig);

  // Set: it is used.
  ::setenv("GW_TEST_UNSET_KEY_VARIABLE", kKeyA.c_str(), 1);
  auto set = load_keys(config, **index);
  ::unsetenv("GW_TEST_UNSET_KEY_VARIABLE");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_FALSE((*set)->empty());

  // The default name, unset: no encryption, as documented (on a fresh index).
  test::TempDir fresh("gw-load-keys");
  auto fresh_index = index::open_index("", fresh.path());
  ASSERT_TRUE(fresh_index.ok());
  config::Config defaults;
  defaults.data_dir = fresh.path();
  if (std::getenv(defaults.database.encryption_key_env.c_str()) == nullptr) {
    auto off = load_keys(defaults, **fresh_index);
    ASSERT_TRUE(off.ok()) << off.error().message;
    EXPECT_TRUE((*off)->empty());
  }
}

}  // namespace
}  // namespace gw::app
