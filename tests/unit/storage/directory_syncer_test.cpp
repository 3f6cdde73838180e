#include "storage/directory_syncer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace gw::storage {
namespace {

namespace fs = std::filesystem;

TEST(DirectorySyncerTest, SyncsRequestedDirectories) {
  test::TempDir tmp;
  DirectorySyncer syncer(/*enabled=*/true);
  const auto ticket = syncer.request(tmp.path());
  EXPECT_TRUE(syncer.wait(ticket).ok());
}

TEST(DirectorySyncerTest, ReportsAFailureToEveryWaiterOfThatDirectoryOnly) {
  test::TempDir tmp;
  DirectorySyncer syncer(/*enabled=*/true);
  const auto missing = tmp.path() / "gone";
  const auto bad1 = syncer.request(missing);
  const auto good = syncer.request(tmp.path());
  const auto bad2 = syncer.request(missing);
  const auto st1 = syncer.wait(bad1);
  ASSERT_FALSE(st1.ok());
  EXPECT_NE(st1.error().message.find("gone"), std::string::npos) << st1.error().message;
  EXPECT_FALSE(syncer.wait(bad2).ok());
  EXPECT_TRUE(syncer.wait(good).ok());
}

TEST(DirectorySyncerTest, ManyConcurrentRequestersAllComplete) {
  test::TempDir tmp;
  std::vector<fs::path> dirs;
  for (int i = 0; i < 4; ++i) {
    dirs.push_back(tmp.path() / std::to_string(i));
    fs::create_directory(dirs.back());
  }
  DirectorySyncer syncer(/*enabled=*/true);
  std::atomic<int> ok{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t]() {
        for (int i = 0; i < 50; ++i) {
          if (syncer.wait(syncer.request(dirs[(t + i) % dirs.size()])).ok()) ok++;
        }
      });
    }
  }
  EXPECT_EQ(ok.load(), 8 * 50);
}

TEST(DirectorySyncerTest, DisabledCompletesAtOnceWithoutTouchingTheDirectory) {
  DirectorySyncer syncer(/*enabled=*/false);
  EXPECT_TRUE(syncer.wait(syncer.request("/nonexistent/dir")).ok());
}

TEST(DirectorySyncerTest, DestructorFinishesPendingRequests) {
  test::TempDir tmp;
  auto syncer = std::make_unique<DirectorySyncer>(/*enabled=*/true);
  std::vector<DirectorySyncer::Ticket> tickets;
  for (int i = 0; i < 10; ++i) tickets.push_back(syncer->request(tmp.path()));
  for (const auto& t : tickets) EXPECT_TRUE(syncer->wait(t).ok());
  syncer.reset();  // joins; must not hang
}

}  // namespace
}  // namespace gw::storage
