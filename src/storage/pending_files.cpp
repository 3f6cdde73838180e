#include "storage/pending_files.h"

#include <algorithm>
#include <ctime>
#include <utility>

namespace gw::storage {

PendingFiles::Ticket::Ticket(Ticket&& other) noexcept
    : owner_(std::move(other.owner_)), id_(other.id_) {}

PendingFiles::Ticket& PendingFiles::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::move(other.owner_);
    id_ = other.id_;
  }
  return *this;
}

void PendingFiles::Ticket::release() noexcept {
  if (owner_) std::exchange(owner_, nullptr)->remove(id_);
}

PendingFiles::TimePoint PendingFiles::file_time_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

PendingFiles::Ticket PendingFiles::add(TimePoint started) {
  std::lock_guard lock(mu_);
  const auto id = next_id_++;
  pending_.emplace(id, started);
  return Ticket(shared_from_this(), id);
}

std::optional<PendingFiles::TimePoint> PendingFiles::oldest() const {
  std::lock_guard lock(mu_);
  if (pending_.empty()) return std::nullopt;
  return std::min_element(pending_.begin(), pending_.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->second;
}

std::size_t PendingFiles::size() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

void PendingFiles::remove(std::uint64_t id) noexcept {
  std::lock_guard lock(mu_);
  pending_.erase(id);
}

}  // namespace gw::storage
