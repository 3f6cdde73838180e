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
    write(*batch);
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

void OutboxWriter::write(const std::vector<Update>& batch) {
  std::vector<index::OutboxFinish> rows;
  rows.reserve(batch.size());
  for (const auto& u : batch) {
    index::OutboxFinish f;
    f.id = u.id;
    f.result = u.decision.result;
    switch (u.decision.action) {
      case Decision::Action::kComplete:
        f.to = index::OutboxState::kDelivered;
        break;
      case Decision::Action::kReschedule:
        f.to = index::OutboxState::kPending;
        f.next_attempt_at_ms = u.decision.next_attempt_at_ms;
        break;
      case Decision::Action::kFail:
        f.to = index::OutboxState::kDead;
        break;
    }
    rows.push_back(std::move(f));
  }
  // One transaction for the batch: one flush, however many rows finished meanwhile.
  const auto results = index_.finish_outbox_rows(rows, owner_, core::wall_clock_ms());
  for (std::size_t i = 0; i < results.size() && i < batch.size(); ++i) {
    if (results[i].ok()) continue;
    log()->warn("event=outbox_update_failed destination={} outbox_id={} reason=\"{}\"",
                destination_, batch[i].id, results[i].error().message);
  }
}

}  // namespace gw::queue
