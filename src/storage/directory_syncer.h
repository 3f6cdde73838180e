#pragma once
/// DirectorySyncer: one background thread that fsyncs directories on request, in batches.
///
/// A new file's directory entry must be durable before the index row that names it commits.
/// Doing that fsync on the instance's own thread puts it in series with the file's fdatasync;
/// here it runs alongside (the caller fdatasyncs its file while this thread fsyncs the
/// directory), and every directory requested while one batch is being synced is synced once in
/// the next batch (group commit), so concurrent associations share the flushes.

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/result.h"

namespace gw::storage {

class DirectorySyncer {
 public:
  /// `enabled` false (storage.fsync: false): requests complete at once, no thread is started.
  explicit DirectorySyncer(bool enabled);
  ~DirectorySyncer();  ///< syncs what is pending, then stops
  DirectorySyncer(const DirectorySyncer&) = delete;
  DirectorySyncer& operator=(const DirectorySyncer&) = delete;

  class Ticket;
  /// Queues `dir` for the next batch and returns at once.
  Ticket request(std::filesystem::path dir);
  /// Blocks until the ticket's batch is done; the fsync's outcome for that directory.
  core::Status wait(const Ticket& ticket);

  /// One request's outcome, filled in by the syncer thread.
  class Ticket {
   private:
    friend class DirectorySyncer;
    struct Slot {
      bool done = false;
      core::Status status;
    };
    std::shared_ptr<Slot> slot_;
  };

 private:
  void run();

  const bool enabled_;
  std::mutex mu_;  // guards pending_, stopping_ and every Slot
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  /// The next batch: each directory once, with everyone waiting for it.
  std::map<std::filesystem::path, std::vector<std::shared_ptr<Ticket::Slot>>> pending_;
  bool stopping_ = false;
  std::thread thread_;  // last: started after everything above exists
};

}  // namespace gw::storage
