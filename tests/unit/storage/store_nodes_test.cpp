// Several nodes on one data_dir (StoreOptions::node_id): each writes and cleans up only its own
// spool/<node_id>/ and storage/<node_id>/, locks its own .lock-<node_id>, and none runs beside a
// gateway without node_id.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "storage/store.h"
#include "support/temp_dir.h"

namespace gw::storage {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

class StoreNodesTest : public ::testing::Test {
 protected:
  core::Result<std::unique_ptr<Store>> open(const std::string& node_id) {
    StoreOptions o;
    o.data_dir = data();
    o.fsync = false;
    o.node_id = node_id;
    return Store::create(o);
  }
  std::unique_ptr<Store> must_open(const std::string& node_id) {
    auto store = open(node_id);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }
  /// A published file: renamed into storage/ and never committed, as a crash leaves it.
  std::string publish(Store& store) {
    auto spool = store.begin();
    EXPECT_TRUE(spool.ok());
    const std::vector<std::uint8_t> bytes(64, 0x5a);
    EXPECT_TRUE(spool->write(bytes).ok());
    auto published = store.publish(std::move(spool).value());
    EXPECT_TRUE(published.ok()) << (published.ok() ? "" : published.error().message);
    return published.ok() ? published->path : std::string();
  }
  /// Makes the store's last run look like it died (kill -9) a minute ago.
  void mark_unclean(const fs::path& lock_file) {
    std::ofstream(lock_file, std::ios::trunc) << "running\n";
    fs::last_write_time(lock_file, fs::file_time_type::clock::now() - std::chrono::minutes(1));
  }
  fs::path data() const { return dir_.path() / "data"; }

  TempDir dir_{"gw-store-nodes-test"};
};

TEST_F(StoreNodesTest, NodesWriteTheirOwnSubdirectories) {
  auto a = must_open("node-a");
  auto b = must_open("node.b_2");
  ASSERT_TRUE(a && b);
  const std::string pa = publish(*a);
  const std::string pb = publish(*b);
  EXPECT_EQ(pa.rfind("storage/node-a/", 0), 0u) << pa;
  EXPECT_EQ(pb.rfind("storage/node.b_2/", 0), 0u) << pb;
  // storage/<node_id>/<2 hex>/<32 hex>.dcm
  EXPECT_EQ(fs::path(pa).parent_path().filename().string().size(), 2u);
  EXPECT_EQ(fs::path(pa).filename().string().size(), 32u + 4u);
  EXPECT_TRUE(fs::is_regular_file(data() / pa));
  EXPECT_TRUE(fs::is_regular_file(data() / pb));
  EXPECT_EQ(a->absolute(pb), data() / pb);  // any node reads any node's file by its path

  auto spool = a->begin();
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ(spool->path().parent_path(), data() / "spool" / "node-a");
  EXPECT_TRUE(fs::exists(data() / ".lock-node-a"));
  EXPECT_TRUE(fs::exists(data() / ".lock-node.b_2"));
}

TEST_F(StoreNodesTest, LocksRefuseWhatCannotShareTheDataDir) {
  {
    auto alone = must_open("");
    ASSERT_TRUE(alone);
    auto second = open("");
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, core::ErrorCode::kConflict);
    EXPECT_NE(second.error().message.find("set node_id on each node"), std::string::npos)
        << second.error().message;
    auto node = open("a");
    ASSERT_FALSE(node.ok());
    EXPECT_EQ(node.error().code, core::ErrorCode::kConflict);
    EXPECT_NE(node.error().message.find("without node_id"), std::string::npos)
        << node.error().message;
  }
  auto a = must_open("a");
  ASSERT_TRUE(a);
  auto again = open("a");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, core::ErrorCode::kConflict);
  EXPECT_NE(again.error().message.find("node_id a is already running"), std::string::npos)
      << again.error().message;
  auto alone = open("");
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.error().code, core::ErrorCode::kConflict);
  a.reset();
  EXPECT_TRUE(open("").ok()) << "the locks are released with the stores";
}

TEST_F(StoreNodesTest, InvalidNodeIdsAreRefused) {
  const std::vector<std::string> invalid{".", "..", "a/b", "a b", std::string(65, 'x')};
  for (const auto& id : invalid) {
    auto store = open(id);
    ASSERT_FALSE(store.ok()) << id;
    EXPECT_EQ(store.error().code, core::ErrorCode::kInvalidArgument) << id;
  }
  EXPECT_FALSE(fs::exists(data() / "spool" / ".."));
  EXPECT_TRUE(open(std::string(64, 'x')).ok());
}

TEST_F(StoreNodesTest, RecoveryOfOneNodeNeverTouchesAnotherNodesFiles) {
  auto b = must_open("b");
  ASSERT_TRUE(b);
  std::string a_leftover;
  std::string a_spool;
  {
    auto a = must_open("a");
    ASSERT_TRUE(a);
    a_leftover = publish(*a);
    auto spool = a->begin();
    ASSERT_TRUE(spool.ok());
    a_spool = spool->path();
    // The spool file outlives the store, as after a kill -9.
    fs::copy_file(spool->path(), fs::path(a_spool).replace_extension(".keep"));
  }
  fs::rename(fs::path(a_spool).replace_extension(".keep"), a_spool);
  mark_unclean(data() / ".lock-a");

  // Node b is in the middle of receiving: a spool file, and a file renamed but not committed.
  auto b_spool = b->begin();
  ASSERT_TRUE(b_spool.ok());
  const std::string b_uncommitted = publish(*b);

  auto a = must_open("a");
  ASSERT_TRUE(a);
  auto candidates = a->recovery_candidates();
  ASSERT_TRUE(candidates.ok());
  EXPECT_EQ(*candidates, std::vector<std::string>{a_leftover});
  EXPECT_FALSE(fs::exists(a_spool)) << "node a's own leftover spool file is removed";
  EXPECT_TRUE(fs::exists(b_spool->path())) << "node b's spool file is untouched";
  EXPECT_TRUE(fs::exists(data() / b_uncommitted));

  auto b_candidates = b->recovery_candidates();
  ASSERT_TRUE(b_candidates.ok());
  EXPECT_TRUE(b_candidates->empty()) << "b's previous run (none) was not unclean";
}

TEST_F(StoreNodesTest, AGatewayWithoutNodeIdRecoversOnlyItsOwnShards) {
  {
    auto a = must_open("a");
    ASSERT_TRUE(a);
    publish(*a);
  }
  std::string own;
  {
    auto alone = must_open("");
    ASSERT_TRUE(alone);
    own = publish(*alone);
  }
  mark_unclean(data() / ".lock");
  auto alone = must_open("");
  ASSERT_TRUE(alone);
  auto candidates = alone->recovery_candidates();
  ASSERT_TRUE(candidates.ok());
  EXPECT_EQ(*candidates, std::vector<std::string>{own});
  EXPECT_EQ(own.rfind("storage/", 0), 0u);
  EXPECT_EQ(std::count(own.begin(), own.end(), '/'), 2) << own;
}

}  // namespace
}  // namespace gw::storage
