// PendingFiles: the set of files that may be in storage/ without an index row, whose oldest
// member bounds Store::checkpoint().
#include "storage/pending_files.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <utility>

namespace gw::storage {
namespace {

using std::chrono::seconds;
using TimePoint = PendingFiles::TimePoint;

TEST(PendingFiles, OldestIsTheEarliestStillPending) {
  auto set = std::make_shared<PendingFiles>();
  const TimePoint t0{seconds(1000)};
  EXPECT_FALSE(set->oldest().has_value());
  auto a = set->add(t0 + seconds(5));
  auto b = set->add(t0);  // a clock step back: added later, begun "earlier"
  auto c = set->add(t0 + seconds(9));
  EXPECT_EQ(set->oldest(), t0);
  b.release();
  EXPECT_EQ(set->oldest(), t0 + seconds(5));
  b.release();  // twice is harmless
  EXPECT_EQ(set->size(), 2u);
  { auto gone = std::move(a); }  // destroyed after a move: released once
  EXPECT_EQ(set->oldest(), t0 + seconds(9));
  c = PendingFiles::Ticket();  // assigning over a ticket releases it
  EXPECT_FALSE(set->oldest().has_value());
}

TEST(PendingFiles, AKeptTicketStaysPendingAndOutlivesItsOwner) {
  auto set = std::make_shared<PendingFiles>();
  const TimePoint t0{seconds(2000)};
  PendingFiles::Ticket kept = set->add(t0);
  kept.keep();
  { auto other = set->add(t0 + seconds(1)); }
  EXPECT_EQ(set->oldest(), t0);
  EXPECT_EQ(set->size(), 1u);
  // A ticket holds its set: destroying the owner's handle first is safe.
  auto orphan = set->add(t0 + seconds(2));
  set.reset();
  orphan.release();
}

}  // namespace
}  // namespace gw::storage
