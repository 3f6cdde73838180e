#pragma once
/// AuditWriter: audit rows written by one background thread, for callers that must not wait for
/// the database (the DICOM I/O threads: association accepted/rejected, per-study summaries).
///
/// The queue is bounded (spdlog's habit): when it is full the row is dropped, counted
/// (dicom_gw_audit_dropped_total) and a warning is logged once per overflow; enqueue() never
/// blocks on the index and never fails the caller. Rows whose write fails are counted and
/// logged, not retried: the index is what is failing.
///
/// Writes made by API handlers and CLI commands do not come here: they go into the action's own
/// transaction (index/auth.h).
///
/// Thread-safe. stop() (or the destructor) writes what is queued, then ends the thread; the
/// index must outlive the writer.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "index/index.h"

namespace gw::audit {

struct WriterCounts {
  std::uint64_t written = 0;  ///< rows the index accepted
  std::uint64_t dropped = 0;  ///< refused by enqueue(): queue full or writer stopped
  std::uint64_t failed = 0;   ///< the index refused them (logged)
  std::uint64_t queued = 0;   ///< waiting now
};

class AuditWriter {
 public:
  static constexpr std::size_t kDefaultCapacity = 4096;

  explicit AuditWriter(index::Index& index, std::size_t capacity = kDefaultCapacity);
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;
  ~AuditWriter();

  /// Queues a row; false (and counted as dropped) when the queue is full or the writer stopped.
  /// Never blocks on the index: a mutex held for a push only.
  bool enqueue(index::AuditEvent event);
  /// Waits until every row queued before the call has been written (or failed). For tests and
  /// the shutdown sequence; never call it from an I/O thread.
  void flush();
  /// Writes what is queued, then ends the thread. Idempotent; enqueue() drops afterwards.
  void stop();

  WriterCounts counts() const;
  /// `hook` runs on the writer's thread after each row the index accepted (it wakes the syslog
  /// exporter, audit/syslog_export.h). It must be quick and must not throw; whatever it refers
  /// to must outlive the writer's thread (stop()).
  void on_written(std::function<void()> hook);

 private:
  void run();

  index::Index& index_;
  const std::size_t capacity_;
  // guards queue_, accepted_, done_, stopping_, overflowing_, finished_, on_written_
  mutable std::mutex mu_;
  std::condition_variable wake_;     ///< the thread: work or stop
  std::condition_variable done_cv_;  ///< flush(): done_ moved
  std::deque<index::AuditEvent> queue_;
  std::uint64_t accepted_ = 0;  ///< rows ever queued
  std::uint64_t done_ = 0;      ///< rows ever taken and written (or failed)
  bool stopping_ = false;
  bool overflowing_ = false;          ///< dropping since the last successful enqueue (warned once)
  bool finished_ = false;             ///< the thread has written everything and ended
  std::function<void()> on_written_;  // guarded by mu_; copied by the thread before use
  std::mutex join_mu_;                // serialises stop()'s join (stop() may race the destructor's)
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace gw::audit
