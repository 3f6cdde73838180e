#pragma once
/// The outbox: one row per (instance, destination), written in the same transaction as the
/// instance row, so an acknowledged instance is never without its routing. Forwarders claim due
/// rows with a lease, and report each one delivered, to be retried later, or dead. A lease that
/// expires (the node died, the process was killed) makes the row claimable again, so delivery is
/// at-least-once with duplicates limited to what was in flight.
///
/// Every update of a claimed row names the lease owner; when the lease was lost (expired and
/// claimed by someone else) the update is refused with kConflict and changes nothing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::index {

enum class OutboxState {
  kPending,    ///< waiting for its next attempt (next_attempt_at_ms)
  kInFlight,   ///< claimed by lease_owner until lease_expires_at_ms
  kDelivered,  ///< the destination answered success (or a warning: `warning` is set), or the
               ///< row was superseded: its instance was overwritten while it was in flight and
               ///< a newer row sends the new version (last_status -1, last_error says so)
  kDead,       ///< permanent failure, or retries exhausted; kept with the reason
};

/// "pending" | "in_flight" | "delivered" | "dead" (the CLI's and the API's spelling).
std::string_view to_string(OutboxState state);
std::optional<OutboxState> outbox_state_from_string(std::string_view text);

struct OutboxItem {
  std::int64_t id = 0;
  std::string destination;
  // The instance, as the forwarder needs it (joined from the instance row).
  std::string sop_instance_uid;
  std::string sop_class_uid;
  std::string transfer_syntax_uid;
  std::string study_instance_uid;
  std::string storage_path;  ///< relative to data_dir
  std::int64_t size_bytes = 0;
  /// The stored file's content digest ("xxh128:<hex>", storage/content_digest.h; "sha256:<hex>"
  /// on rows from before ADR 008; may be empty): the forwarder checks the bytes it sends against
  /// it (queue/send_batch.h).
  std::string digest;
  // Delivery state.
  OutboxState state = OutboxState::kPending;
  int attempts = 0;  ///< claims so far (a claim counts as an attempt)
  std::int64_t created_at_ms = 0;
  /// When an operator last retried it (Index::retry_outbox); 0: never. retry.max_age counts
  /// from here when set, else from created_at_ms.
  std::int64_t retried_at_ms = 0;
  std::int64_t next_attempt_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::string lease_owner;               ///< kInFlight only
  std::int64_t lease_expires_at_ms = 0;  ///< kInFlight only
  int last_status = -1;                  ///< last DIMSE status from the destination; -1 = none
  std::string last_error;                ///< plain words, no patient data
  bool warning = false;                  ///< delivered with a warning status (0xBxxx, 0x0001)

  bool operator==(const OutboxItem&) const = default;
};

/// Filters for list_outbox; empty/nullopt = no filter. Oldest first (by id).
struct OutboxQuery {
  std::string destination;
  std::optional<OutboxState> state;
  std::int64_t limit = 100;
  std::int64_t offset = 0;
};

/// Rows per state for one destination (/status, /metrics, `queue list`).
struct QueueDepth {
  std::string destination;
  std::int64_t pending = 0;
  std::int64_t in_flight = 0;
  std::int64_t delivered = 0;
  std::int64_t dead = 0;
  std::int64_t oldest_pending_created_at_ms = 0;  ///< 0 when nothing is pending or in flight
};

/// How a claimed row ended (complete_outbox).
struct OutboxResult {
  int status = 0;        ///< the DIMSE status; -1 when there was none (connection failure)
  bool warning = false;  ///< delivered with a warning
  std::string comment;   ///< destination's error comment or our reason
};

/// One claimed row's end, for Index::finish_outbox_rows.
struct OutboxFinish {
  std::int64_t id = 0;
  OutboxState to = OutboxState::kDelivered;        ///< kDelivered, kPending (rescheduled) or kDead
  std::optional<std::int64_t> next_attempt_at_ms;  ///< kPending only
  OutboxResult result;
};

}  // namespace gw::index
