// ElasticTaskQueue: threads start while tasks wait (up to the maximum), idle ones above the
// minimum go away, and shutdown runs what was queued. Every wait is bounded.

#include "http/task_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace gw::http {
namespace {

using namespace std::chrono_literals;

/// Tasks that block until release(); counts how many run at once.
class Gate {
 public:
  std::function<void()> task() {
    return [this] {
      std::unique_lock lock(mu_);
      ++running_;
      max_running_ = std::max(max_running_, running_);
      cv_.notify_all();
      cv_.wait_for(lock, 30s, [this] { return open_; });
      --running_;
      ++done_;
      cv_.notify_all();
    };
  }
  void release() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  /// Waits (at most 10 s) until `n` run at once.
  bool wait_running(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return running_ >= n; });
  }
  bool wait_done(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return done_ >= n; });
  }
  int max_running() {
    std::lock_guard lock(mu_);
    return max_running_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int running_ = 0;
  int max_running_ = 0;
  int done_ = 0;
};

TEST(ElasticTaskQueueTest, BlockedTasksGetThreadsOfTheirOwnUpToTheMaximum) {
  Gate gate;
  ElasticTaskQueue queue(2, 4, 30s);
  for (int i = 0; i < 6; ++i) queue.enqueue(gate.task());
  EXPECT_TRUE(gate.wait_running(4));
  EXPECT_EQ(queue.threads(), 4u);
  gate.release();
  EXPECT_TRUE(gate.wait_done(6));  // the two beyond the maximum ran once threads freed
  EXPECT_EQ(gate.max_running(), 4);
}

TEST(ElasticTaskQueueTest, IdleThreadsAboveTheMinimumGoAway) {
  Gate gate;
  ElasticTaskQueue queue(1, 8, 50ms);
  for (int i = 0; i < 5; ++i) queue.enqueue(gate.task());
  EXPECT_TRUE(gate.wait_running(5));
  gate.release();
  EXPECT_TRUE(gate.wait_done(5));
  for (int i = 0; i < 200 && queue.threads() > 1; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(queue.threads(), 1u);
  // And new work still runs.
  std::atomic<bool> ran{false};
  queue.enqueue([&ran] { ran = true; });
  for (int i = 0; i < 200 && !ran; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(ran);
}

TEST(ElasticTaskQueueTest, ShutdownRunsWhatWasQueued) {
  std::atomic<int> ran{0};
  {
    ElasticTaskQueue queue(1, 1, 30s);
    for (int i = 0; i < 20; ++i) {
      queue.enqueue([&ran] {
        std::this_thread::sleep_for(1ms);
        ++ran;
      });
    }
    queue.shutdown();
    EXPECT_EQ(ran.load(), 20);
    queue.enqueue([&ran] { ++ran; });  // after shutdown: runs on the caller
    EXPECT_EQ(ran.load(), 21);
  }
}

}  // namespace
}  // namespace gw::http
