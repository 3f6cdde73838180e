#include "storage/directory_syncer.h"

#include <vector>

#include "storage/file_ops.h"

namespace gw::storage {

DirectorySyncer::DirectorySyncer(bool enabled) : enabled_(enabled) {
  if (enabled_) thread_ = std::thread([this]() { run(); });
}

DirectorySyncer::~DirectorySyncer() {
  if (!enabled_) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

DirectorySyncer::Ticket DirectorySyncer::request(std::filesystem::path dir) {
  Ticket ticket;
  ticket.slot_ = std::make_shared<Ticket::Slot>();
  if (!enabled_) {
    ticket.slot_->done = true;
    return ticket;
  }
  {
    std::lock_guard lock(mu_);
    pending_[std::move(dir)].push_back(ticket.slot_);
  }
  work_cv_.notify_one();
  return ticket;
}

core::Status DirectorySyncer::wait(const Ticket& ticket) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&]() { return ticket.slot_->done; });
  return ticket.slot_->status;
}

void DirectorySyncer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&]() { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing left
    auto batch = std::move(pending_);
    pending_.clear();
    lock.unlock();
    std::vector<core::Status> results;
    results.reserve(batch.size());
    for (const auto& entry : batch) results.push_back(fsync_dir(entry.first));
    lock.lock();
    std::size_t i = 0;
    for (auto& entry : batch) {
      for (auto& slot : entry.second) {
        slot->status = results[i];
        slot->done = true;
      }
      ++i;
    }
    done_cv_.notify_all();
  }
}

}  // namespace gw::storage
