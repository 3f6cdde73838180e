#include "queue/outbox_writer.h"

#include <chrono>
#include <memory>
#include <utility>

#include "core/clock.h"
#include "core/log.h"

namespace gw::queue {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

}  // namespace

void OutboxWriter::push(std::int64_t id, Decision decision) {
  pending_.push_back({id, std::move(decision)});
  if (!writing_) start_write();
}

asio::awaitable<void> OutboxWriter::flush() {
  while (writing_ || !pending_.empty()) {
    const auto seen = done_.generation();
    if (!writing_ && !pending_.empty()) start_write();
    co_await done_.wait(seen);
  }
}

void OutboxWriter::start_write() {
  writing_ = true;
  auto batch = std::make_shared<std::vector<Update>>(std::move(pending_));
  pending_.clear();
  asio::post(pool_, [this, batch]() {
    for (const auto& u : *batch) write(u);
    asio::post(strand_, [this]() {
      writing_ = false;
      if (!pending_.empty()) {
        start_write();
      } else {
        done_.notify_all();
      }
    });
  });
}

void OutboxWriter::write(const Update& u) {
  const auto now = core::wall_clock_ms();
  core::Status st;
  switch (u.decision.action) {
    case Decision::Action::kComplete:
      st = index_.complete_outbox(u.id, owner_, u.decision.result, now);
      break;
    case Decision::Action::kReschedule:
      st = index_.reschedule_outbox(u.id, owner_, u.decision.next_attempt_at_ms, u.decision.result,
                                    now);
      break;
    case Decision::Action::kFail:
      st = index_.fail_outbox(u.id, owner_, u.decision.result, now);
      break;
  }
  if (!st.ok()) {
    log()->warn("event=outbox_update_failed destination={} outbox_id={} reason=\"{}\"",
                destination_, u.id, st.error().message);
  }
}

}  // namespace gw::queue
