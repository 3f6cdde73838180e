#pragma once
/// Ingest: the life of an instance (docs/ARCHITECTURE.md). A C-STORE data set is streamed to a
/// spool file behind a generated File Meta group; on the last fragment the worker pool parses
/// the tags the index needs, checks them against the command, makes the file durable, renames
/// it into storage/ and commits the index row. Only then is success answered.

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/batcher.h"
#include "dicom/scp.h"
#include "index/index.h"
#include "storage/store.h"

namespace gw::app {

struct IngestCounters {
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> bytes_stored{0};
  std::atomic<std::uint64_t> commit_groups{0};  ///< stored / commit_groups = mean group size
};

class IngestService final : public dicom::StoreService {
 public:
  /// `worker_pool`: where the SHA-256 of each received file is computed, behind the writer.
  IngestService(storage::Store& store, index::Index& index, config::DuplicatePolicy duplicates,
                asio::any_io_executor worker_pool);

  core::Result<std::unique_ptr<dicom::StoreSession>> begin(
      const dicom::StoreRequest& request) override;

  IngestCounters& counters() { return counters_; }
  storage::Store& store() { return store_; }
  asio::any_io_executor worker_pool() { return worker_pool_; }
  index::Index& index() { return index_; }
  index::DuplicatePolicy duplicate_policy() const;
  /// Makes a published file's directory entry durable and commits its index row, grouped with
  /// every other instance that is ready at the same time (one round of directory fsyncs, one
  /// transaction, one WAL fsync for the whole group).
  core::Result<index::InsertResult> commit(const index::InstanceRecord& record);

 private:
  asio::any_io_executor worker_pool_;
  storage::Store& store_;
  index::Index& index_;
  config::DuplicatePolicy duplicates_;
  IngestCounters counters_;
  core::Batcher<const index::InstanceRecord*, core::Result<index::InsertResult>> committer_;
};

}  // namespace gw::app
