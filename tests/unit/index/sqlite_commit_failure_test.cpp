// An I/O error at the COMMIT of an instance insert (the WAL's fsync failing) is reported as
// kOutcomeUnknown: the commit's frames may already be in the WAL, where a later start finds them,
// so ingest must keep the file for the start-up checks rather than delete it. A full disk is an
// ordinary failure. The errors come from a VFS that wraps SQLite's default one.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "index/index.h"
#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::index {
namespace {

using core::ErrorCode;

/// What the WAL file's xSync answers while set (SQLITE_OK: pass through).
std::atomic<int> wal_sync_result{SQLITE_OK};

sqlite3_vfs* real_vfs = nullptr;

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;  // lives right after this struct (szOsFile)
  bool wal;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

int shim_close(sqlite3_file* f) { return real_of(f)->pMethods->xClose(real_of(f)); }
int shim_read(sqlite3_file* f, void* p, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xRead(real_of(f), p, n, o);
}
int shim_write(sqlite3_file* f, const void* p, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xWrite(real_of(f), p, n, o);
}
int shim_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int shim_sync(sqlite3_file* f, int flags) {
  const int fail = wal_sync_result.load();
  if (reinterpret_cast<ShimFile*>(f)->wal && fail != SQLITE_OK) return fail;
  return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int shim_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int shim_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int shim_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int shim_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int shim_file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int shim_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int shim_device(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int shim_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}
int shim_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void shim_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int shim_shm_unmap(sqlite3_file* f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

const sqlite3_io_methods kShimMethods = {
    .iVersion = 2,
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_file_size,
    .xLock = shim_lock,
    .xUnlock = shim_unlock,
    .xCheckReservedLock = shim_check_reserved,
    .xFileControl = shim_file_control,
    .xSectorSize = shim_sector_size,
    .xDeviceCharacteristics = shim_device,
    .xShmMap = shim_shm_map,
    .xShmLock = shim_shm_lock,
    .xShmBarrier = shim_shm_barrier,
    .xShmUnmap = shim_shm_unmap,
    .xFetch = nullptr,
    .xUnfetch = nullptr,
};

int shim_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(shim + 1);
  shim->wal = (flags & SQLITE_OPEN_WAL) != 0;
  shim->base.pMethods = nullptr;
  const int rc = real_vfs->xOpen(real_vfs, name, shim->real, flags, out_flags);
  if (shim->real->pMethods != nullptr) shim->base.pMethods = &kShimMethods;
  return rc;
}

/// Registered once as the process's default VFS (every other call goes to the real one).
void install_shim_vfs() {
  static sqlite3_vfs shim = [] {
    real_vfs = sqlite3_vfs_find(nullptr);
    sqlite3_vfs v = *real_vfs;
    v.zName = "gw_commit_failure_shim";
    v.szOsFile = static_cast<int>(sizeof(ShimFile)) + real_vfs->szOsFile;
    v.pAppData = nullptr;
    v.xOpen = shim_open;
    return v;
  }();
  static const int registered = sqlite3_vfs_register(&shim, /*makeDflt=*/1);
  ASSERT_EQ(registered, SQLITE_OK);
}

InstanceRecord record(const std::string& sop) {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.series_instance_uid = "1.2.3";
  r.study_instance_uid = "1.2";
  r.patient_id = "PID-1";
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.size_bytes = 100;
  r.received_at_ms = 1000;
  return r;
}

class SqliteCommitFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    install_shim_vfs();
    auto index = SqliteIndex::open(dir_.path() / "index.db");
    ASSERT_TRUE(index.ok()) << index.error().message;
    index_ = std::move(index).value();
  }
  void TearDown() override { wal_sync_result = SQLITE_OK; }

  test::TempDir dir_{"gw-sqlite-commit-failure"};
  std::unique_ptr<SqliteIndex> index_;
};

TEST_F(SqliteCommitFailureTest, AnIoErrorAtCommitIsAnUnknownOutcome) {
  wal_sync_result = SQLITE_IOERR_FSYNC;
  auto results =
      index_->insert_instances({record("1.1"), record("1.2")}, DuplicatePolicy::kKeepFirst);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kOutcomeUnknown) << r.error().message;
  }
  wal_sync_result = SQLITE_OK;
  auto after = index_->insert_instances({record("1.3")}, DuplicatePolicy::kKeepFirst);
  ASSERT_TRUE(after.front().ok()) << after.front().error().message;
  auto found = index_->find_instance("1.3");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->has_value()) << "the index is still usable after the failed commit";
}

TEST_F(SqliteCommitFailureTest, AFullDiskAtCommitIsAnOrdinaryFailure) {
  wal_sync_result = SQLITE_FULL;
  auto results = index_->insert_instances({record("2.1")}, DuplicatePolicy::kKeepFirst);
  ASSERT_FALSE(results.front().ok());
  EXPECT_EQ(results.front().error().code, ErrorCode::kResourceExhausted)
      << results.front().error().message;
}

}  // namespace
}  // namespace gw::index
