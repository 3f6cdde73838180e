// Batcher: every caller gets its own response; an exception in one batch reaches its leader
// and leaves the batcher usable (no caller waits for ever on a leader that is gone).

#include "core/batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

namespace gw::core {
namespace {

using IntBatcher = Batcher<int, int>;

TEST(BatcherTest, EachCallerGetsItsOwnResponse) {
  IntBatcher batcher([](const std::vector<IntBatcher::Slot*>& batch) {
    for (auto* slot : batch) slot->response = slot->request * 10;
  });
  std::vector<std::future<int>> results;
  for (int i = 0; i < 8; ++i) {
    results.push_back(std::async(std::launch::async, [&batcher, i] { return batcher.run(i); }));
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(results[i].get(), i * 10);
}

TEST(BatcherTest, AnExceptionReachesItsLeaderAndTheNextCallStillRuns) {
  bool fail = true;
  IntBatcher batcher([&fail](const std::vector<IntBatcher::Slot*>& batch) {
    if (std::exchange(fail, false)) throw std::runtime_error("out of memory, say");
    for (auto* slot : batch) slot->response = slot->request + 1;
  });
  EXPECT_THROW(batcher.run(1), std::runtime_error);
  // On a thread with a bounded wait: before the fix this call waited for ever.
  auto next = std::async(std::launch::async, [&batcher] { return batcher.run(41); });
  ASSERT_EQ(next.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(next.get(), 42);
}

}  // namespace
}  // namespace gw::core
