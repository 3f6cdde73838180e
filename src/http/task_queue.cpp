#include "http/task_queue.h"

#include <algorithm>
#include <system_error>
#include <utility>

namespace gw::http {

ElasticTaskQueue::ElasticTaskQueue(std::size_t min_threads, std::size_t max_threads,
                                   std::chrono::milliseconds idle_exit)
    : min_threads_(std::max<std::size_t>(1, min_threads)),
      max_threads_(std::max(min_threads_, max_threads)),
      idle_exit_(idle_exit) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < min_threads_; ++i) {
    auto& w = workers_.emplace_back();
    ++alive_;
    w.thread = std::thread([this, self = &w] { run(self); });  // at start: a failure throws
  }
}

ElasticTaskQueue::~ElasticTaskQueue() { shutdown(); }

void ElasticTaskQueue::enqueue(std::function<void()> task) {
  std::list<Worker> finished;
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      // httplib stops accepting before it shuts the queue down; should a task still come, it
      // runs here (it owns and closes a connection).
      lock.unlock();
      task();
      return;
    }
    tasks_.push_back(std::move(task));
    reap_locked(finished);
    // Every idle thread is already spoken for by a queued task: start one more.
    if (idle_ < tasks_.size() && alive_ < max_threads_) {
      auto& w = workers_.emplace_back();
      try {
        w.thread = std::thread([this, self = &w] { run(self); });
        ++alive_;
      } catch (const std::system_error&) {
        // No thread to be had (a process or cgroup limit): the task waits for a running one.
        workers_.pop_back();
      }
    }
  }
  cv_.notify_one();
  for (auto& w : finished) w.thread.join();  // outside the lock: they hold none
}

void ElasticTaskQueue::reap_locked(std::list<Worker>& finished) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    auto next = std::next(it);
    if (it->done) finished.splice(finished.end(), workers_, it);
    it = next;
  }
}

void ElasticTaskQueue::run(Worker* self) {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    const bool woke =
        cv_.wait_for(lock, idle_exit_, [this] { return stopping_ || !tasks_.empty(); });
    --idle_;
    if (tasks_.empty()) {
      if (stopping_ || (!woke && alive_ > min_threads_)) break;
      continue;
    }
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
  --alive_;
  self->done = true;
}

void ElasticTaskQueue::shutdown() {
  std::list<Worker> all;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    all.swap(workers_);
  }
  cv_.notify_all();
  for (auto& w : all) {
    if (w.thread.joinable()) w.thread.join();
  }
}

std::size_t ElasticTaskQueue::threads() const {
  std::lock_guard lock(mu_);
  return alive_;
}

}  // namespace gw::http
