#include "queue/retry_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "dicom/uids.h"

namespace gw::queue {

namespace {

/// What a C-STORE status means, in the words of PS3.4 B.2.3 and PS3.7 C.
std::string_view status_meaning(std::uint16_t status) {
  if (status == 0x0000) return "success";
  if (status == 0x0001) return "warning: requested optional attributes not supported";
  if (status == 0xB000) return "warning: coercion of data elements";
  if (status == 0xB006) return "warning: elements discarded";
  if (status == 0xB007) return "warning: data set does not match SOP class";
  if ((status & 0xF000) == 0xB000) return "warning";
  if ((status & 0xFF00) == 0xA700) return "refused: out of resources";
  if ((status & 0xFF00) == 0xA900) return "error: data set does not match SOP class";
  if ((status & 0xF000) == 0xC000) return "error: cannot understand";
  switch (status) {
    case 0x0110:
      return "processing failure";
    case 0x0111:
      return "duplicate SOP instance";
    case 0x0117:
      return "invalid object instance";
    case 0x0122:
      return "SOP class not supported";
    case 0x0124:
      return "not authorized";
    case 0x0210:
      return "duplicate invocation";
    case 0x0211:
      return "unrecognized operation";
    case 0x0212:
      return "mistyped argument";
    case 0x0213:
      return "resource limitation";
    case 0xFE00:
      return "cancelled";
    default:
      return "failure";
  }
}

std::string status_reason(std::uint16_t status, std::string_view comment) {
  std::string out = fmt::format("status 0x{:04X} ({})", status, status_meaning(status));
  if (!comment.empty()) out += fmt::format(": {}", comment);
  return out;
}

}  // namespace

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDelivered:
      return "delivered";
    case Outcome::kDeliveredWithWarning:
      return "delivered_with_warning";
    case Outcome::kTransient:
      return "transient";
    case Outcome::kPermanent:
      return "permanent";
  }
  return "permanent";
}

Classification classify_status(std::uint16_t status, std::string_view error_comment) {
  Classification c;
  c.status = status;
  c.reason = status_reason(status, error_comment);
  if (status == 0x0000) {
    c.outcome = Outcome::kDelivered;
  } else if (status == 0x0001 || (status & 0xF000) == 0xB000 || status == 0x0111) {
    c.outcome = Outcome::kDeliveredWithWarning;
  } else if ((status & 0xFF00) == 0xA700) {
    c.outcome = Outcome::kTransient;
    c.counts_for_breaker = true;  // a destination out of disk space fails every item alike
  } else {
    c.outcome = Outcome::kPermanent;
  }
  return c;
}

Classification classify_association_failure(const core::Error& error,
                                            const std::optional<dicom::AssociateRj>& rejection) {
  Classification c;
  c.outcome = Outcome::kTransient;
  c.reason = error.message;
  c.counts_for_breaker = true;
  if (rejection && rejection->result == dicom::RejectResult::kPermanent) {
    // See the header: a configuration problem at the destination, not a reason to discard.
    c.opens_breaker = true;
  }
  return c;
}

Classification not_accepted(std::string_view sop_class_uid, std::string_view transfer_syntax_uid) {
  const auto* ts = dicom::find_transfer_syntax(transfer_syntax_uid);
  Classification c;
  c.outcome = Outcome::kPermanent;
  c.reason = fmt::format("destination did not accept {} in {}; no transcoding",
                         dicom::sop_class_name(sop_class_uid),
                         ts != nullptr ? std::string(ts->name) : std::string(transfer_syntax_uid));
  return c;
}

Classification paused_destination(const std::optional<Classification>& last,
                                  std::string_view pause_reason) {
  if (last && last->outcome == Outcome::kTransient) return *last;
  Classification c;
  c.outcome = Outcome::kTransient;
  c.reason = fmt::format("destination paused: {}", pause_reason);
  return c;
}

Classification unreadable_file(std::string_view why) {
  Classification c;
  c.outcome = Outcome::kPermanent;
  c.reason = fmt::format("stored file unreadable: {}", why);
  return c;
}

Classification unreadable_file(const core::Error& error) {
  Classification c = unreadable_file(error.message);
  // A missing key (fixed by configuration) or no descriptors or memory left (EMFILE) is not
  // the file's fault: try again later instead of dead-lettering it.
  if (error.code == core::ErrorCode::kConfig || error.code == core::ErrorCode::kResourceExhausted) {
    c.outcome = Outcome::kTransient;
  }
  c.file_missing = error.code == core::ErrorCode::kNotFound;
  return c;
}

Classification digest_mismatch(std::string_view storage_path, std::string_view reason) {
  Classification c;
  c.outcome = Outcome::kPermanent;
  c.reason = fmt::format("{}: {}", storage_path, reason);
  return c;
}

std::chrono::milliseconds backoff(const config::Retry& retry, int attempts, const Random& random) {
  using std::chrono::milliseconds;
  const double initial = static_cast<double>(std::max<std::int64_t>(
      1, std::chrono::duration_cast<milliseconds>(retry.initial_backoff).count()));
  const double cap = std::max(
      initial,
      static_cast<double>(std::chrono::duration_cast<milliseconds>(retry.max_backoff).count()));
  // 2^(attempts-1), computed in floating point and capped before it can overflow.
  const int doublings = std::clamp(attempts - 1, 0, 62);
  const double base = std::min(cap, initial * std::ldexp(1.0, doublings));
  const double r = random ? std::clamp(random(), 0.0, 1.0) : 1.0;
  return milliseconds(static_cast<std::int64_t>(base / 2 + r * (base / 2)));
}

Decision decide(const Classification& classification, const index::OutboxItem& item,
                const config::Retry& retry, std::int64_t now_ms, const Random& random) {
  Decision d;
  d.result.status = classification.status;
  d.result.comment = classification.reason;
  switch (classification.outcome) {
    case Outcome::kDelivered:
      d.action = Decision::Action::kComplete;
      return d;
    case Outcome::kDeliveredWithWarning:
      d.action = Decision::Action::kComplete;
      d.result.warning = true;
      return d;
    case Outcome::kPermanent:
      d.action = Decision::Action::kFail;
      return d;
    case Outcome::kTransient:
      break;
  }
  // The age counts from the operator's last retry, if any: a retried row gets a fresh
  // retry.max_age. A row without a creation time (never written by the index; hand-made rows)
  // has no age.
  const std::int64_t queued_at_ms = std::max(item.created_at_ms, item.retried_at_ms);
  const std::int64_t max_age_ms =
      queued_at_ms > 0
          ? std::chrono::duration_cast<std::chrono::milliseconds>(retry.max_age).count()
          : 0;
  const std::int64_t deadline_ms = queued_at_ms + max_age_ms;
  const bool out_of_attempts =
      retry.max_attempts > 0 && item.attempts >= static_cast<std::int64_t>(retry.max_attempts);
  const bool too_old = max_age_ms > 0 && now_ms >= deadline_ms;
  if (out_of_attempts || too_old) {
    d.action = Decision::Action::kFail;
    d.result.comment = fmt::format(
        "gave up after {} attempt{} over {}: {}", item.attempts, item.attempts == 1 ? "" : "s",
        format_duration(
            std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - queued_at_ms))),
        classification.reason);
    return d;
  }
  d.action = Decision::Action::kReschedule;
  d.next_attempt_at_ms = now_ms + backoff(retry, item.attempts, random).count();
  if (max_age_ms > 0) d.next_attempt_at_ms = std::min(d.next_attempt_at_ms, deadline_ms);
  return d;
}

Decision superseded(std::int64_t newer_id) {
  Decision d;
  d.action = Decision::Action::kComplete;
  d.result.status = -1;  // nothing was sent
  d.result.comment = fmt::format(
      "superseded: the instance was overwritten while this row was in flight; outbox row {} "
      "sends the new version",
      newer_id);
  return d;
}

Decision replaced_meanwhile(std::int64_t now_ms) {
  Decision d;
  d.action = Decision::Action::kReschedule;
  d.next_attempt_at_ms = now_ms;
  d.result.status = -1;
  d.result.comment =
      "the instance was overwritten while this row was in flight: sending its "
      "new version";
  return d;
}

std::string format_duration(std::chrono::milliseconds d) {
  std::int64_t s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (s < 60) {
    if (s == 0 && d.count() > 0) return fmt::format("{}ms", d.count());
    return fmt::format("{}s", s);
  }
  const std::int64_t days = s / 86400;
  const std::int64_t hours = s % 86400 / 3600;
  const std::int64_t minutes = s % 3600 / 60;
  const std::int64_t seconds = s % 60;
  // Two units are enough to read a retry history.
  if (days > 0) return hours > 0 ? fmt::format("{}d{}h", days, hours) : fmt::format("{}d", days);
  if (hours > 0) {
    return minutes > 0 ? fmt::format("{}h{}m", hours, minutes) : fmt::format("{}h", hours);
  }
  return seconds > 0 ? fmt::format("{}m{}s", minutes, seconds) : fmt::format("{}m", minutes);
}

}  // namespace gw::queue
