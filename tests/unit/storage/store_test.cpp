#include "storage/store.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace gw::storage {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

std::vector<std::uint8_t> make_bytes(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 31 + (i >> 8));
  return out;
}

std::vector<std::uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t count_entries(const fs::path& dir) {
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

std::size_t count_files_recursive(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> make_store(bool fsync = true) {
    auto store = Store::create({.data_dir = dir_.path() / "data", .fsync = fsync});
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return std::move(store).value();
  }
  fs::path data() const { return dir_.path() / "data"; }

  TempDir dir_{"gw-store-test"};
};

TEST_F(StoreTest, CreateMakesDirectories) {
  auto store = make_store();
  for (const char* sub : {"", "spool", "storage"}) {
    struct stat st {};
    ASSERT_EQ(::stat((data() / sub).c_str(), &st), 0) << sub;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0027, 0u) << "no group-write or world access: " << sub;
  }
  auto free = store->free_bytes();
  ASSERT_TRUE(free.ok());
  EXPECT_GT(*free, 0u);
}

TEST_F(StoreTest, WriteAndCommitStoresExactBytes) {
  auto store = make_store();
  auto file = store->begin();
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->path().parent_path(), data() / "spool");
  EXPECT_EQ(file->path().extension(), ".part");

  auto a = make_bytes(100'000, 1);
  auto b = make_bytes(3, 7);
  auto c = make_bytes(1 << 20, 9);
  ASSERT_TRUE(file->write(a).ok());
  ASSERT_TRUE(file->write({}).ok());
  ASSERT_TRUE(file->write(b).ok());
  ASSERT_TRUE(file->write(c).ok());
  std::vector<std::uint8_t> all = a;
  all.insert(all.end(), b.begin(), b.end());
  all.insert(all.end(), c.begin(), c.end());
  EXPECT_EQ(file->size(), all.size());
  EXPECT_EQ(file->digest(), storage::ContentDigest::of(all)) << "streamed digest = one-shot digest";

  auto rel = store->commit(std::move(*file));
  ASSERT_TRUE(rel.ok()) << rel.error().message;
  EXPECT_TRUE(std::regex_match(*rel, std::regex("storage/([0-9a-f]{2})/\\1[0-9a-f]{30}\\.dcm")))
      << *rel;
  EXPECT_EQ(store->absolute(*rel), data() / *rel);
  EXPECT_EQ(read_file(store->absolute(*rel)), all);
  EXPECT_EQ(count_entries(data() / "spool"), 0u);

  struct stat st {};
  ASSERT_EQ(::stat(store->absolute(*rel).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0137, 0u) << "file mode is at most 0640";

  ASSERT_TRUE(store->remove(*rel).ok());
  EXPECT_FALSE(fs::exists(store->absolute(*rel)));
  EXPECT_TRUE(store->remove(*rel).ok()) << "removing a missing file is not an error";
}

TEST_F(StoreTest, EmptyFileDigest) {
  auto store = make_store(/*fsync=*/false);
  auto file = store->begin();
  ASSERT_TRUE(file.ok());
  // XXH3-128 of no bytes, as `xxhsum -H2 /dev/null` prints it.
  EXPECT_EQ(file->digest(), "xxh128:99aa06d3014798d86001c324468d497f");
  auto rel = store->commit(std::move(*file));
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(fs::file_size(store->absolute(*rel)), 0u);
}

TEST_F(StoreTest, UncommittedSpoolFileIsRemovedByDestructor) {
  auto store = make_store();
  fs::path part;
  {
    auto file = store->begin();
    ASSERT_TRUE(file.ok());
    part = file->path();
    ASSERT_TRUE(file->write(make_bytes(1000, 3)).ok());
    EXPECT_TRUE(fs::exists(part));
    SpoolFile moved = std::move(*file);  // the moved-from shell owns nothing
    EXPECT_TRUE(fs::exists(part));
  }
  EXPECT_FALSE(fs::exists(part));
  EXPECT_EQ(count_entries(data() / "spool"), 0u);
  EXPECT_EQ(count_files_recursive(data() / "storage"), 0u);
}

TEST_F(StoreTest, MoveAssignmentDiscardsTheOverwrittenFile) {
  auto store = make_store();
  auto first = store->begin();
  auto second = store->begin();
  ASSERT_TRUE(first.ok() && second.ok());
  fs::path first_path = first->path();
  fs::path second_path = second->path();
  EXPECT_NE(first_path, second_path);
  *first = std::move(*second);
  EXPECT_FALSE(fs::exists(first_path));
  EXPECT_TRUE(fs::exists(second_path));
  EXPECT_EQ(first->path(), second_path);
}

TEST_F(StoreTest, CreateRemovesLeftoverSpoolFiles) {
  make_store();
  for (int i = 0; i < 3; ++i) {
    std::ofstream(data() / "spool" / ("leftover" + std::to_string(i) + ".part")) << "partial";
  }
  std::ofstream(data() / "spool" / "keep.txt") << "not a spool file";
  auto store = make_store();
  EXPECT_EQ(count_entries(data() / "spool"), 1u);
  EXPECT_TRUE(fs::exists(data() / "spool" / "keep.txt"));
}

TEST_F(StoreTest, CommitNamesAreUniqueAndRandom) {
  auto store = make_store(/*fsync=*/false);
  std::set<std::string> names;
  for (int i = 0; i < 200; ++i) {
    auto file = store->begin();
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->write(make_bytes(16, 5)).ok());  // identical content every time
    auto rel = store->commit(std::move(*file));
    ASSERT_TRUE(rel.ok()) << rel.error().message;
    EXPECT_EQ(rel->find(".."), std::string::npos);
    EXPECT_TRUE(names.insert(*rel).second) << "duplicate name " << *rel;
  }
  EXPECT_EQ(count_files_recursive(data() / "storage"), 200u);
  EXPECT_EQ(count_entries(data() / "spool"), 0u);
}

TEST_F(StoreTest, RemoveRefusesPathsOutsideStorage) {
  auto store = make_store();
  std::ofstream(data() / "victim") << "x";
  EXPECT_EQ(store->remove("victim").error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->remove("storage/../victim").error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->remove("/etc/passwd").error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(data() / "victim"));
}

TEST_F(StoreTest, CommitOfAMovedFromFileFails) {
  auto store = make_store();
  auto file = store->begin();
  ASSERT_TRUE(file.ok());
  SpoolFile taken = std::move(*file);
  auto rel = store->commit(std::move(*file));
  EXPECT_FALSE(rel.ok());
  EXPECT_FALSE(file->write(make_bytes(1, 1)).ok());
}

// Disk full: a mount is not possible unprivileged, so a file-size limit (RLIMIT_FSIZE, with
// SIGXFSZ ignored) makes write() fail with EFBIG, which the store treats like ENOSPC. The limit
// is set in a forked child (gtest's default "fast" death-test style forks without exec, so the
// child shares this test's temp dir) so it cannot leak into other tests.
void write_past_file_size_limit(const fs::path& data_dir) {
  std::signal(SIGXFSZ, SIG_IGN);
  constexpr rlim_t kLimit = 64 * 1024;
  rlimit limit{kLimit, kLimit};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) std::_Exit(10);

  auto store = Store::create({.data_dir = data_dir, .fsync = true});
  if (!store.ok()) std::_Exit(11);
  fs::path part;
  {
    auto file = (*store)->begin();
    if (!file.ok()) std::_Exit(12);
    part = file->path();
    // The first write() is cut short at the limit (a partial write), the retry gets EFBIG.
    auto status = file->write(make_bytes(kLimit + 4096, 1));
    if (status.ok()) std::_Exit(13);
    if (status.error().code != core::ErrorCode::kResourceExhausted) std::_Exit(14);
    if (status.error().message.rfind("disk full: ", 0) != 0) std::_Exit(15);
    if (file->size() != kLimit) std::_Exit(16);
    // A file with a failed write is never committed, and committing it removes it.
    auto rel = (*store)->commit(std::move(*file));
    if (rel.ok()) std::_Exit(17);
  }
  if (fs::exists(part)) std::_Exit(18);
  if (count_entries(data_dir / "spool") != 0) std::_Exit(19);
  if (count_files_recursive(data_dir / "storage") != 0) std::_Exit(20);
  std::fprintf(stderr, "disk-full-ok\n");
  std::_Exit(0);
}

TEST_F(StoreTest, DiskFullIsResourceExhaustedAndLeavesNothing) {
  EXPECT_EXIT(write_past_file_size_limit(data()), ::testing::ExitedWithCode(0), "disk-full-ok");
}

}  // namespace
TEST(StoreLock, SecondStoreOnTheSameDataDirIsRefused) {
  gw::test::TempDir dir("gw-store-lock");
  auto first = Store::create({dir.path() / "data", false});
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = Store::create({dir.path() / "data", false});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, gw::core::ErrorCode::kConflict);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos);
  first->reset();
  auto third = Store::create({dir.path() / "data", false});
  EXPECT_TRUE(third.ok()) << third.error().message;
}

}  // namespace gw::storage
