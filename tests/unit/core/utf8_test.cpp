#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace gw::core {
namespace {

TEST(Utf8Test, SequencesFollowRfc3629) {
  EXPECT_EQ(utf8_sequence("a"), 1u);
  EXPECT_EQ(utf8_sequence("\xC3\xA4"), 2u);          // ä
  EXPECT_EQ(utf8_sequence("\xE2\x82\xAC"), 3u);      // €
  EXPECT_EQ(utf8_sequence("\xF0\x9F\x98\x80"), 4u);  // U+1F600
  EXPECT_EQ(utf8_sequence(""), 0u);
  EXPECT_EQ(utf8_sequence("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(utf8_sequence("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(utf8_sequence("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(utf8_sequence("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8_sequence("\xC3"), 0u);              // cut short
  EXPECT_EQ(utf8_sequence("\x80"), 0u);              // a continuation byte alone
}

TEST(Utf8Test, ChecksAndRepairs) {
  EXPECT_TRUE(is_ascii("plain ASCII"));
  EXPECT_FALSE(is_ascii("\xC3\xA4"));
  EXPECT_TRUE(
      is_utf8("Sch\xC3\xA4"
              "del"));
  EXPECT_FALSE(
      is_utf8("Sch\xE4"
              "del"));
  EXPECT_EQ(utf8_replacing_invalid("A\xFF"
                                   "B\xC3\xA4"),
            "A\xEF\xBF\xBD"
            "B\xC3\xA4");
  EXPECT_EQ(utf8_replacing_invalid("\xC3"), "\xEF\xBF\xBD");
  EXPECT_EQ(latin1_to_utf8("Sch\xE4"
                           "del \xFF"),
            "Sch\xC3\xA4"
            "del \xC3\xBF");
  EXPECT_TRUE(is_utf8(latin1_to_utf8("\x80\x9F\xA0\xFF")));
}

}  // namespace
}  // namespace gw::core
