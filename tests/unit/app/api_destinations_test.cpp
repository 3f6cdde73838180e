// API destinations (ADR 005) without a gateway: a body is checked like a config file entry
// (every issue with its path, tag keywords included), its stored form keeps only the retry
// keys it set, and merging adds independent routes that never change what the file's routes
// (first match wins, the default route) decide.
#include "app/api_destinations.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "queue/routing.h"

namespace gw::app {
namespace {

using nlohmann::json;

config::Config file_config() {
  std::vector<config::ConfigIssue> issues;
  auto parsed = config::parse_config(R"yaml(
data_dir: /tmp/gw-unit-api-destinations
listeners: [{name: plain, port: 11112}]
retry: {max_attempts: 9, initial_backoff: 5s, max_backoff: 10m}
destinations:
  - {name: PACS, ae_title: PACS, host: 10.0.0.1, port: 104}
  - {name: ARCHIVE, ae_title: ARCH, host: 10.0.0.2, port: 104}
routes:
  - {name: ct, match: {modality: CT}, destinations: [PACS]}
  - {name: rest, default: true, destinations: [ARCHIVE]}
)yaml",
                                     "/etc/dicom-gw", &issues);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? *parsed : config::Config{};
}

json body(const std::string& name) {
  return {{"name", name},
          {"ae_title", "REMOTE"},
          {"host", "127.0.0.1"},
          {"port", 11113},
          {"match", {{"calling_ae", "CT1"}}}};
}

/// An instance from `calling_ae` with `modality` (fields set one by one: -Werror).
queue::RoutingInput input(std::string_view calling_ae, std::string_view modality) {
  queue::RoutingInput in;
  in.calling_ae = calling_ae;
  in.modality = modality;
  return in;
}

std::set<std::string> paths(const std::vector<config::ConfigIssue>& issues) {
  std::set<std::string> out;
  for (const auto& i : issues) out.insert(i.path);
  return out;
}

TEST(ApiDestinations, AGoodBodyChecksAndKeepsOnlyTheRetryKeysItSet) {
  const auto file = file_config();
  json b = body("Remote");
  b["retry"] = {{"initial_backoff", "2m"}};
  std::vector<config::ConfigIssue> issues;
  auto checked = check_api_destination(b, file, "", &issues);
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(checked->destination.retry.initial_backoff.count(), 120);
  EXPECT_EQ(checked->destination.retry.max_attempts, 9u);  // the file's default
  ASSERT_TRUE(checked->match.has_value());
  EXPECT_EQ(checked->match->calling_ae, std::vector<std::string>{"CT1"});

  const auto stored = to_stored(b, *checked);
  EXPECT_EQ(stored.retry_initial_backoff_s, 120);
  EXPECT_FALSE(stored.retry_max_attempts.has_value());
  EXPECT_EQ(json::parse(stored.match), json({{"calling_ae", "CT1"}}));
  // What is stored reads back the same.
  auto again = check_api_destination(to_body(stored), file, "", &issues);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(to_stored(to_body(stored), *again), stored);
}

TEST(ApiDestinations, EveryIssueWithItsPathLikeTheConfigFile) {
  const auto file = file_config();
  const json bad = {{"name", "bad name/with slash"},
                    {"ae_title", ""},
                    {"port", "x"},
                    {"prot", 1},
                    {"match", {{"listener", "nope"}, {"source", "10.0.0.0/99"}}}};
  std::vector<config::ConfigIssue> issues;
  auto checked = check_api_destination(bad, file, "", &issues);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().code, core::ErrorCode::kConfig);
  EXPECT_EQ(paths(issues), (std::set<std::string>{"name", "ae_title", "host", "port", "prot",
                                                  "match.listener", "match.source"}));

  json keyword = body("KW");
  keyword["match"] = {{"tags", {{"StationNme", {{"equals", "A"}}}}}};
  ASSERT_FALSE(check_api_destination(keyword, file, "", &issues).ok());
  ASSERT_EQ(paths(issues), std::set<std::string>{"match.tags.StationNme"});
  EXPECT_NE(issues[0].message.find("StationName"), std::string::npos) << issues[0].message;
}

TEST(ApiDestinations, MergeAddsIndependentRoutesThatChangeNothingTheFileDecides) {
  const auto file = file_config();
  std::vector<config::ConfigIssue> issues;
  auto with_match = check_api_destination(body("Remote"), file, "", &issues);
  ASSERT_TRUE(with_match.ok());
  json plain = body("Plain");
  plain.erase("match");
  auto without = check_api_destination(plain, file, "", &issues);
  ASSERT_TRUE(without.ok());
  auto merged = merge_api_destinations(
      file, {to_stored(plain, *without), to_stored(body("Remote"), *with_match)}, &issues);
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  ASSERT_EQ(merged->destinations.size(), 4u);
  ASSERT_EQ(merged->routes.size(), 3u);  // Plain has no match: no route
  auto table = queue::RoutingTable::compile(*merged);
  ASSERT_TRUE(table.ok()) << table.error().message;

  using V = std::vector<std::string>;
  // CT from CT1: the file's first match (PACS), and the API route too.
  EXPECT_EQ(table->route(input("CT1", "CT")), (V{"PACS", "Remote"}));
  // MR from CT1: no file route matched, so the default still applies; the API route adds.
  EXPECT_EQ(table->route(input("CT1", "MR")), (V{"ARCHIVE", "Remote"}));
  // Not CT1: exactly what the file alone decides.
  EXPECT_EQ(table->route(input("MR1", "MR")), (V{"ARCHIVE"}));
}

TEST(ApiDestinations, MergeRefusesANameTheFileUsesWhateverItsCase) {
  const auto file = file_config();
  std::vector<config::ConfigIssue> issues;
  auto checked = check_api_destination(body("archive"), file, "", &issues);
  ASSERT_TRUE(checked.ok());
  auto merged = merge_api_destinations(file, {to_stored(body("archive"), *checked)}, &issues);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(paths(issues), std::set<std::string>{"destinations[1].name"});
  EXPECT_TRUE(same_destination_name("Archive", "ARCHIVE"));
  EXPECT_FALSE(valid_api_destination_name("a/b"));
  EXPECT_TRUE(valid_api_destination_name("Remote_PACS-2.x"));
}

}  // namespace
}  // namespace gw::app
