#pragma once
/// Failed-login throttling, in memory. Failures are counted twice: per (user name, client
/// address) and per client address. Over either limit the address gets 429 for that user (or
/// for every user) until the window that counted them ends. Nothing is counted per user alone:
/// an attacker hammering "admin" from one address must not lock the real admin out from
/// another one. IPv6 clients are counted per /64 (one host usually holds a whole /64).
///
/// Fixed windows: a key's window opens at its first failure and lasts `window`; a success
/// clears the (user, address) count but not the address count. The table is bounded: when it
/// is full, expired entries go first, then the oldest ones.
///
/// Thread-safe (one mutex; every call is O(1) except eviction when full).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "http/api.h"

namespace gw::http {

struct RateLimitPolicy {
  int max_failures_per_user_address = 5;
  int max_failures_per_address = 20;
  std::chrono::milliseconds window = std::chrono::minutes(15);
  std::size_t max_entries = 10000;  ///< per table
};

class LoginRateLimiter {
 public:
  explicit LoginRateLimiter(RateLimitPolicy policy = {}, NowFn now_ms = system_now_ms);

  /// nullopt when `user` may try to log in from `address` now; otherwise how long to wait
  /// (whole seconds, at least 1) for Retry-After.
  std::optional<std::chrono::seconds> blocked(const std::string& user, const std::string& address);
  void record_failure(const std::string& user, const std::string& address);
  void record_success(const std::string& user, const std::string& address);

  /// Entries held (tests: bounded size).
  std::size_t size() const;

  /// The key an address is counted under: itself for IPv4, its /64 for IPv6.
  static std::string address_key(const std::string& address);

 private:
  struct Window {
    std::int64_t start_ms = 0;
    int failures = 0;
  };
  using Table = std::map<std::string, Window>;

  /// The live window of `key` (expired ones are dropped), or nullptr.
  Window* live(Table& table, const std::string& key, std::int64_t now);
  void add_failure(Table& table, const std::string& key, std::int64_t now);
  std::optional<std::int64_t> wait_ms(Table& table, const std::string& key, int limit,
                                      std::int64_t now);

  const RateLimitPolicy policy_;
  const NowFn now_ms_;
  mutable std::mutex mu_;  // guards both tables
  Table per_user_address_;
  Table per_address_;
};

}  // namespace gw::http
