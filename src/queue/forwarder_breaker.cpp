// The circuit breaker: consecutive failures pause a destination, a C-ECHO probe resumes it.

#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "dicom/uids.h"
#include "queue/forwarder.h"
#include "queue/forwarder_internal.h"

namespace gw::queue {

using core::ErrorCode;
using core::make_error;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

/// Rows one probe round dead-letters at most (dead_letter_expired_while_paused): a bounded
/// statement; a larger backlog goes over the next rounds.
constexpr std::int64_t kMaxPausedDeadLetters = 1000;

}  // namespace

void Forwarder::note_failure(const Classification& c) {
  if (!c.counts_for_breaker) return;
  const auto failures = ++consecutive_failures_;
  const auto threshold = settings_->forwarding.circuit_breaker_failures;
  if (paused_ || threshold == 0) return;
  if (failures >= threshold || c.opens_breaker) pause(c.reason);
}

void Forwarder::note_success() {
  consecutive_failures_ = 0;
  if (paused_) resume();
}

void Forwarder::pause(const std::string& reason) {
  paused_ = true;
  paused_at_ = SteadyClock::now();
  set_pause_reason(reason);
  const auto interval = settings_->forwarding.probe_interval;
  log()->warn("event=destination_paused destination={} failures={} probe_every={} reason=\"{}\"",
              name_, consecutive_failures_.load(), format_duration(interval), reason);
  wake_.notify_all();  // idle workers release their associations
  if (!probing_) {
    probing_ = true;
    spawn(probe_loop());
  }
}

void Forwarder::resume() {
  paused_ = false;
  consecutive_failures_ = 0;
  set_pause_reason({});
  log()->info("event=destination_reachable destination={} paused_for={}", name_,
              format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(
                  SteadyClock::now() - paused_at_)));
  wake_.notify_all();
}

void Forwarder::set_pause_reason(std::string reason) {
  std::lock_guard lock(reason_mu_);
  pause_reason_ = std::move(reason);
}

std::string Forwarder::pause_reason() const {
  std::lock_guard lock(reason_mu_);
  return pause_reason_;
}

asio::awaitable<void> Forwarder::probe_loop() {
  while (!stopping_ && paused_) {
    const auto seen = control_.generation();
    const auto interval = std::max<SteadyClock::duration>(std::chrono::seconds(1),
                                                          settings_->forwarding.probe_interval);
    co_await control_.wait_until(SteadyClock::now() + interval, seen);
    if (stopping_ || !paused_) break;
    auto st = co_await probe_once();
    if (stopping_ || !paused_) break;
    if (st.ok()) {
      resume();
      break;
    }
    log()->debug("event=probe_failed destination={} reason=\"{}\"", name_, st.error().message);
    set_pause_reason(st.error().message);
    co_await dead_letter_expired_while_paused(st.error().message);
  }
  probing_ = false;
}

asio::awaitable<void> Forwarder::dead_letter_expired_while_paused(const std::string& reason) {
  const auto max_age = settings_->destination.retry.max_age;
  const auto max_age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(max_age).count();
  if (max_age_ms <= 0) co_return;
  const std::int64_t now_ms = core::wall_clock_ms();
  const std::string comment =
      fmt::format("gave up after retry.max_age ({}) while the destination was paused: {}",
                  format_duration(std::chrono::milliseconds(max_age_ms)), reason);
  auto expire = [&]() {
    return index_.dead_letter_expired_outbox(name_, now_ms - max_age_ms, kMaxPausedDeadLetters,
                                             comment, now_ms);
  };
  auto changed = co_await on_pool(expire);
  if (!changed.ok()) {
    log()->warn("event=outbox_update_failed destination={} reason=\"{}\"", name_,
                changed.error().message);
    co_return;
  }
  if (*changed <= 0) co_return;
  counters_.failed += static_cast<std::uint64_t>(*changed);
  counters_.dead += static_cast<std::uint64_t>(*changed);
  // Dead letters need an operator: one line for the round.
  log()->warn("event=dead_letter destination={} rows={} reason=\"{}\"", name_, *changed, comment);
}

asio::awaitable<core::Status> Forwarder::probe_once() {
  auto options = co_await scu_options();
  if (!options.ok()) co_return options.error();
  std::vector<dicom::PresentationContextRq> contexts{
      {1,
       std::string(dicom::kVerificationSopClass),
       {std::string(dicom::kImplicitVrLittleEndian)}}};
  auto assoc = co_await dicom::ScuAssociation::open(strand_, *options, std::move(contexts));
  if (!assoc.ok()) co_return assoc.error();
  auto status = co_await (*assoc)->echo();
  (void)co_await (*assoc)->release();
  // A destination that accepts the association but not Verification is reachable all the same.
  if (!status.ok() && status.error().code == ErrorCode::kUnsupported) co_return core::Status{};
  if (!status.ok()) co_return status.error();
  if (*status != dicom::status::kSuccess) {
    co_return make_error(ErrorCode::kRejected, fmt::format("C-ECHO status 0x{:04X}", *status));
  }
  co_return core::Status{};
}

}  // namespace gw::queue
