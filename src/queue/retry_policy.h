#pragma once
/// The retry policy: how one delivery attempt ended (classification) and what happens to the
/// outbox row next (decision). Pure functions, so the whole table is unit-tested.
///
/// Classification, in short:
///  - DIMSE 0x0000 delivered; 0x0001 and 0xBxxx delivered with a warning; 0x0111 (duplicate SOP
///    instance) delivered with a warning too: delivery is at-least-once, so after a crash the
///    destination may already hold what we resend, and dead-lettering that would be wrong.
///  - 0xA7xx (out of resources) transient; 0xA9xx, 0xCxxx, 0x0122, 0x0124 and every other failure
///    permanent.
///  - Connection refused/reset, timeouts, TLS failures (unknown CA, host name mismatch: they need
///    a config fix, so the items wait), unreadable TLS files, aborts, protocol errors: transient.
///  - A-ASSOCIATE-RJ transient: transient. A-ASSOCIATE-RJ *permanent* (calling AE not
///    recognized, …) is transient for the queue too, but opens the circuit breaker at once: the
///    usual cause is a PACS that has not been told about the gateway yet, and dead-lettering
///    every queued instance the minute before the PACS admin adds the AE title helps nobody.
///    The destination is paused and probed; the items flow once the PACS accepts us, or die by
///    retry.max_attempts / retry.max_age like any other transient failure.
///  - The destination accepted no presentation context for an item's (SOP class, transfer
///    syntax): that item is permanent ("… no transcoding").
///
/// Back-off: "equal jitter". The wait before attempt n+1 (n = attempts so far) is drawn
/// uniformly from [b/2, b] with b = min(initial_backoff * 2^(n-1), max_backoff). Full jitter
/// ([0, b]) would sometimes retry at once, spending retry.max_attempts on an outage far faster
/// than the configured back-off suggests; with a floor of b/2, each wait is at least as long as
/// the one before (until the cap), so the back-off an operator sees in the queue's next-attempt
/// times grows, and the attempts still spread out instead of arriving in lock-step.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/error.h"
#include "dicom/pdu.h"
#include "index/outbox.h"

namespace gw::queue {

enum class Outcome {
  kDelivered,
  kDeliveredWithWarning,
  kTransient,  ///< try again later (back-off), dead after retry.max_attempts / max_age
  kPermanent,  ///< dead now
};

std::string_view to_string(Outcome outcome);

/// How one attempt ended.
struct Classification {
  Outcome outcome = Outcome::kTransient;
  int status = -1;     ///< the DIMSE status; -1 when there was none (connection failure)
  std::string reason;  ///< plain words, no patient data
  /// A transient failure of association set-up or transfer: counts toward the circuit breaker.
  bool counts_for_breaker = false;
  /// Opens the circuit breaker at once (the destination refused us permanently).
  bool opens_breaker = false;
  /// The stored file was not there (kNotFound). With storage.duplicates: overwrite that is what
  /// a row in flight finds when its instance was overwritten meanwhile (ingest removes the
  /// replaced file): the forwarder asks the index before dead-lettering it (Forwarder::finish).
  bool file_missing = false;
};

/// A C-STORE response status (and the destination's error comment, if any).
Classification classify_status(std::uint16_t status, std::string_view error_comment = {});

/// A failure to open an association or to complete a transfer on it (connect, TLS, A-ASSOCIATE,
/// lost connection, timeout). `rejection`: the A-ASSOCIATE-RJ, when that was the cause.
Classification classify_association_failure(
    const core::Error& error, const std::optional<dicom::AssociateRj>& rejection = std::nullopt);

/// The destination accepted no presentation context for this SOP class in this transfer syntax.
Classification not_accepted(std::string_view sop_class_uid, std::string_view transfer_syntax_uid);

/// The rows a worker has not sent yet when it finds the destination paused (circuit breaker):
/// they wait like rows never claimed. `last`, the classification of the worker's latest
/// response, is kept when transient (it may be what opened the breaker). Anything else (none;
/// a delivery; a permanent refusal of that one instance) says nothing about the other rows:
/// they wait transiently, for "destination paused: <pause_reason>".
Classification paused_destination(const std::optional<Classification>& last,
                                  std::string_view pause_reason);

/// The stored file of an outbox row cannot be read or is not a Part 10 file.
Classification unreadable_file(std::string_view why);
/// The same from the error: permanent, except a file whose encryption key is not configured
/// (kConfig, ADR 010), which waits for the operator to restore the key like any transient
/// failure (without counting toward the circuit breaker). A file that failed authentication
/// (kDataLoss: corrupt or altered) is permanent: it is never forwarded. A missing file
/// (kNotFound) is permanent with `file_missing` set.
Classification unreadable_file(const core::Error& error);

/// The stored file does not match the content digest recorded when it was received (changed
/// on disk: bit rot, an edit; send_batch.h check_digest): permanent (the file will not heal),
/// and, like any fault of our own file, not counted toward the circuit breaker.
/// `storage_path`: relative to data_dir; `reason` is kDigestMismatch's words.
Classification digest_mismatch(std::string_view storage_path, std::string_view reason);

/// A uniform draw from [0, 1) (injected so tests can pin the jitter).
using Random = std::function<double()>;

/// The wait before the next attempt of a row that has had `attempts` attempts (>= 1).
std::chrono::milliseconds backoff(const config::Retry& retry, int attempts, const Random& random);

/// What to do with a claimed row after an attempt.
struct Decision {
  enum class Action { kComplete, kReschedule, kFail };
  Action action = Action::kFail;
  std::int64_t next_attempt_at_ms = 0;  ///< kReschedule only
  index::OutboxResult result;           ///< status, warning flag and reason for the row
};

/// Delivered -> complete; permanent -> fail; transient -> reschedule after backoff(), or fail
/// with "gave up after N attempts over D: <reason>" once the row has had retry.max_attempts
/// attempts or is retry.max_age old (counted from its last retry by an operator, retried_at_ms,
/// else from when it was queued, created_at_ms). The next attempt is never scheduled past
/// max_age, so the last one happens at the deadline.
Decision decide(const Classification& classification, const index::OutboxItem& item,
                const config::Retry& retry, std::int64_t now_ms, const Random& random);

/// A row in flight whose stored file is gone because its instance was overwritten meanwhile,
/// and row `newer_id` (queued by that overwrite) sends the new version: this one is done
/// (Index::newer_outbox_row).
Decision superseded(std::int64_t newer_id);
/// The same without a newer row (the new version is not routed to this destination): the row
/// sends the instance's current file, due now; the attempt was not the destination's fault.
Decision replaced_meanwhile(std::int64_t now_ms);

/// "45s", "3m20s", "2h5m", "3d4h" (for reasons and logs).
std::string format_duration(std::chrono::milliseconds d);

}  // namespace gw::queue
