#pragma once
/// `dicom-gw queue list|retry|delete`: the operator's view of the outbox (index/outbox.h).
/// It opens the index alone, never the data directory's lock, so it runs next to a live
/// gateway: SQLite's WAL lets both read, and the busy timeout serializes their writes.
/// Exit codes: 0 done, 1 an id was not found or is in flight (or the index failed),
/// 2 usage or configuration error.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "index/index.h"

namespace gw::app {

struct QueueListArgs {
  std::filesystem::path config;
  std::string state;        ///< a state name (index::to_string); "" = every state
  std::string destination;  ///< "" = every destination
  std::int64_t limit = 100;
  bool json = false;  ///< a JSON array of the rows instead of the summary and table
};

struct QueueRetryArgs {
  std::filesystem::path config;
  std::vector<std::int64_t> ids;
  bool dead = false;        ///< every dead row (of `destination` when set) instead of `ids`
  std::string destination;  ///< with `dead` only
};

struct QueueDeleteArgs {
  std::filesystem::path config;
  std::vector<std::int64_t> ids;
};

/// Load the configuration, open its index and run the command; output on stdout/stderr.
int run_queue_list(const QueueListArgs& args);
int run_queue_retry(const QueueRetryArgs& args);
int run_queue_delete(const QueueDeleteArgs& args);

/// The commands on an open index (what tests call). `now_ms`: Unix epoch milliseconds.
int queue_list(index::Index& index, const QueueListArgs& args, std::int64_t now_ms,
               std::ostream& out, std::ostream& err);
int queue_retry(index::Index& index, const QueueRetryArgs& args, std::int64_t now_ms,
                std::ostream& out, std::ostream& err);
int queue_delete(index::Index& index, const QueueDeleteArgs& args, std::int64_t now_ms,
                 std::ostream& out, std::ostream& err);

}  // namespace gw::app
