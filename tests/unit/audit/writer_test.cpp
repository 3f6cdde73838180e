#include "audit/writer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "index/sqlite/sqlite_index.h"
#include "support/temp_dir.h"

namespace gw::audit {
namespace {

index::AuditEvent event(const std::string& action) {
  index::AuditEvent e;
  e.at_ms = 1000;
  e.actor = "ae:CT1";
  e.action = action;
  e.details = "{}";
  return e;
}

std::size_t rows(index::Index& index) {
  index::AuditQuery q;
  q.limit = 1000;
  auto listed = index.list_audit(q);
  EXPECT_TRUE(listed.ok());
  return listed.ok() ? listed->size() : 0;
}

TEST(AuditWriterTest, WritesInOrderOffTheCallersThread) {
  auto index = index::SqliteIndex::open(":memory:");
  ASSERT_TRUE(index.ok());
  AuditWriter writer(**index);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(writer.enqueue(event("association.accepted")));
  writer.flush();
  EXPECT_EQ(rows(**index), 50u);
  const auto c = writer.counts();
  EXPECT_EQ(c.written, 50u);
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_EQ(c.queued, 0u);
}

TEST(AuditWriterTest, RefusedRowsAreCountedNotRetried) {
  auto index = index::SqliteIndex::open(":memory:");
  ASSERT_TRUE(index.ok());
  AuditWriter writer(**index);
  auto bad = event("association.accepted");
  bad.actor.clear();  // the index refuses a row without an actor
  EXPECT_TRUE(writer.enqueue(bad));
  EXPECT_TRUE(writer.enqueue(event("association.accepted")));
  writer.flush();
  EXPECT_EQ(writer.counts().failed, 1u);
  EXPECT_EQ(writer.counts().written, 1u);
}

TEST(AuditWriterTest, FullQueueDropsAndCountsInsteadOfBlocking) {
  test::TempDir dir("gw-audit-writer");
  const auto path = dir.path() / "index.db";
  auto index = index::SqliteIndex::open(path);
  ASSERT_TRUE(index.ok());
  // Another connection holds the write lock: the writer's first row waits (busy timeout).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  AuditWriter writer(**index, 2);
  ASSERT_TRUE(writer.enqueue(event("instances.received")));
  // Wait (bounded) until the thread has taken it and is stuck on the lock.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (writer.counts().queued != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(writer.counts().queued, 0u);
  EXPECT_TRUE(writer.enqueue(event("instances.received")));
  EXPECT_TRUE(writer.enqueue(event("instances.received")));
  EXPECT_FALSE(writer.enqueue(event("instances.received"))) << "full: dropped, not blocked";
  EXPECT_FALSE(writer.enqueue(event("instances.received")));
  EXPECT_EQ(writer.counts().dropped, 2u);

  ASSERT_EQ(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  writer.flush();
  EXPECT_EQ(writer.counts().written, 3u);
  EXPECT_EQ(rows(**index), 3u);
}

TEST(AuditWriterTest, StopWritesWhatIsQueuedThenDrops) {
  auto index = index::SqliteIndex::open(":memory:");
  ASSERT_TRUE(index.ok());
  AuditWriter writer(**index);
  for (int i = 0; i < 10; ++i) writer.enqueue(event("association.rejected"));
  writer.stop();
  EXPECT_EQ(rows(**index), 10u);
  EXPECT_FALSE(writer.enqueue(event("association.rejected")));
  EXPECT_EQ(writer.counts().dropped, 1u);
  writer.stop();   // idempotent
  writer.flush();  // returns at once
}

}  // namespace
}  // namespace gw::audit
