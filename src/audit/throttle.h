#pragma once
/// AuditThrottle: repeated events of one key (failed logins of one user from one address)
/// become at most one audit row per key and window, carrying how many attempts it stands for.
/// A brute force then costs the audit table a row a minute, not a row a guess, and loses no
/// count.
///
/// The first event of a key is written at once ("attempts": 1). Later ones within the key's
/// window are folded: counted, the latest kept as the row's template. The folded attempts are
/// written as one row ("attempts": N, "reasons": {reason: count}) when the window has ended —
/// by take_due(), which the caller runs on its next event of any key, or together with the
/// first event of the key's next window (one row, not two) — and by take_all() at shutdown.
/// The table is bounded: when full, ended windows go first, then the oldest (their folded
/// attempts are returned as rows, never lost).
///
/// Pure bookkeeping: the caller writes the rows it is given and supplies the times (event
/// at_ms), so tests use a fake clock. Thread-safe (one mutex).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "index/auth.h"

namespace gw::audit {

class AuditThrottle {
 public:
  explicit AuditThrottle(std::chrono::milliseconds window = std::chrono::minutes(1),
                         std::size_t max_keys = 10000);

  /// `event` happened for `key` at event.at_ms (details: a JSON object; its "reason", when
  /// present, is counted). Returns the rows to write now: `event` itself when it opens a new
  /// window of its key, with "attempts" (1 + what the key's ended window had folded), nothing
  /// when it is folded, plus the rows of keys evicted to stay bounded.
  std::vector<index::AuditEvent> record(const std::string& key, index::AuditEvent event);
  /// The rows of keys whose window ended by `now_ms` with attempts folded into it; those keys
  /// are forgotten (their next event is written at once).
  std::vector<index::AuditEvent> take_due(std::int64_t now_ms);
  /// Every folded attempt as rows, now; forgets every key (shutdown).
  std::vector<index::AuditEvent> take_all();
  /// Keys held (tests: bounded).
  std::size_t size() const;

 private:
  struct Entry {
    std::int64_t window_start_ms = 0;
    std::int64_t folded = 0;                      ///< attempts since the row that opened the window
    std::map<std::string, std::int64_t> reasons;  ///< of the folded attempts
    index::AuditEvent last;                       ///< the latest folded attempt
  };
  using Table = std::map<std::string, Entry>;

  bool ended(const Entry& e, std::int64_t now_ms) const;
  /// Makes room for one more key; rows of evicted keys with folded attempts go to `out`.
  void make_room_locked(std::int64_t now_ms, std::vector<index::AuditEvent>& out);

  const std::int64_t window_ms_;
  const std::size_t max_keys_;
  mutable std::mutex mu_;  // guards table_
  Table table_;
};

}  // namespace gw::audit
