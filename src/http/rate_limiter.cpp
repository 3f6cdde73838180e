#include "http/rate_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace gw::http {

LoginRateLimiter::LoginRateLimiter(RateLimitPolicy policy, NowFn now_ms)
    : policy_(policy), now_ms_(std::move(now_ms)) {}

std::string LoginRateLimiter::address_key(const std::string& address) {
  in6_addr v6{};
  if (address.find(':') == std::string::npos || ::inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
    return address;
  }
  // IPv4-mapped addresses (::ffff:a.b.c.d) stay whole: they are one IPv4 host.
  if (IN6_IS_ADDR_V4MAPPED(&v6)) return address;
  std::memset(&v6.s6_addr[8], 0, 8);
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &v6, text, sizeof text);
  return std::string(text) + "/64";
}

LoginRateLimiter::Window* LoginRateLimiter::live(Table& table, const std::string& key,
                                                 std::int64_t now) {
  const auto it = table.find(key);
  if (it == table.end()) return nullptr;
  if (now - it->second.start_ms >= policy_.window.count()) {
    table.erase(it);
    return nullptr;
  }
  return &it->second;
}

void LoginRateLimiter::add_failure(Table& table, const std::string& key, std::int64_t now) {
  if (Window* w = live(table, key, now)) {
    ++w->failures;
    return;
  }
  if (table.size() >= policy_.max_entries) {
    std::erase_if(table,
                  [&](const auto& e) { return now - e.second.start_ms >= policy_.window.count(); });
  }
  if (table.size() >= policy_.max_entries) {
    // Still full of live windows: forget the oldest one (it has the least time left anyway).
    const auto oldest = std::min_element(
        table.begin(), table.end(),
        [](const auto& a, const auto& b) { return a.second.start_ms < b.second.start_ms; });
    table.erase(oldest);
  }
  table.emplace(key, Window{now, 1});
}

std::optional<std::int64_t> LoginRateLimiter::wait_ms(Table& table, const std::string& key,
                                                      int limit, std::int64_t now) {
  const Window* w = live(table, key, now);
  if (w == nullptr || w->failures < limit) return std::nullopt;
  return w->start_ms + policy_.window.count() - now;
}

std::optional<std::chrono::seconds> LoginRateLimiter::blocked(const std::string& user,
                                                              const std::string& address) {
  const auto now = now_ms_();
  const auto addr = address_key(address);
  std::lock_guard lock(mu_);
  const auto a =
      wait_ms(per_user_address_, user + '\n' + addr, policy_.max_failures_per_user_address, now);
  const auto b = wait_ms(per_address_, addr, policy_.max_failures_per_address, now);
  if (!a && !b) return std::nullopt;
  const std::int64_t ms = std::max(a.value_or(0), b.value_or(0));
  return std::chrono::seconds(std::max<std::int64_t>(1, (ms + 999) / 1000));
}

void LoginRateLimiter::record_failure(const std::string& user, const std::string& address) {
  const auto now = now_ms_();
  const auto addr = address_key(address);
  std::lock_guard lock(mu_);
  add_failure(per_user_address_, user + '\n' + addr, now);
  add_failure(per_address_, addr, now);
}

void LoginRateLimiter::record_success(const std::string& user, const std::string& address) {
  const auto addr = address_key(address);
  std::lock_guard lock(mu_);
  per_user_address_.erase(user + '\n' + addr);
}

std::size_t LoginRateLimiter::size() const {
  std::lock_guard lock(mu_);
  return per_user_address_.size() + per_address_.size();
}

}  // namespace gw::http
