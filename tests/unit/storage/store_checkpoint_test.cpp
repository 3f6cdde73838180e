// Store::checkpoint(): after a crash the recovery looks at the files written since the last
// checkpoint, which no file still waiting for its index row (or kept for the next start's check)
// may pass, instead of at every file since the crashed run began.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/store.h"
#include "support/temp_dir.h"

namespace gw::storage {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::minutes;

class StoreCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = open(); }

  std::unique_ptr<Store> open() {
    auto store = Store::create({.data_dir = dir_.path() / "data", .fsync = true});
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }
  /// A file renamed into storage/, still open, its ticket still pending.
  PublishedFile publish() {
    auto spool = store_->begin();
    EXPECT_TRUE(spool.ok());
    const std::vector<std::uint8_t> bytes(64, 0x5a);
    EXPECT_TRUE(spool->write(bytes).ok());
    auto published = store_->publish(std::move(spool).value());
    EXPECT_TRUE(published.ok()) << (published.ok() ? "" : published.error().message);
    return std::move(published).value();
  }
  /// Makes a stored file look written `age` ago.
  void age(const std::string& path, minutes by) {
    const auto file = store_->absolute(path);
    fs::last_write_time(file, fs::last_write_time(file) - by);
  }
  fs::file_time_type lock_time() const { return fs::last_write_time(dir_.path() / "data/.lock"); }
  /// Ends the run as a crash does (the lock file keeps "running") and lists what the next
  /// start would check.
  std::vector<std::string> candidates_after_crash() {
    store_->mark_unclean();
    store_.reset();
    auto next = open();
    if (!next) return {};
    auto candidates = next->recovery_candidates();
    EXPECT_TRUE(candidates.ok());
    return candidates.ok() ? *candidates : std::vector<std::string>{};
  }
  static bool lists(const std::vector<std::string>& candidates, const std::string& path) {
    return std::find(candidates.begin(), candidates.end(), path) != candidates.end();
  }

  test::TempDir dir_{"gw-store-checkpoint"};
  std::unique_ptr<Store> store_;
};

TEST_F(StoreCheckpointTest, FilesBeforeTheCheckpointAreNotRecoveryCandidates) {
  ASSERT_TRUE(store_);
  // A run that started an hour ago; a file indexed ten minutes ago; one whose row never came.
  fs::last_write_time(dir_.path() / "data/.lock", fs::file_time_type::clock::now() - minutes(60));
  auto indexed = publish();
  indexed.pending.release();
  age(indexed.path, minutes(10));
  auto orphan = publish();
  store_->keep_for_recovery(orphan);  // e.g. a commit whose outcome is unknown
  const std::string indexed_path = indexed.path;
  const std::string orphan_path = orphan.path;
  ASSERT_TRUE(store_->checkpoint().ok());
  const auto candidates = candidates_after_crash();
  EXPECT_FALSE(lists(candidates, indexed_path)) << "a file older than the checkpoint was listed";
  EXPECT_TRUE(lists(candidates, orphan_path)) << "the kept file was passed by the checkpoint";
}

TEST_F(StoreCheckpointTest, WithoutACheckpointTheWholeRunIsChecked) {
  ASSERT_TRUE(store_);
  fs::last_write_time(dir_.path() / "data/.lock", fs::file_time_type::clock::now() - minutes(60));
  auto indexed = publish();
  indexed.pending.release();
  age(indexed.path, minutes(10));
  const std::string indexed_path = indexed.path;
  EXPECT_TRUE(lists(candidates_after_crash(), indexed_path));
}

TEST_F(StoreCheckpointTest, APendingFileHoldsTheCheckpointBack) {
  ASSERT_TRUE(store_);
  auto in_flight = publish();
  const auto written = fs::last_write_time(store_->absolute(in_flight.path));
  ASSERT_TRUE(store_->checkpoint().ok());
  EXPECT_LE(lock_time(), written) << "the checkpoint passed a file still waiting for its row";
  const auto held = lock_time();
  in_flight.pending.release();
  ASSERT_TRUE(store_->checkpoint().ok());
  EXPECT_GE(lock_time(), held);
  // With nothing pending the checkpoint is "now" on the coarse clock, which may trail the
  // file's time stamp by up to a clock tick: kernels with multigrain time stamps (6.13+) stamp
  // a file whose times were just read with the fine clock. Earlier is the safe side (recovery
  // looks at more files), and recovery's margin is minutes.
  EXPECT_GE(lock_time() + milliseconds(50), written);
}

TEST_F(StoreCheckpointTest, DoesNothingBeforeTheCrashedRunIsRecovered) {
  ASSERT_TRUE(store_);
  const auto crashed_run_start = fs::file_time_type::clock::now() - minutes(60);
  fs::last_write_time(dir_.path() / "data/.lock", crashed_run_start);
  store_->mark_unclean();
  store_.reset();
  store_ = open();
  ASSERT_TRUE(store_);
  ASSERT_TRUE(store_->checkpoint().ok());
  EXPECT_EQ(lock_time(), crashed_run_start) << "the crashed run's leftovers would be skipped";
  store_->mark_recovered();
  ASSERT_TRUE(store_->checkpoint().ok());
  EXPECT_GT(lock_time(), crashed_run_start);
}

}  // namespace
}  // namespace gw::storage
