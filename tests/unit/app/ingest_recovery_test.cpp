// The start-up check of instances whose flush was never confirmed (ADR 012), on a real store
// and SQLite index in one temp dir, as after a power loss that kept some rows and lost files.

#include "app/ingest_recovery.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crypto/keyring.h"
#include "index/sqlite/sqlite_index.h"
#include "storage/store.h"
#include "support/stored_instance.h"
#include "support/temp_dir.h"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using index::DuplicatePolicy;
using index::InstanceRecord;

class IngestRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::create({.data_dir = dir_.path() / "data", .fsync = true});
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
    auto index = index::SqliteIndex::open(dir_.path() / "data" / "index.db");
    ASSERT_TRUE(index.ok()) << index.error().message;
    index_ = std::move(index).value();
  }

  /// A stored file of `n` bytes and its unflushed row (whose marker goes to `*marker`).
  InstanceRecord store_instance(const std::string& sop, std::size_t n,
                                std::int64_t* marker = nullptr) {
    auto r = test::publish_test_file(*store_, sop, n);
    auto results = index_->insert_instances_unflushed({r}, DuplicatePolicy::kKeepFirst);
    EXPECT_TRUE(results.at(0).ok());
    if (marker != nullptr && results.at(0).ok()) *marker = results[0]->marker;
    return r;
  }

  bool indexed(const std::string& sop) {
    auto found = index_->find_instance(sop);
    return found.ok() && found->has_value();
  }

  test::TempDir dir_{"gw-ingest-recovery-test"};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<index::SqliteIndex> index_;
};

TEST_F(IngestRecoveryTest, RowsWhoseFileIsLostOrDifferentGoAndTheOthersStay) {
  const auto intact = store_instance("1.1", 300000);
  const auto lost = store_instance("1.2", 1000);
  const auto truncated = store_instance("1.3", 5000);
  const auto changed = store_instance("1.4", 5000);
  ASSERT_EQ(::unlink(store_->absolute(lost.storage_path).c_str()), 0);
  fs::resize_file(store_->absolute(truncated.storage_path), 4096);
  {
    std::fstream f(store_->absolute(changed.storage_path),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x55');  // same size, different content (blocks that never reached the disk)
  }

  ASSERT_TRUE(recover_unconfirmed(*store_, *index_).ok());
  EXPECT_TRUE(indexed("1.1"));
  EXPECT_FALSE(indexed("1.2"));
  EXPECT_FALSE(indexed("1.3"));
  EXPECT_FALSE(indexed("1.4"));
  EXPECT_TRUE(fs::exists(store_->absolute(intact.storage_path)));
  EXPECT_FALSE(fs::exists(store_->absolute(truncated.storage_path)));
  EXPECT_FALSE(fs::exists(store_->absolute(changed.storage_path)));
  auto left = index_->list_unconfirmed();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  // A second start finds nothing to check.
  ASSERT_TRUE(recover_unconfirmed(*store_, *index_).ok());
  EXPECT_TRUE(indexed("1.1"));
}

TEST_F(IngestRecoveryTest, ConfirmedRowsAreNotChecked) {
  std::int64_t marker = 0;
  const auto flushed = store_instance("1.1", 1000, &marker);
  ASSERT_TRUE(store_->sync_filesystem().ok());
  index_->confirm_unflushed(marker);
  InstanceRecord other = flushed;
  other.sop_instance_uid = "1.9";
  other.storage_path = "storage/00/other.dcm";
  // A write: the confirmed marker is cleared.
  ASSERT_TRUE(index_->insert_instance(other, DuplicatePolicy::kKeepFirst).ok());
  // Even a file lost later (not this check's business: it is confirmed) keeps its row.
  ASSERT_EQ(::unlink(store_->absolute(flushed.storage_path).c_str()), 0);
  ASSERT_TRUE(recover_unconfirmed(*store_, *index_).ok());
  EXPECT_TRUE(indexed("1.1"));
}

TEST_F(IngestRecoveryTest, AFileThatCannotBeReadStopsTheStartAndKeepsItsRow) {
  const auto unreadable = store_instance("1.1", 1000);
  const auto path = store_->absolute(unreadable.storage_path);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  fs::create_directory(path);  // reads fail with EISDIR: not evidence of a lost file
  auto recovered = recover_unconfirmed(*store_, *index_);
  ASSERT_FALSE(recovered.ok());
  EXPECT_NE(recovered.error().message.find("unconfirmed instance"), std::string::npos)
      << recovered.error().message;
  EXPECT_TRUE(indexed("1.1"));
  auto left = index_->list_unconfirmed();
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 1u);
}

TEST_F(IngestRecoveryTest, WithoutADigestTheSizeDecides) {
  auto right = store_instance("1.1", 1000);
  auto wrong = store_instance("1.22", 1000);  // other bytes, so another digest
  EXPECT_EQ(*store_->check_stored(right.storage_path, right.size_bytes, ""), true);
  EXPECT_EQ(*store_->check_stored(wrong.storage_path, wrong.size_bytes + 1, ""), false);
  EXPECT_EQ(*store_->check_stored(right.storage_path, right.size_bytes, right.digest), true);
  EXPECT_EQ(*store_->check_stored(right.storage_path, right.size_bytes, wrong.digest), false);
  EXPECT_EQ(*store_->check_stored("storage/00/missing.dcm", 1, ""), false);
}

TEST_F(IngestRecoveryTest, AStoreMarkedUncleanLetsTheNextStartLookForOrphans) {
  auto orphan = store_instance("1.1", 1000);
  store_->mark_unclean();
  store_.reset();
  auto reopened = storage::Store::create({.data_dir = dir_.path() / "data", .fsync = true});
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto candidates = (*reopened)->recovery_candidates();
  ASSERT_TRUE(candidates.ok());
  EXPECT_NE(std::find(candidates->begin(), candidates->end(), orphan.storage_path),
            candidates->end());
}

// A start after a crash that fails before its recovery ran (a wrong key, a port in use) hands
// the crashed run's leftovers on to the next start; one that recovered closes clean.
TEST_F(IngestRecoveryTest, AStartThatFailsBeforeRecoveryLeavesTheOrphansToTheNext) {
  auto orphan = store_instance("1.1", 1000);
  store_->mark_unclean();
  store_.reset();
  auto lists_orphan = [&](storage::Store& store) {
    auto candidates = store.recovery_candidates();
    EXPECT_TRUE(candidates.ok());
    return candidates.ok() && std::find(candidates->begin(), candidates->end(),
                                        orphan.storage_path) != candidates->end();
  };
  auto reopen = [&]() {
    auto store = storage::Store::create({.data_dir = dir_.path() / "data", .fsync = true});
    EXPECT_TRUE(store.ok()) << store.error().message;
    return std::move(store).value();
  };
  {
    auto failed_start = reopen();
    EXPECT_TRUE(lists_orphan(*failed_start));
  }  // closed without mark_recovered()
  {
    auto next = reopen();
    EXPECT_TRUE(lists_orphan(*next));
    next->mark_recovered();
  }
  EXPECT_FALSE(lists_orphan(*reopen()));
}

TEST_F(IngestRecoveryTest, EncryptedFilesAreCheckedThroughTheirKeys) {
  auto master = crypto::MasterKey::from_secret("test-key-A-0123456789abcdefghijklmnopqrstuvwx");
  ASSERT_TRUE(master.ok());
  master->version = 1;
  auto keys = std::make_shared<crypto::Keyring>();
  keys->current = std::move(master).value();
  store_.reset();
  auto store = storage::Store::create(
      {.data_dir = dir_.path() / "data", .fsync = true, .encrypt = true, .keyring = keys});
  ASSERT_TRUE(store.ok()) << store.error().message;
  store_ = std::move(store).value();

  const auto intact = store_instance("1.1", 200000);
  const auto altered = store_instance("1.2", 200000);
  {
    std::fstream f(store_->absolute(altered.storage_path),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100000);
    f.put('\x55');  // inside a segment: fails authentication (kDataLoss)
  }
  // Without any key the check cannot tell: the start stops and nothing is removed.
  store_->set_keyring(std::make_shared<crypto::Keyring>());
  ASSERT_FALSE(recover_unconfirmed(*store_, *index_).ok());
  EXPECT_TRUE(indexed("1.1"));
  EXPECT_TRUE(indexed("1.2"));

  // Nor with only another key (version 2: the one the files need was removed too early).
  auto other = crypto::MasterKey::from_secret("test-key-B-0123456789abcdefghijklmnopqrstuvwx");
  ASSERT_TRUE(other.ok());
  other->version = 2;
  auto other_keys = std::make_shared<crypto::Keyring>();
  other_keys->current = std::move(other).value();
  store_->set_keyring(other_keys);
  auto stopped = recover_unconfirmed(*store_, *index_);
  ASSERT_FALSE(stopped.ok());
  EXPECT_NE(stopped.error().message.find("key version 1"), std::string::npos)
      << stopped.error().message;
  EXPECT_TRUE(indexed("1.1"));
  EXPECT_TRUE(indexed("1.2"));
  EXPECT_TRUE(fs::exists(store_->absolute(intact.storage_path)));

  store_->set_keyring(keys);
  ASSERT_TRUE(recover_unconfirmed(*store_, *index_).ok());
  EXPECT_TRUE(indexed("1.1"));
  EXPECT_FALSE(indexed("1.2"));
  EXPECT_TRUE(fs::exists(store_->absolute(intact.storage_path)));
}

TEST_F(IngestRecoveryTest, TheIndexFileIsOnTheStorageFileSystem) {
  auto same = store_->on_storage_filesystem(dir_.path() / "data" / "index.db");
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_TRUE(*same);
  auto other = store_->on_storage_filesystem("/proc/self/status");
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_FALSE(*other);
}

}  // namespace
}  // namespace gw::app
