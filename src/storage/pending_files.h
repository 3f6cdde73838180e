#pragma once
/// The files of this run that may be in storage/ without an index row that the sender was
/// answered for: from Store::begin() until the caller has indexed the file or removed it. The
/// oldest one bounds Store::checkpoint(), so the recovery after a crash looks at the files of
/// the last checkpoint interval, not at every file since the run started.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace gw::storage {

/// Always owned by a shared_ptr: a ticket keeps its set alive.
class PendingFiles : public std::enable_shared_from_this<PendingFiles> {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  /// One file's place in the set; releases it when destroyed. Move-only.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { release(); }

    /// The file is indexed (its row committed, durably) or removed.
    void release() noexcept;
    /// Whether the file has a row is unknown: it stays pending until the process ends (see
    /// Store::keep_for_recovery, which also makes the next start check it).
    void keep() noexcept { owner_.reset(); }

   private:
    friend class PendingFiles;
    Ticket(std::shared_ptr<PendingFiles> owner, std::uint64_t id)
        : owner_(std::move(owner)), id_(id) {}
    std::shared_ptr<PendingFiles> owner_;
    std::uint64_t id_ = 0;
  };

  /// The clock the kernel stamps file times with (coarse: it may lag the precise clock by a
  /// tick), so that a time read before a file is written is not later than the file's mtime.
  static TimePoint file_time_now();

  /// A file begun at `started` (before its first byte is written, so before its mtime).
  Ticket add(TimePoint started);
  /// When the oldest pending file was begun; nullopt when none is pending.
  std::optional<TimePoint> oldest() const;
  std::size_t size() const;

 private:
  void remove(std::uint64_t id) noexcept;

  mutable std::mutex mu_;
  std::map<std::uint64_t, TimePoint> pending_;  // by id; begin times are in id order but for
                                                // clock steps, so oldest() looks at all of them
  std::uint64_t next_id_ = 1;
};

}  // namespace gw::storage
