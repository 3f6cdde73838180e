#pragma once
/// Batcher: leader/follower batching for group commit. Concurrent callers of run() queue their
/// request; one of them (the leader) hands the whole queue to `process` and every caller returns
/// its own response. One fsync or one transaction then serves every request that arrived while
/// the previous batch was being written; a lone caller is its own batch (no waiting, no timer).

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "core/check.h"

namespace gw::core {

template <class Request, class Response>
class Batcher {
 public:
  struct Slot {
    Request request;
    std::optional<Response> response;
  };
  /// Must set the response of every slot. Runs on the leader's thread, one batch at a time.
  using Process = std::function<void(const std::vector<Slot*>& batch)>;

  explicit Batcher(Process process) : process_(std::move(process)) {}
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  Response run(Request request) {
    Slot me{std::move(request), std::nullopt};
    std::unique_lock lock(mu_);
    queue_.push_back(&me);
    while (!me.response) {
      if (leader_active_) {
        cv_.wait(lock);
        continue;
      }
      leader_active_ = true;
      std::vector<Slot*> batch;
      batch.swap(queue_);
      lock.unlock();
      try {
        process_(batch);
      } catch (...) {
        // The next leader takes the other callers' requests; this caller sees the exception.
        // Never leave leader_active_ set: every later run() would wait for ever.
        lock.lock();
        leader_active_ = false;
        for (Slot* slot : batch) {
          if (slot != &me && !slot->response) queue_.push_back(slot);
        }
        cv_.notify_all();
        throw;
      }
      for (const Slot* slot : batch) GW_CHECK(slot->response.has_value());
      lock.lock();
      leader_active_ = false;
      cv_.notify_all();
    }
    return std::move(*me.response);
  }

 private:
  Process process_;
  std::mutex mu_;  // guards queue_ and leader_active_; never held while process_ runs
  std::condition_variable cv_;
  std::vector<Slot*> queue_;
  bool leader_active_ = false;
};

}  // namespace gw::core
