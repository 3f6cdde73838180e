#pragma once
/// StrandSignal: coroutines on one strand sleep until a deadline or until woken, without burning
/// CPU: a timer per waiter, cancelled by notify. (Associations wait with it for their turn to
/// send and for room in their window; the forwarder for work.)
///
/// Not thread-safe: use it from its strand only (post notify_all() there from other threads).
/// A waiter's frame must not outlive the signal.
/// A wake-up that arrives while a coroutine is still deciding whether to sleep (it was checking
/// its condition, perhaps on another thread) is not lost: the coroutine reads generation()
/// before checking, and wait_until() returns at once if a notify happened since.

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <list>

#include "dicom/channel.h"

namespace gw::dicom {

class StrandSignal {
 public:
  using Clock = std::chrono::steady_clock;

  std::uint64_t generation() const { return generation_; }

  /// Wakes every waiter; a coroutine about to wait with an older generation does not sleep.
  void notify_all() {
    ++generation_;
    for (auto* timer : waiters_) timer->cancel();
  }

  /// Sleeps until `deadline`, or until notify_all() (now or since `seen_generation`).
  asio::awaitable<void> wait_until(Clock::time_point deadline, std::uint64_t seen_generation) {
    if (seen_generation != generation_) co_return;
    asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
    // Unlisted however the wait ends: also when the waiting frame is destroyed unresumed (an
    // io_context torn down at a forced shutdown), so notify_all() never touches a freed timer.
    struct Listed {
      std::list<asio::steady_timer*>& list;
      std::list<asio::steady_timer*>::iterator it;
      ~Listed() { list.erase(it); }
    } listed{waiters_, waiters_.insert(waiters_.end(), &timer)};
    co_await timer.async_wait(use_nothrow);
  }

  /// Sleeps until notify_all() (or since `seen_generation`).
  asio::awaitable<void> wait(std::uint64_t seen_generation) {
    co_await wait_until(Clock::time_point::max(), seen_generation);
  }

 private:
  std::uint64_t generation_ = 0;
  std::list<asio::steady_timer*> waiters_;
};

}  // namespace gw::dicom
