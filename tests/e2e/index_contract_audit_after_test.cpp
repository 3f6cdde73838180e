// Index::list_audit_after, the syslog exporter's read (audit/syslog_export.h), on both backends:
// ascending ids after a cursor, bounded by the limit, with the table's last id; rows written
// through another Index on the same database (another process or node) are seen too.
#include <cstdint>
#include <string>
#include <vector>

#include "index_contract.h"

namespace gw::index {
namespace {

using core::ErrorCode;

class IndexAuditAfter : public IndexContract {
 protected:
  static AuditEvent row(const std::string& action) {
    AuditEvent e;
    e.at_ms = 1000;  // the same time for every row: order is by id, not by time
    e.actor = "system";
    e.action = action;
    return e;
  }

  static std::vector<std::int64_t> ids(const AuditPage& page) {
    std::vector<std::int64_t> out;
    for (const auto& e : page.events) out.push_back(e.id);
    return out;
  }
};

INSTANTIATE_INDEX_CONTRACT(IndexAuditAfter);

TEST_P(IndexAuditAfter, AscendingIdsAfterTheCursorWithTheLastId) {
  auto empty = index_->list_audit_after(0, 10);
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->events.empty());
  EXPECT_EQ(empty->last_id, 0);

  std::vector<std::int64_t> written;
  for (int i = 0; i < 5; ++i) {
    auto id = index_->append_audit(row("config.reload"));
    ASSERT_TRUE(id.ok());
    written.push_back(*id);
  }
  auto all = index_->list_audit_after(0, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ids(*all), written);
  EXPECT_EQ(all->last_id, written.back());
  EXPECT_EQ(all->events[2].action, "config.reload");
  EXPECT_EQ(all->events[2].details, "{}");

  auto page = index_->list_audit_after(written[1], 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(ids(*page), (std::vector<std::int64_t>{written[2], written[3]}));
  EXPECT_EQ(page->last_id, written.back());

  auto tail = index_->list_audit_after(written.back(), 10);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(tail->events.empty());

  auto only_last = index_->list_audit_after(0, 0);
  ASSERT_TRUE(only_last.ok());
  EXPECT_TRUE(only_last->events.empty());
  EXPECT_EQ(only_last->last_id, written.back());

  auto negative = index_->list_audit_after(0, -1);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IndexAuditAfter, RowsFromAnotherWriterAreSeen) {
  auto other = open();
  ASSERT_NE(other, nullptr);
  auto first = index_->append_audit(row("auth.login"));
  auto second = other->append_audit(row("user.create"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  auto page = index_->list_audit_after(*first, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, *second);
  EXPECT_EQ(page->events[0].action, "user.create");
}

}  // namespace
}  // namespace gw::index
