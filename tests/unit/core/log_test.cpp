#include "core/log.h"

#include <gtest/gtest.h>

namespace gw::core {
namespace {

TEST(LogSafeTest, PrintableAsciiStaysAsItIs) {
  EXPECT_EQ(log_safe("STORESCU"), "STORESCU");
  EXPECT_EQ(log_safe("MY SCU=1"), "MY SCU=1");
  EXPECT_EQ(log_safe(""), "");
}

TEST(LogSafeTest, NothingCanEndTheQuotesOrStartALine) {
  EXPECT_EQ(log_safe("A\nevent=x"), "A\\x0aevent=x");
  EXPECT_EQ(log_safe("A\" tls=true"), "A\\x22 tls=true");
  EXPECT_EQ(log_safe("A\\B"), "A\\x5cB");
  EXPECT_EQ(log_safe(std::string_view("A\0B", 3)), "A\\x00B");
  EXPECT_EQ(log_safe("\xc3\xa9\x7f"), "\\xc3\\xa9\\x7f");
}

}  // namespace
}  // namespace gw::core
