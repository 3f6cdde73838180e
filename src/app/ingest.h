#pragma once
/// Ingest: the life of an instance (docs/ARCHITECTURE.md). A C-STORE data set is streamed to a
/// spool file behind a generated File Meta group; on the last fragment the worker pool parses
/// the tags the index needs, checks them against the command, renames it into storage/, and
/// makes it and its index row durable: the file flushed before the row commits, or (ADR 012)
/// the row committed unflushed and one syncfs for both (an instance that arrives while another
/// of its association is still in progress takes the first way: such flushes overlap, and
/// concurrent fdatasyncs share device flushes while concurrent syncfs calls queue behind one
/// another, ADR 013). Only then is success answered.

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/batcher.h"
#include "dicom/scp.h"
#include "index/index.h"
#include "queue/routing.h"
#include "storage/store.h"

namespace gw::app {

struct IngestCounters {
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> bytes_stored{0};
  std::atomic<std::uint64_t> commit_groups{0};  ///< stored / commit_groups = mean group size
  std::atomic<std::uint64_t> routed{0};         ///< outbox rows written (instance x destination)
  std::atomic<std::uint64_t> refused_low_space{0};  ///< refused under storage.min_free_mb
};

/// Called after a commit that queued instances for these destinations (wakes their forwarders).
using EnqueuedCallback = std::function<void(const std::vector<std::string>& destinations)>;

class IngestService final : public dicom::StoreService {
 public:
  /// `min_free_bytes`: storage.min_free_mb (0 = no reserve).
  IngestService(storage::Store& store, index::Index& index, config::DuplicatePolicy duplicates,
                std::uint64_t min_free_bytes = 0);

  /// The routing rules every instance is matched against from now on (config reload swaps
  /// them); null = nothing is forwarded. Thread-safe.
  void set_routing(std::shared_ptr<const queue::RoutingTable> routing);
  std::shared_ptr<const queue::RoutingTable> routing() const;
  /// Set once before the listeners start.
  void on_enqueued(EnqueuedCallback callback) { on_enqueued_ = std::move(callback); }
  void notify_enqueued(const std::vector<std::string>& destinations) const {
    if (on_enqueued_ && !destinations.empty()) on_enqueued_(destinations);
  }

  core::Result<std::unique_ptr<dicom::StoreSession>> begin(
      const dicom::StoreRequest& request) override;
  /// With storage.fsync off nothing in finish() waits for the disk: it runs on the
  /// association's thread (parse, rename, one SQLite commit without a WAL fsync).
  bool finish_is_quick() const override { return !store_.options().fsync; }

  IngestCounters& counters() { return counters_; }
  storage::Store& store() { return store_; }
  index::Index& index() { return index_; }
  index::DuplicatePolicy duplicate_policy() const;
  /// Commits the index row of a published file (still open), grouped with every other instance
  /// that is ready at the same time (one transaction for the group). With `shared` the row and
  /// its file are then made durable by one syncfs; otherwise the caller has flushed the file
  /// first and the commit fsyncs the WAL.
  core::Result<index::InsertResult> commit(const index::InstanceRecord& record,
                                           const storage::PublishedFile& file, bool shared);
  /// One syncfs per instance can make its file and index row durable (ADR 012): storage.fsync
  /// is on, the index is a local file on the storage file system, duplicates are not
  /// overwritten.
  bool shared_flush() const { return shared_flush_; }
  /// Whether an instance takes the shared flush: shared_flush(), and no other store of its
  /// association was in progress when it arrived (with a pipelining sender flushes overlap, and
  /// concurrent syncfs calls queue behind one another; ADR 013).
  bool takes_shared_flush(const dicom::StoreRequest& request) const {
    return shared_flush_ && !request.overlapped;
  }
  /// A duplicate that keep-first or reject would not store: if the copy the index names is
  /// missing or has the wrong size, `file` (this copy, published) is flushed and replaces it in
  /// the index (true), so "already stored" stays true. false: the kept copy is there, or cannot
  /// be checked (logged). An error: the copy is lost and replacing it failed.
  core::Result<bool> replace_lost_copy(const index::InstanceRecord& record,
                                       const storage::PublishedFile& file);
  /// A shared flush failed: every instance is refused until a restart, and files are left for
  /// the start-up checks (a row may name them).
  bool flush_failed() const { return flush_failed_; }
  /// Whether the last check found the file system below storage.min_free_mb.
  bool below_reserve() const { return below_reserve_; }
  /// kResourceExhausted while the data directory's file system is below storage.min_free_mb
  /// (one statvfs, as each instance begins); the crossings are logged.
  core::Status check_reserve();
  /// kResourceExhausted below half the reserve: an instance being received gives up (checked
  /// every few MiB, so that large or many concurrent instances cannot eat the whole reserve).
  core::Status check_reserve_floor();

 private:
  storage::Store& store_;
  index::Index& index_;
  config::DuplicatePolicy duplicates_;
  IngestCounters counters_;
  EnqueuedCallback on_enqueued_;
  mutable std::mutex routing_mu_;  // guards routing_ (copied out, never used under the lock)
  std::shared_ptr<const queue::RoutingTable> routing_;
  const bool shared_flush_;
  std::atomic<bool> flush_failed_{false};
  const std::uint64_t min_free_bytes_;
  std::atomic<bool> below_reserve_{false};
  /// kResourceExhausted (`why`) while free space is below `floor`; logs the crossings (the way
  /// back only when `may_clear`: the floor while receiving is below the reserve itself).
  core::Status check_free_space(std::uint64_t floor, bool may_clear, const char* why);
  using Committer = core::Batcher<const index::InstanceRecord*, core::Result<index::InsertResult>>;
  Committer committer_;            ///< flushed commits (after the file's own flush)
  Committer unflushed_committer_;  ///< shared flush: committed unflushed, then one syncfs

  /// One group's transaction: flushed (synchronous=FULL) or unflushed with markers (ADR 012).
  void commit_group(const std::vector<Committer::Slot*>& batch, bool flushed);
  /// After an unflushed commit: syncfs through the file's descriptor, then the instance's own
  /// marker is confirmed.
  core::Result<index::InsertResult> flush_shared(index::InsertResult inserted,
                                                 const storage::PublishedFile& file);
};

}  // namespace gw::app
