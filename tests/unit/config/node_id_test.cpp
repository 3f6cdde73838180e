// Top-level `node_id` (several nodes on one data_dir): optional, and a safe directory name.
#include <string>
#include <vector>

#include "config_fixture.h"

namespace gw::config {
namespace {

constexpr const char* kBase =
    "data_dir: /var/lib/dicom-gw\nlisteners:\n  - {name: plain, port: 0}\n";

TEST_F(ConfigTest, NodeIdDefaultsToEmpty) { EXPECT_EQ(parse_ok(kBase).node_id, ""); }

TEST_F(ConfigTest, NodeIdAcceptsLettersDigitsDotUnderscoreDash) {
  EXPECT_EQ(parse_ok(std::string(kBase) + "node_id: gw-1.site_A\n").node_id, "gw-1.site_A");
  EXPECT_EQ(parse_ok(std::string(kBase) + "node_id: \"\"\n").node_id, "");
  const std::string longest(64, 'n');
  EXPECT_EQ(parse_ok(std::string(kBase) + "node_id: " + longest + "\n").node_id, longest);
}

TEST_F(ConfigTest, NodeIdRefusesWhatIsNotASafeDirectoryName) {
  const std::vector<std::string> invalid{"\".\"",   "\"..\"", "a/b",
                                         "\"a b\"", "gw:1",   std::string(65, 'n')};
  for (const auto& bad : invalid) {
    const auto issues = issues_of(std::string(kBase) + "node_id: " + bad + "\n");
    EXPECT_NE(message_at(issues, "node_id").find("1-64 characters"), std::string::npos) << bad;
  }
  const auto issues = issues_of(std::string(kBase) + "node_id: [a]\n");
  EXPECT_FALSE(message_at(issues, "node_id").empty());
}

}  // namespace
}  // namespace gw::config
