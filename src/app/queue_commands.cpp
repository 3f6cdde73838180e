#include "app/queue_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/admin_index.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"

namespace gw::app {

namespace {

using index::OutboxItem;
using index::OutboxState;

constexpr std::int64_t kNoStatus = -1;

std::string local_time(std::int64_t epoch_ms) {
  const std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  if (::localtime_r(&t, &tm) == nullptr) return std::to_string(epoch_ms);
  char text[32];
  return std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm) == 0 ? std::to_string(epoch_ms)
                                                                         : std::string(text);
}

std::string status_hex(int status) {
  return status == kNoStatus ? "-" : fmt::format("0x{:04X}", static_cast<unsigned>(status));
}

/// A table cell on one line: a peer's error comment may hold control characters.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text.empty() ? "-" : text;
}

std::string next_attempt(const OutboxItem& item, std::int64_t now_ms) {
  if (item.state != OutboxState::kPending) return "-";
  return item.next_attempt_at_ms <= now_ms ? "now" : local_time(item.next_attempt_at_ms);
}

/// Columns padded to their widest cell; the last one is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

nlohmann::ordered_json to_json(const OutboxItem& item) {
  return {
      {"id", item.id},
      {"destination", item.destination},
      {"state", index::to_string(item.state)},
      {"attempts", item.attempts},
      {"created_at_ms", item.created_at_ms},
      {"next_attempt_at_ms", item.next_attempt_at_ms},
      {"updated_at_ms", item.updated_at_ms},
      {"lease_owner", item.lease_owner},
      {"lease_expires_at_ms", item.lease_expires_at_ms},
      {"sop_instance_uid", item.sop_instance_uid},
      {"sop_class_uid", item.sop_class_uid},
      {"transfer_syntax_uid", item.transfer_syntax_uid},
      {"study_instance_uid", item.study_instance_uid},
      {"storage_path", item.storage_path},
      {"size_bytes", item.size_bytes},
      {"last_status", item.last_status == kNoStatus ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(item.last_status)},
      {"last_error", item.last_error},
      {"warning", item.warning},
  };
}

/// The states `queue list --state` selects ("" = every state), or nullopt for a word it does
/// not know.
std::optional<std::vector<OutboxState>> states_of(const std::string& state) {
  if (state.empty()) {
    return std::vector{OutboxState::kPending, OutboxState::kInFlight, OutboxState::kDelivered,
                       OutboxState::kDead};
  }
  if (auto one = index::outbox_state_from_string(state)) return std::vector{*one};
  return std::nullopt;
}

std::optional<std::string> list_usage_error(const QueueListArgs& args) {
  if (!states_of(args.state)) {
    return "--state " + args.state + ": use pending, in_flight, delivered or dead";
  }
  if (args.limit < 1) return std::string("--limit must be at least 1");
  return std::nullopt;
}

std::optional<std::string> retry_usage_error(const QueueRetryArgs& args) {
  if (args.dead && !args.ids.empty()) return std::string("give IDs or --dead, not both");
  if (!args.dead && args.ids.empty()) return std::string("give the IDs to retry, or --dead");
  if (!args.dead && !args.destination.empty()) return std::string("--destination needs --dead");
  return std::nullopt;
}

std::optional<std::string> delete_usage_error(const QueueDeleteArgs& args) {
  if (args.ids.empty()) return std::string("give the IDs to delete");
  return std::nullopt;
}

int usage_error(const std::string& message, std::ostream& err) {
  err << "error: " << message << '\n';
  return 2;
}

/// The oldest `limit` rows in any of `states`. Each state is read in id order from its own
/// index range and the ranges merged: one query over every state would sort a destination's
/// whole history to return its first rows.
core::Result<std::vector<OutboxItem>> list_rows(index::Index& index, const QueueListArgs& args,
                                                const std::vector<OutboxState>& states) {
  std::vector<OutboxItem> rows;
  for (auto state : states) {
    index::OutboxQuery q;
    q.destination = args.destination;
    q.state = state;
    q.limit = args.limit;
    GW_ASSIGN_OR_RETURN(auto some, index.list_outbox(q));
    rows.insert(rows.end(), std::make_move_iterator(some.begin()),
                std::make_move_iterator(some.end()));
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  if (rows.size() > static_cast<std::size_t>(args.limit)) {
    rows.resize(static_cast<std::size_t>(args.limit));
  }
  return rows;
}

std::int64_t count_of(const index::QueueDepth& d, OutboxState state) {
  switch (state) {
    case OutboxState::kPending:
      return d.pending;
    case OutboxState::kInFlight:
      return d.in_flight;
    case OutboxState::kDelivered:
      return d.delivered;
    case OutboxState::kDead:
      return d.dead;
  }
  return 0;
}

/// One line for an id the operation refused; returns its exit code.
int report_refused(std::int64_t id, const core::Error& e, const char* verb, std::ostream& err) {
  if (e.code == core::ErrorCode::kNotFound) {
    err << id << ": no such queue entry\n";
  } else if (e.code == core::ErrorCode::kConflict) {
    err << id << ": being sent right now; " << verb << " it once that attempt ends\n";
  } else {
    err << id << ": " << e.message << '\n';
  }
  return core::exit_code(e.code);
}

}  // namespace

int queue_list(index::Index& index, const QueueListArgs& args, std::int64_t now_ms,
               std::ostream& out, std::ostream& err) {
  if (auto usage = list_usage_error(args)) return usage_error(*usage, err);
  const auto states = *states_of(args.state);
  auto rows = list_rows(index, args, states);
  if (!rows.ok()) return fail(rows.error(), err);

  if (args.json) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& item : *rows) array.push_back(to_json(item));
    out << array.dump(2) << '\n';
    return 0;
  }

  auto depths = index.queue_depths();
  if (!depths.ok()) return fail(depths.error(), err);
  std::int64_t matching = 0;
  bool any_destination = false;
  for (const auto& d : *depths) {
    if (!args.destination.empty() && d.destination != args.destination) continue;
    any_destination = true;
    std::string line = fmt::format("{}: {} pending, {} in flight, {} delivered, {} dead",
                                   d.destination, d.pending, d.in_flight, d.delivered, d.dead);
    if (d.pending + d.in_flight > 0) {
      line += ", oldest waiting since " + local_time(d.oldest_pending_created_at_ms);
    }
    out << line << '\n';
    for (auto state : states) matching += count_of(d, state);
  }
  if (!any_destination) {
    out << (args.destination.empty() ? std::string("the queue is empty")
                                     : "nothing queued for " + args.destination)
        << '\n';
    return 0;
  }
  out << '\n';
  if (rows->empty()) {
    out << "no " << (args.state.empty() ? "" : args.state + " ") << "entries\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table = {{"ID", "DESTINATION", "STATE", "ATTEMPTS",
                                                  "NEXT ATTEMPT", "SOP INSTANCE UID", "STATUS",
                                                  "LAST ERROR"}};
  for (const auto& item : *rows) {
    std::string state(index::to_string(item.state));
    if (item.state == OutboxState::kDelivered && item.warning) state += " (warning)";
    table.push_back({std::to_string(item.id), item.destination, state,
                     std::to_string(item.attempts), next_attempt(item, now_ms),
                     item.sop_instance_uid, status_hex(item.last_status),
                     one_line(item.last_error)});
  }
  print_table(table, out);
  if (matching > static_cast<std::int64_t>(rows->size())) {
    out << "(the oldest " << rows->size() << " of " << matching << "; see more with --limit)\n";
  }
  return 0;
}

int queue_retry(index::Index& index, const QueueRetryArgs& args, std::int64_t now_ms,
                std::ostream& out, std::ostream& err) {
  if (auto usage = retry_usage_error(args)) return usage_error(*usage, err);
  if (args.dead) {
    const auto event = cli_event("queue.retry", "queue:dead",
                                 {{"destination", args.destination}, {"state", "dead"}}, now_ms);
    // Without a destination the index leaves the rows of deleted destinations dead (nobody
    // would send them): what was dead before and was not retried.
    const auto dead_rows = [&index]() -> std::int64_t {
      auto depths = index.queue_depths();
      std::int64_t dead = 0;
      if (depths.ok()) {
        for (const auto& d : *depths) dead += d.dead;
      }
      return dead;
    };
    const std::int64_t dead_before = args.destination.empty() ? dead_rows() : 0;
    auto n = index.retry_dead_outbox(args.destination, now_ms, &event);
    if (!n.ok()) return fail(n.error(), err);
    const std::int64_t left = std::max<std::int64_t>(0, dead_before - *n);
    const std::string where = args.destination.empty() ? "" : " to " + args.destination;
    if (*n > 0) {
      out << "queued " << *n << " dead deliver" << (*n == 1 ? "y" : "ies") << where
          << " again, due now\n";
    } else if (left == 0) {
      out << "no dead deliveries" << where << '\n';
    }
    if (left > 0) {
      out << "left " << left << " dead deliver" << (left == 1 ? "y" : "ies")
          << " of deleted destinations dead; retry them with --destination once the "
             "destination exists again\n";
    }
    return 0;
  }
  int rc = 0;
  for (auto id : args.ids) {
    const auto event = cli_event("queue.retry", "queue:" + std::to_string(id), {}, now_ms);
    if (auto st = index.retry_outbox(id, now_ms, &event); !st.ok()) {
      rc = std::max(rc, report_refused(id, st.error(), "retry", err));
    } else {
      out << id << ": queued again, due now\n";
    }
  }
  return rc;
}

int queue_delete(index::Index& index, const QueueDeleteArgs& args, std::int64_t now_ms,
                 std::ostream& out, std::ostream& err) {
  if (auto usage = delete_usage_error(args)) return usage_error(*usage, err);
  int rc = 0;
  for (auto id : args.ids) {
    const auto event = cli_event("queue.delete", "queue:" + std::to_string(id), {}, now_ms);
    if (auto st = index.delete_outbox(id, now_ms, &event); !st.ok()) {
      rc = std::max(rc, report_refused(id, st.error(), "delete", err));
    } else {
      out << id << ": deleted\n";
    }
  }
  return rc;
}

// Usage is checked before the configuration is read: a typo should not be reported as a
// missing /etc/dicom-gw/config.yaml.

int run_queue_list(const QueueListArgs& args) {
  if (auto usage = list_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "queue", [&](index::Index& index) {
    return queue_list(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

int run_queue_retry(const QueueRetryArgs& args) {
  if (auto usage = retry_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "queue", [&](index::Index& index) {
    return queue_retry(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

int run_queue_delete(const QueueDeleteArgs& args) {
  if (auto usage = delete_usage_error(args)) return usage_error(*usage, std::cerr);
  return with_configured_index(args.config, "queue", [&](index::Index& index) {
    return queue_delete(index, args, core::wall_clock_ms(), std::cout, std::cerr);
  });
}

}  // namespace gw::app
