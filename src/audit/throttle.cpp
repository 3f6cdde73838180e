#include "audit/throttle.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace gw::audit {

namespace {

using Json = nlohmann::json;

Json details_of(const index::AuditEvent& e) {
  auto parsed = Json::parse(e.details.empty() ? "{}" : e.details, nullptr, false);
  return parsed.is_object() ? parsed : Json::object();
}

std::string reason_of(const index::AuditEvent& e) {
  const Json d = details_of(e);
  auto it = d.find("reason");
  return it != d.end() && it->is_string() ? it->get<std::string>() : std::string("unspecified");
}

/// `e` standing for `attempts` attempts with these reasons.
index::AuditEvent summarised(index::AuditEvent e, std::int64_t attempts,
                             const std::map<std::string, std::int64_t>& reasons,
                             std::int64_t window_ms) {
  Json d = details_of(e);
  d["attempts"] = attempts;
  if (attempts > 1) {
    d["reasons"] = reasons;
    d["window_s"] = window_ms / 1000;
  }
  e.details = d.dump();
  return e;
}

}  // namespace

AuditThrottle::AuditThrottle(std::chrono::milliseconds window, std::size_t max_keys)
    : window_ms_(std::max<std::int64_t>(1, window.count())),
      max_keys_(std::max<std::size_t>(1, max_keys)) {}

bool AuditThrottle::ended(const Entry& e, std::int64_t now_ms) const {
  return now_ms - e.window_start_ms >= window_ms_;
}

std::vector<index::AuditEvent> AuditThrottle::record(const std::string& key,
                                                     index::AuditEvent event) {
  std::vector<index::AuditEvent> out;
  const auto now = event.at_ms;
  std::lock_guard lock(mu_);
  auto it = table_.find(key);
  if (it != table_.end() && !ended(it->second, now)) {
    Entry& e = it->second;
    ++e.folded;
    ++e.reasons[reason_of(event)];
    e.last = std::move(event);
    return out;
  }
  // A new window: this event is written now, with what the ended window folded.
  std::int64_t attempts = 1;
  std::map<std::string, std::int64_t> reasons;
  if (it != table_.end()) {
    attempts += it->second.folded;
    reasons = std::move(it->second.reasons);
    table_.erase(it);
  }
  ++reasons[reason_of(event)];
  make_room_locked(now, out);
  Entry fresh;
  fresh.window_start_ms = now;
  table_.emplace(key, std::move(fresh));
  out.push_back(summarised(std::move(event), attempts, reasons, window_ms_));
  return out;
}

void AuditThrottle::make_room_locked(std::int64_t now_ms, std::vector<index::AuditEvent>& out) {
  if (table_.size() < max_keys_) return;
  for (auto it = table_.begin(); it != table_.end();) {
    if (!ended(it->second, now_ms)) {
      ++it;
      continue;
    }
    if (it->second.folded > 0) {
      out.push_back(summarised(it->second.last, it->second.folded, it->second.reasons, window_ms_));
    }
    it = table_.erase(it);
  }
  if (table_.size() < max_keys_) return;
  auto oldest = std::min_element(table_.begin(), table_.end(), [](const auto& a, const auto& b) {
    return a.second.window_start_ms < b.second.window_start_ms;
  });
  if (oldest->second.folded > 0) {
    out.push_back(
        summarised(oldest->second.last, oldest->second.folded, oldest->second.reasons, window_ms_));
  }
  table_.erase(oldest);
}

std::vector<index::AuditEvent> AuditThrottle::take_due(std::int64_t now_ms) {
  std::vector<index::AuditEvent> out;
  std::lock_guard lock(mu_);
  for (auto it = table_.begin(); it != table_.end();) {
    if (!ended(it->second, now_ms)) {
      ++it;
      continue;
    }
    if (it->second.folded > 0) {
      out.push_back(summarised(it->second.last, it->second.folded, it->second.reasons, window_ms_));
    }
    it = table_.erase(it);
  }
  return out;
}

std::vector<index::AuditEvent> AuditThrottle::take_all() {
  std::vector<index::AuditEvent> out;
  std::lock_guard lock(mu_);
  for (auto& [key, e] : table_) {
    if (e.folded > 0) out.push_back(summarised(e.last, e.folded, e.reasons, window_ms_));
  }
  table_.clear();
  return out;
}

std::size_t AuditThrottle::size() const {
  std::lock_guard lock(mu_);
  return table_.size();
}

}  // namespace gw::audit
