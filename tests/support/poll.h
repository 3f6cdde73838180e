#pragma once
/// Waiting on a condition with a deadline instead of a fixed sleep.

#include <algorithm>
#include <chrono>
#include <thread>

namespace gw::test {

/// Evaluates `pred` every `step` until it returns true (→ true) or `timeout` has passed
/// (→ false). `pred` is evaluated once more at the deadline, so a condition that became
/// true during the last step is not missed.
template <class F>
bool wait_until(F pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(step, deadline - now));
  }
}

}  // namespace gw::test
