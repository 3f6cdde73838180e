#pragma once
/// Ingest: the life of an instance (docs/ARCHITECTURE.md). A C-STORE data set is streamed to a
/// spool file behind a generated File Meta group; on the last fragment the worker pool parses
/// the tags the index needs, checks them against the command, makes the file durable, renames
/// it into storage/ and commits the index row. Only then is success answered.

#include <atomic>
#include <memory>
#include <string>

#include "config/config.h"
#include "dicom/scp.h"
#include "index/index.h"
#include "storage/store.h"

namespace gw::app {

struct IngestCounters {
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> bytes_stored{0};
};

class IngestService final : public dicom::StoreService {
 public:
  IngestService(storage::Store& store, index::Index& index, config::DuplicatePolicy duplicates)
      : store_(store), index_(index), duplicates_(duplicates) {}

  core::Result<std::unique_ptr<dicom::StoreSession>> begin(
      const dicom::StoreRequest& request) override;

  IngestCounters& counters() { return counters_; }
  storage::Store& store() { return store_; }
  index::Index& index() { return index_; }
  index::DuplicatePolicy duplicate_policy() const;

 private:
  storage::Store& store_;
  index::Index& index_;
  config::DuplicatePolicy duplicates_;
  IngestCounters counters_;
};

}  // namespace gw::app
