// IoPool: round-robin executors, one thread per io_context, each executor's work stays on its
// own thread, stop() is idempotent and leaves nothing running.

#include "dicom/io_pool.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

namespace gw::dicom {
namespace {

using namespace std::chrono_literals;

/// The id of the thread that runs a handler posted to `executor`.
std::thread::id thread_of(const asio::any_io_executor& executor) {
  std::promise<std::thread::id> seen;
  auto future = seen.get_future();
  asio::post(executor, [&seen]() { seen.set_value(std::this_thread::get_id()); });
  EXPECT_EQ(future.wait_for(10s), std::future_status::ready);
  return future.get();
}

TEST(IoPool, ExecutorsComeRoundRobinOneThreadEach) {
  IoPool pool(3);
  EXPECT_EQ(pool.size(), 3u);
  pool.start();
  std::vector<asio::any_io_executor> executors;
  for (int i = 0; i < 6; ++i) executors.push_back(pool.next());
  std::vector<std::thread::id> threads;
  for (const auto& e : executors) threads.push_back(thread_of(e));
  const std::set<std::thread::id> distinct(threads.begin(), threads.begin() + 3);
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_FALSE(distinct.contains(std::this_thread::get_id()));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(threads[i], threads[i + 3]) << i;
  pool.stop();
}

TEST(IoPool, AnExecutorsWorkNeverChangesThread) {
  IoPool pool(2);
  pool.start();
  const auto home = pool.next();
  const auto expected = thread_of(home);
  // A coroutine that waits on timers and posts itself along, like an association does.
  std::promise<bool> result;
  auto future = result.get_future();
  asio::co_spawn(
      home,
      [&]() -> asio::awaitable<void> {
        bool same = true;
        asio::steady_timer timer(co_await asio::this_coro::executor);
        for (int i = 0; i < 50; ++i) {
          timer.expires_after(100us);
          co_await timer.async_wait(asio::use_awaitable);
          co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          same = same && std::this_thread::get_id() == expected;
        }
        result.set_value(same);
      },
      asio::detached);
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(future.get());
}

TEST(IoPool, StopIsIdempotentAndDropsPendingWork) {
  IoPool pool(2);
  pool.start();
  EXPECT_NE(thread_of(pool.next()), std::this_thread::get_id());
  pool.stop();
  pool.stop();
  // Posting after stop() is harmless: the handler is destroyed with the pool, never run.
  bool ran = false;
  asio::post(pool.next(), [&ran]() { ran = true; });
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(ran);
}

TEST(IoPool, StartIsIdempotent) {
  IoPool pool(1);
  pool.start();
  const auto first = thread_of(pool.next());
  pool.start();
  EXPECT_EQ(thread_of(pool.next()), first);
}

}  // namespace
}  // namespace gw::dicom
