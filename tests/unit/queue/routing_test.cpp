#include "queue/routing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace gw::queue {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::uint32_t kStationName = 0x00081010;
constexpr std::uint32_t kImageType = 0x00080008;
constexpr std::uint32_t kInstitutionName = 0x00080080;
constexpr std::uint32_t kBodyPartExamined = 0x00180015;
constexpr const char* kCtImage = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kMrImage = "1.2.840.10008.5.1.4.1.1.4";

/// A config with listeners `plain` and `secure`, destinations A, B, C and the given routes.
config::Config config_with(const std::string& routes) {
  const std::string yaml = R"(
data_dir: /d
listeners:
  - {name: plain, port: 11112}
  - {name: secure, port: 2762}
destinations:
  - {name: A, ae_title: A, host: a, port: 104}
  - {name: B, ae_title: B, host: b, port: 104}
  - {name: C, ae_title: C, host: c, port: 104}
routes:
)" + routes;
  auto config = config::parse_config(yaml, "/tmp");
  EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
  return config.ok() ? std::move(config).value() : config::Config{};
}

RoutingTable table_with(const std::string& routes) {
  auto table = RoutingTable::compile(config_with(routes));
  EXPECT_TRUE(table.ok()) << (table.ok() ? "" : table.error().message);
  return table.ok() ? std::move(table).value() : *RoutingTable::compile(config::Config{});
}

/// A CT from CT1 over the plain listener, from 10.1.2.3.
RoutingInput ct() {
  RoutingInput in;
  in.calling_ae = "CT1";
  in.called_ae = "DICOM_GW";
  in.listener = "plain";
  in.peer_ip = "10.1.2.3";
  in.modality = "CT";
  in.sop_class_uid = kCtImage;
  return in;
}

TEST(RoutingTest, FirstMatchWins) {
  const RoutingTable table = table_with(R"(
  - {name: ct, match: {modality: CT}, destinations: [A]}
  - {name: all, destinations: [B]}
)");
  EXPECT_FALSE(table.empty());
  EXPECT_THAT(table.route(ct()), ElementsAre("A"));
  RoutingInput mr = ct();
  mr.modality = "MR";
  EXPECT_THAT(table.route(mr), ElementsAre("B"));
}

TEST(RoutingTest, ContinueCollectsLaterRoutesWithoutDuplicates) {
  const RoutingTable table = table_with(R"(
  - {name: ct, match: {modality: CT}, destinations: [A, B], continue: true}
  - {name: ct-again, match: {calling_ae: CT1}, destinations: [B, C, A]}
  - {name: never, destinations: [A]}
)");
  EXPECT_THAT(table.route(ct()), ElementsAre("A", "B", "C"));
  RoutingInput other = ct();
  other.modality = "MR";
  EXPECT_THAT(table.route(other), ElementsAre("B", "C", "A"));  // first rule skipped
}

TEST(RoutingTest, DefaultRouteOnlyWhenNothingElseMatched) {
  // The default route is first in the file: its position does not matter.
  const RoutingTable table = table_with(R"(
  - {name: fallback, default: true, destinations: [C]}
  - {name: ct, match: {modality: CT}, destinations: [A], continue: true}
)");
  EXPECT_THAT(table.route(ct()), ElementsAre("A"));
  RoutingInput mr = ct();
  mr.modality = "MR";
  EXPECT_THAT(table.route(mr), ElementsAre("C"));
}

TEST(RoutingTest, NoRoutesNoDestinations) {
  const RoutingTable none = table_with("");
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(none.route(ct()), IsEmpty());
  EXPECT_THAT(none.required_tags(), IsEmpty());

  const RoutingTable only_default = table_with("  - {name: d, default: true, destinations: [A]}\n");
  EXPECT_FALSE(only_default.empty());
  EXPECT_THAT(only_default.route(ct()), ElementsAre("A"));

  const RoutingTable unmatched =
      table_with("  - {name: mr, match: {modality: MR}, destinations: [A]}\n");
  EXPECT_THAT(unmatched.route(ct()), IsEmpty());
}

TEST(RoutingTest, AeTitlesAreTrimmedAndCaseSensitive) {
  const RoutingTable table = table_with(R"(
  - {name: r, match: {calling_ae: [MR1, " CT1"], called_ae: DICOM_GW}, destinations: [A]}
)");
  RoutingInput in = ct();
  in.calling_ae = " CT1      ";  // AE titles arrive space-padded to 16
  in.called_ae = "DICOM_GW        ";
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.calling_ae = "MR1";
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.calling_ae = "ct1";
  EXPECT_THAT(table.route(in), IsEmpty());
  in.calling_ae = "CT1";
  in.called_ae = "OTHER_GW";
  EXPECT_THAT(table.route(in), IsEmpty());
}

TEST(RoutingTest, ListenerModalityAndSopClass) {
  const RoutingTable table = table_with(R"(
  - name: r
    match: {listener: secure, modality: [CT, PT], sop_class: [1.2.840.10008.5.1.4.1.1.2]}
    destinations: [A]
)");
  RoutingInput in = ct();
  in.listener = "secure";
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.sop_class_uid = std::string_view("1.2.840.10008.5.1.4.1.1.2\0", 26);  // UI padding
  in.modality = "CT ";
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.modality = "PT";
  EXPECT_THAT(table.route(in), ElementsAre("A"));

  RoutingInput wrong = in;
  wrong.listener = "plain";
  EXPECT_THAT(table.route(wrong), IsEmpty());
  wrong = in;
  wrong.modality = "ct";
  EXPECT_THAT(table.route(wrong), IsEmpty());
  wrong = in;
  wrong.modality = "CTX";
  EXPECT_THAT(table.route(wrong), IsEmpty());
  wrong = in;
  wrong.sop_class_uid = kMrImage;
  EXPECT_THAT(table.route(wrong), IsEmpty());
}

TEST(RoutingTest, SourceIpv4AndIpv6) {
  const RoutingTable table = table_with(R"(
  - {name: lan, match: {source: [10.0.0.0/8, 192.168.7.7]}, destinations: [A]}
  - {name: v6, match: {source: "2001:db8::/32"}, destinations: [B]}
)");
  RoutingInput in = ct();
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.peer_ip = "::ffff:10.200.3.4";  // IPv4-mapped, as a dual-stack socket reports it
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.peer_ip = "192.168.7.7";
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  in.peer_ip = "192.168.7.8";
  EXPECT_THAT(table.route(in), IsEmpty());
  in.peer_ip = "2001:db8:5::1";
  EXPECT_THAT(table.route(in), ElementsAre("B"));
  in.peer_ip = "2001:db9::1";
  EXPECT_THAT(table.route(in), IsEmpty());
  in.peer_ip = "";
  EXPECT_THAT(table.route(in), IsEmpty());
  in.peer_ip = "not an address";
  EXPECT_THAT(table.route(in), IsEmpty());
}

TEST(RoutingTest, AllFieldsMustHold) {
  const RoutingTable table = table_with(R"(
  - {name: r, match: {calling_ae: CT1, modality: CT, source: 10.0.0.0/8}, destinations: [A]}
)");
  EXPECT_THAT(table.route(ct()), ElementsAre("A"));
  RoutingInput in = ct();
  in.peer_ip = "172.16.0.1";
  EXPECT_THAT(table.route(in), IsEmpty());
}

TEST(RoutingTest, TagEqualsRegexExists) {
  const RoutingTable table = table_with(R"yaml(
  - {name: station, match: {tags: {StationName: {equals: ROOM1}}}, destinations: [A]}
  - {name: derived, match: {tags: {ImageType: {equals: DERIVED}}}, destinations: [B]}
  - {name: main, match: {tags: {InstitutionName: {regex: "Main (North|South)"}}}, destinations: [C]}
  - {name: no-body-part, match: {tags: {BodyPartExamined: {exists: false}}}, destinations: [A]}
)yaml");
  EXPECT_THAT(table.required_tags(),
              ElementsAre(kImageType, kInstitutionName, kStationName, kBodyPartExamined));

  auto route = [&](std::map<std::uint32_t, std::string> tags) {
    RoutingInput in = ct();
    in.tags = &tags;
    return table.route(in);
  };
  const std::string body = "HEAD";
  // equals: padding trimmed; the whole value or any one of several values.
  EXPECT_THAT(route({{kStationName, "ROOM1 "}, {kBodyPartExamined, body}}), ElementsAre("A"));
  EXPECT_THAT(route({{kStationName, std::string("ROOM1\0", 6)}, {kBodyPartExamined, body}}),
              ElementsAre("A"));
  EXPECT_THAT(route({{kStationName, "ROOM12"}, {kBodyPartExamined, body}}), IsEmpty());
  EXPECT_THAT(route({{kImageType, "ORIGINAL\\DERIVED\\AXIAL"}, {kBodyPartExamined, body}}),
              ElementsAre("B"));
  EXPECT_THAT(route({{kImageType, "DERIVED"}, {kBodyPartExamined, body}}), ElementsAre("B"));
  EXPECT_THAT(route({{kImageType, "DERIVEDX\\AXIAL"}, {kBodyPartExamined, body}}), IsEmpty());
  // regex: the whole value must match (or one of several values).
  EXPECT_THAT(route({{kInstitutionName, "Main North"}, {kBodyPartExamined, body}}),
              ElementsAre("C"));
  EXPECT_THAT(route({{kInstitutionName, "Old\\Main South"}, {kBodyPartExamined, body}}),
              ElementsAre("C"));
  EXPECT_THAT(route({{kInstitutionName, "Main North Annex"}, {kBodyPartExamined, body}}),
              IsEmpty());
  EXPECT_THAT(
      route({{kInstitutionName, "Main North" + std::string(5000, ' ')}, {kBodyPartExamined, body}}),
      ElementsAre("C"));  // padding is trimmed before the length limit applies
  // exists: false holds when the tag is absent, not when present and empty.
  EXPECT_THAT(route({}), ElementsAre("A"));
  EXPECT_THAT(route({{kBodyPartExamined, ""}}), IsEmpty());
  RoutingInput no_tags = ct();
  EXPECT_THAT(table.route(no_tags), ElementsAre("A"));
}

TEST(RoutingTest, OverlongValuesNeverMatchARegex) {
  const RoutingTable table = table_with(
      "  - {name: r, match: {tags: {RETIRED_StudyComments: {regex: \".*\"}}}, destinations: "
      "[A]}\n");
  std::map<std::uint32_t, std::string> tags = {{0x00324000u, std::string(4096, 'x')}};
  RoutingInput in = ct();
  in.tags = &tags;
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  tags[0x00324000u] = std::string(100000, 'x');  // would exhaust std::regex's recursion
  EXPECT_THAT(table.route(in), IsEmpty());
}

TEST(RoutingTest, ExistsTrueAndHexTags) {
  const RoutingTable table = table_with(R"(
  - {name: private, match: {tags: {"0009,1010": {equals: "X"}}}, destinations: [A]}
  - {name: pixels, match: {tags: {PixelData: {exists: true}}}, destinations: [B]}
)");
  EXPECT_THAT(table.required_tags(), ElementsAre(0x00091010u, 0x7FE00010u));
  std::map<std::uint32_t, std::string> tags = {{0x00091010u, "X"}};
  RoutingInput in = ct();
  in.tags = &tags;
  EXPECT_THAT(table.route(in), ElementsAre("A"));
  tags = {{0x7FE00010u, ""}};
  EXPECT_THAT(table.route(in), ElementsAre("B"));
  tags.clear();
  EXPECT_THAT(table.route(in), IsEmpty());
}

TEST(RoutingTest, UnknownKeywordIsAnIssueWithASuggestion) {
  const config::Config config = config_with(R"(
  - {name: r0, destinations: [A], continue: true}
  - {name: r1, destinations: [A], continue: true}
  - name: r2
    match:
      tags:
        StationNme: {equals: X}
        NoSuchKeywordAnywhere: {exists: true}
        PixelData: {equals: X}
        TransferSyntaxUID: {equals: "1.2.840.10008.1.2"}
        StudyComments: {exists: true}
    destinations: [B]
)");
  std::vector<config::ConfigIssue> issues;
  auto table = RoutingTable::compile(config, &issues);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().code, core::ErrorCode::kConfig);
  ASSERT_EQ(issues.size(), 5u);
  EXPECT_EQ(issues[0].path, "routes[2].match.tags.StationNme");
  EXPECT_EQ(issues[0].message, "unknown DICOM keyword (did you mean `StationName`?)");
  EXPECT_EQ(issues[1].path, "routes[2].match.tags.NoSuchKeywordAnywhere");
  EXPECT_EQ(issues[1].message, "unknown DICOM keyword");
  EXPECT_EQ(issues[2].path, "routes[2].match.tags.PixelData");
  EXPECT_THAT(issues[2].message, HasSubstr("only `exists` can test it"));
  EXPECT_EQ(issues[3].path, "routes[2].match.tags.TransferSyntaxUID");
  EXPECT_THAT(issues[3].message, HasSubstr("(0002,0010) is not a data set element"));
  // Only a private dictionary entry is named StudyComments; the standard one is retired.
  EXPECT_EQ(issues[4].path, "routes[2].match.tags.StudyComments");
  EXPECT_EQ(issues[4].message, "unknown DICOM keyword (did you mean `RETIRED_StudyComments`?)");
  EXPECT_THAT(table.error().message,
              HasSubstr("routes[2].match.tags.StationNme: unknown DICOM keyword (did you mean "
                        "`StationName`?)\n"));
}

TEST(RoutingTest, ConfigBuiltInCodeIsCheckedToo) {
  // compile() does not trust its input: a Config made in code skips the loader's checks.
  config::Config config;
  config::Destination destination;
  destination.name = "A";
  config.destinations.push_back(destination);
  config::Route route;
  route.name = "r";
  route.destinations = {"A", "Nope"};
  route.match.source = {"10.0.0.0/99"};
  config::TagCondition condition;
  condition.keyword = "StationName";
  condition.op = config::TagCondition::Op::kRegex;
  condition.value = "(";
  route.match.tags.push_back(condition);
  config.routes.push_back(route);
  route.is_default = true;
  route.match = {};
  route.destinations = {"A"};
  config.routes.push_back(route);
  config.routes.push_back(route);
  std::vector<config::ConfigIssue> issues;
  auto table = RoutingTable::compile(config, &issues);
  ASSERT_FALSE(table.ok());
  std::vector<std::string> paths;
  for (const auto& issue : issues) paths.push_back(issue.path);
  EXPECT_THAT(paths, ElementsAre("routes[0].match.source", "routes[0].match.tags.StationName.regex",
                                 "routes[0].destinations[1]", "routes[2].default"));
}

}  // namespace
}  // namespace gw::queue
