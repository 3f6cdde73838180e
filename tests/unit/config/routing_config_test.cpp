// destinations, routes, retry and forwarding (src/config/routing_config.cpp).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "unit/config/config_fixture.h"

namespace gw::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kTwoListeners = R"(
data_dir: /d
listeners:
  - {name: plain, port: 11112}
  - {name: secure, port: 2762}
destinations:
  - {name: A, ae_title: A, host: a, port: 104}
  - {name: B, ae_title: B, host: b, port: 104}
)";

std::string with(const std::string& more) { return std::string(kTwoListeners) + more; }

TEST_F(ConfigTest, EveryRoutingKeyParses) {
  // `retry:` after `destinations:` on purpose: the per-destination overrides still merge.
  const Config c = parse_ok(R"(
data_dir: /d
listeners:
  - {name: plain, port: 11112}
  - {name: secure, port: 2762}
destinations:
  - name: A
    ae_title: A
    host: a
    port: 104
    tls_profile: modern
    retry: {max_attempts: 3, max_backoff: 30s}
  - {name: B, ae_title: B, host: b, port: 104}
routes:
  - name: ct
    match:
      calling_ae: [" CT1 ", CT2]
      called_ae: DICOM_GW
      listener: [plain, secure]
      source: [10.0.0.0/8, "2001:db8::/32", 192.168.1.7]
      modality: [CT, PT]
      sop_class: 1.2.840.10008.5.1.4.1.1.2
      tags:
        StationName: {equals: CT_ROOM_1}
        InstitutionName: {regex: "Main.*"}
        BodyPartExamined: {exists: false}
    destinations: [A, B]
    continue: true
  - {name: rest, default: true, destinations: [B]}
retry:
  max_attempts: 50
  max_age: 7d
  initial_backoff: 10s
  max_backoff: 1h
forwarding:
  association_idle_timeout: 0
  lease: 2m
  circuit_breaker_failures: 3
  probe_interval: 1m
  batch: 100
)");
  EXPECT_EQ(c.retry.max_attempts, 50u);
  EXPECT_EQ(c.retry.max_age, Seconds(7 * 24 * 3600));
  EXPECT_EQ(c.retry.initial_backoff, Seconds(10));
  EXPECT_EQ(c.retry.max_backoff, Seconds(3600));
  EXPECT_EQ(c.forwarding.association_idle_timeout, Seconds(0));
  EXPECT_EQ(c.forwarding.lease, Seconds(120));
  EXPECT_EQ(c.forwarding.circuit_breaker_failures, 3u);
  EXPECT_EQ(c.forwarding.probe_interval, Seconds(60));
  EXPECT_EQ(c.forwarding.batch, 100u);

  ASSERT_EQ(c.destinations.size(), 2u);
  const Destination& a = c.destinations[0];
  EXPECT_EQ(a.tls_profile, TlsProfile::kModern);
  EXPECT_EQ(a.retry.max_attempts, 3u);                 // own
  EXPECT_EQ(a.retry.max_backoff, Seconds(30));         // own
  EXPECT_EQ(a.retry.max_age, Seconds(7 * 24 * 3600));  // top-level
  EXPECT_EQ(a.retry.initial_backoff, Seconds(10));     // top-level
  const Destination& b = c.destinations[1];
  EXPECT_EQ(b.tls_profile, TlsProfile::kBcp195Rfc8996);
  EXPECT_EQ(b.retry.max_attempts, 50u);
  EXPECT_EQ(b.retry.max_backoff, Seconds(3600));

  ASSERT_EQ(c.routes.size(), 2u);
  const Route& ct = c.routes[0];
  EXPECT_TRUE(ct.has_match);
  EXPECT_FALSE(ct.is_default);
  EXPECT_TRUE(ct.continue_matching);
  EXPECT_THAT(ct.match.calling_ae, ElementsAre(" CT1 ", "CT2"));
  EXPECT_THAT(ct.match.called_ae, ElementsAre("DICOM_GW"));
  EXPECT_THAT(ct.match.listener, ElementsAre("plain", "secure"));
  EXPECT_THAT(ct.match.source, ElementsAre("10.0.0.0/8", "2001:db8::/32", "192.168.1.7"));
  EXPECT_THAT(ct.match.modality, ElementsAre("CT", "PT"));
  EXPECT_THAT(ct.match.sop_class, ElementsAre("1.2.840.10008.5.1.4.1.1.2"));
  ASSERT_EQ(ct.match.tags.size(), 3u);
  EXPECT_EQ(ct.match.tags[0].keyword, "StationName");
  EXPECT_EQ(ct.match.tags[0].op, TagCondition::Op::kEquals);
  EXPECT_EQ(ct.match.tags[0].value, "CT_ROOM_1");
  EXPECT_EQ(ct.match.tags[1].keyword, "InstitutionName");
  EXPECT_EQ(ct.match.tags[1].op, TagCondition::Op::kRegex);
  EXPECT_EQ(ct.match.tags[1].value, "Main.*");
  EXPECT_EQ(ct.match.tags[2].keyword, "BodyPartExamined");
  EXPECT_EQ(ct.match.tags[2].op, TagCondition::Op::kExists);
  EXPECT_FALSE(ct.match.tags[2].exists);
  EXPECT_THAT(ct.destinations, ElementsAre("A", "B"));

  const Route& rest = c.routes[1];
  EXPECT_TRUE(rest.is_default);
  EXPECT_FALSE(rest.has_match);
  EXPECT_FALSE(rest.continue_matching);
  EXPECT_THAT(rest.destinations, ElementsAre("B"));
}

TEST_F(ConfigTest, DestinationRetryDefaultsToTheTopLevel) {
  const Config c = parse_ok(with(""));
  for (const Destination& d : c.destinations) {
    EXPECT_EQ(d.retry.max_attempts, 20u);
    EXPECT_EQ(d.retry.max_age, Seconds(72 * 3600));
    EXPECT_EQ(d.retry.initial_backoff, Seconds(5));
    EXPECT_EQ(d.retry.max_backoff, Seconds(600));
  }
}

TEST_F(ConfigTest, RetryAndForwardingRanges) {
  auto issues = issues_of(with(R"(retry:
  max_attempts: 0
  max_age: 366d
  initial_backoff: 2d
  max_backoff: 0
forwarding:
  association_idle_timeout: 25h
  lease: 5s
  circuit_breaker_failures: -1
  probe_interval: 0
  batch: 1001
  bach: 1
)"));
  EXPECT_THAT(
      paths_of(issues),
      ElementsAre("retry.max_attempts", "retry.max_age", "retry.initial_backoff",
                  "retry.max_backoff", "forwarding.bach", "forwarding.association_idle_timeout",
                  "forwarding.lease", "forwarding.circuit_breaker_failures",
                  "forwarding.probe_interval", "forwarding.batch"));
  EXPECT_EQ(message_at(issues, "retry.max_attempts"), "expected an integer 1-100000, got `0`");
  EXPECT_EQ(message_at(issues, "retry.max_age"), "must be between 1s and 365d, got `366d`");
  EXPECT_EQ(message_at(issues, "retry.initial_backoff"), "must be between 1s and 24h, got `2d`");
  EXPECT_EQ(message_at(issues, "forwarding.lease"), "must be between 10s and 24h, got `5s`");
  EXPECT_EQ(message_at(issues, "forwarding.bach"), "unknown key (did you mean `batch`?)");

  issues = issues_of(with("retry: {initial_backoff: 10m, max_backoff: 5m}\n"));
  EXPECT_THAT(paths_of(issues), ElementsAre("retry.initial_backoff"));
  EXPECT_EQ(issues[0].message, "must not be longer than max_backoff (300s), got 600s");
}

TEST_F(ConfigTest, DestinationRetryOverridesAreChecked) {
  const auto issues = issues_of(R"(
data_dir: /d
listeners: [{name: plain, port: 1}]
retry: {max_backoff: 1m}
destinations:
  - {name: A, ae_title: A, host: a, port: 1, retry: {initial_backoff: 2m}}
  - {name: B, ae_title: B, host: b, port: 1, retry: {max_atempts: 3}}
  - {name: C, ae_title: C, host: c, port: 1, retry: 5, tls_profile: tls13}
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("destinations[0].retry", "destinations[1].retry.max_atempts",
                          "destinations[2].tls_profile", "destinations[2].retry"));
  EXPECT_EQ(issues[0].message, "initial_backoff (120s) must not be longer than max_backoff (60s)");
  EXPECT_EQ(issues[1].message, "unknown key (did you mean `max_attempts`?)");
  EXPECT_THAT(issues[2].message, HasSubstr("bcp195-rfc8996, bcp195-nd, bcp195-extended, modern"));
  EXPECT_EQ(issues[3].message, "expected a mapping of keys");
}

TEST_F(ConfigTest, UnknownDestinationListsTheConfiguredOnes) {
  auto issues = issues_of(with("routes:\n  - {name: r, destinations: [A, PACS2]}\n"));
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "routes[0].destinations[1]");
  EXPECT_EQ(issues[0].message, "unknown destination `PACS2` (configured: A, B)");

  issues = issues_of(std::string(kMinimal) + "routes:\n  - {name: r, destinations: [PACS]}\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].message, "unknown destination `PACS` (no destinations are configured)");
}

TEST_F(ConfigTest, DuplicateDestinationAndRouteNames) {
  const auto issues = issues_of(with(R"(  - {name: A, ae_title: A2, host: a2, port: 104}
routes:
  - {name: r, destinations: [A]}
  - {name: r, destinations: [B]}
)"));
  EXPECT_THAT(paths_of(issues), ElementsAre("destinations[2].name", "routes[1].name"));
  EXPECT_EQ(issues[0].message, "duplicate destination name `A` (also destinations[0])");
  EXPECT_EQ(issues[1].message, "duplicate route name `r` (also routes[0])");
}

TEST_F(ConfigTest, DestinationNamesClashWithoutRegardToCase) {
  // As the API's names (same_destination_name): `a` and `A` would share one outbox and one URL.
  const auto issues =
      issues_of(with("  - {name: a, ae_title: A2, host: a2, port: 104}\n"
                     "  - {name: b, ae_title: B2, host: b2, port: 104}\n"));
  EXPECT_THAT(paths_of(issues), ElementsAre("destinations[2].name", "destinations[3].name"));
  EXPECT_EQ(issues[0].message,
            "duplicate destination name `a`: destinations[0] is `A` (names are compared without "
            "regard to case)");
}

TEST_F(ConfigTest, DefaultRoutes) {
  const auto issues = issues_of(with(R"(routes:
  - {name: d1, default: true, destinations: [A]}
  - {name: d2, default: true, destinations: [B]}
  - {name: d3, default: true, match: {modality: CT}, destinations: [B]}
  - {name: d4, default: maybe, destinations: [B]}
)"));
  EXPECT_THAT(paths_of(issues), ElementsAre("routes[2].match", "routes[3].default",
                                            "routes[1].default", "routes[2].default"));
  EXPECT_EQ(issues[0].message,
            "a default route has no `match`: it applies to what no other route matched");
  EXPECT_EQ(issues[1].message, "expected a boolean (true or false)");
  EXPECT_EQ(issues[2].message, "only one route may be the default (also routes[0])");
}

TEST_F(ConfigTest, MatchFieldsAreValidated) {
  const auto issues = issues_of(with(R"(routes:
  - name: r
    match:
      calling_ae: [CT1, "ABCDEFGHIJKLMNOPQ"]
      called_ae: []
      listener: [plain, secrue, other]
      source: [10.0.0.0/33, "2001:db8::/129", 10.0.0.0/x, not-an-ip, "::1", 10.1.2.3/32]
      modality: [CT, ct]
      sop_class: [1.2.840.10008.5.1.4.1.1.2, 1.2.abc, 1..2, "1234567890123456789012345678901234567890123456789012345678901234.5"]
      tags: [StationName]
    destinations: [A]
)"));
  EXPECT_THAT(paths_of(issues),
              ElementsAre("routes[0].match.calling_ae[1]", "routes[0].match.called_ae",
                          "routes[0].match.listener[1]", "routes[0].match.listener[2]",
                          "routes[0].match.source[0]", "routes[0].match.source[1]",
                          "routes[0].match.source[2]", "routes[0].match.source[3]",
                          "routes[0].match.modality[1]", "routes[0].match.sop_class[1]",
                          "routes[0].match.sop_class[2]", "routes[0].match.sop_class[3]",
                          "routes[0].match.tags"));
  EXPECT_THAT(message_at(issues, "routes[0].match.calling_ae[1]"), HasSubstr("at most 16"));
  EXPECT_EQ(message_at(issues, "routes[0].match.called_ae"),
            "expected an AE title or a non-empty list of them");
  EXPECT_EQ(message_at(issues, "routes[0].match.listener[1]"),
            "unknown listener `secrue` (did you mean `secure`?)");
  EXPECT_EQ(message_at(issues, "routes[0].match.listener[2]"),
            "unknown listener `other` (configured: plain, secure)");
  EXPECT_EQ(message_at(issues, "routes[0].match.source[0]"),
            "prefix length must be 0-32 for an IPv4 block, got `/33`");
  EXPECT_EQ(message_at(issues, "routes[0].match.source[1]"),
            "prefix length must be 0-128 for an IPv6 block, got `/129`");
  EXPECT_THAT(message_at(issues, "routes[0].match.source[3]"),
              HasSubstr("expected an IPv4 or IPv6 address or CIDR block"));
  EXPECT_THAT(message_at(issues, "routes[0].match.modality[1]"),
              HasSubstr("expected a modality code such as CT or MR"));
  EXPECT_THAT(message_at(issues, "routes[0].match.sop_class[1]"),
              HasSubstr("expected a SOP Class UID"));
  EXPECT_THAT(message_at(issues, "routes[0].match.tags"), HasSubstr("expected a mapping"));
}

TEST_F(ConfigTest, ScalarMatchFieldsHaveTheKeyPath) {
  const auto issues = issues_of(with(R"(routes:
  - {name: r, match: {listener: nope, source: "10.0.0.0/40", modality: {a: 1}}, destinations: [A]}
)"));
  EXPECT_THAT(paths_of(issues), ElementsAre("routes[0].match.listener", "routes[0].match.source",
                                            "routes[0].match.modality"));
  EXPECT_EQ(issues[2].message, "expected a modality code or a list of them");
}

TEST_F(ConfigTest, TagConditions) {
  const auto issues = issues_of(with(R"(routes:
  - name: r
    match:
      tags:
        StationName: {equals: A, regex: B}
        InstitutionName: {}
        Modality: {regex: "CT("}
        BodyPartExamined: {exists: sometimes}
        SeriesDescription: {contains: x}
        PatientSex: "M"
    destinations: [A]
)"));
  EXPECT_THAT(
      paths_of(issues),
      ElementsAre("routes[0].match.tags.StationName", "routes[0].match.tags.InstitutionName",
                  "routes[0].match.tags.Modality.regex",
                  "routes[0].match.tags.BodyPartExamined.exists",
                  "routes[0].match.tags.SeriesDescription.contains",
                  "routes[0].match.tags.SeriesDescription", "routes[0].match.tags.PatientSex"));
  EXPECT_EQ(issues[0].message, "expected exactly one of equals, regex or exists");
  EXPECT_THAT(issues[2].message, HasSubstr("invalid regular expression `CT(`: "));
  EXPECT_EQ(issues[3].message, "expected a boolean (true or false)");
  EXPECT_EQ(issues[6].message, "expected a mapping of keys");
}

TEST_F(ConfigTest, EmptyMatchMatchesEverything) {
  const Config c = parse_ok(with("routes:\n  - {name: r, match: {}, destinations: [A]}\n"));
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_TRUE(c.routes[0].has_match);
  EXPECT_THAT(c.routes[0].match.calling_ae, IsEmpty());
  EXPECT_THAT(c.routes[0].match.tags, IsEmpty());
}

TEST_F(ConfigTest, UnknownRouteAndMatchKeys) {
  const auto issues = issues_of(with(R"(routes:
  - {name: r, match: {source_ip: 10.0.0.0/8, tag: {}}, destinations: [A], contine: true}
)"));
  EXPECT_THAT(paths_of(issues),
              ElementsAre("routes[0].contine", "routes[0].match.source_ip", "routes[0].match.tag"));
  EXPECT_EQ(issues[0].message, "unknown key (did you mean `continue`?)");
  EXPECT_EQ(issues[1].message, "unknown key (did you mean `source`?)");
  EXPECT_EQ(issues[2].message, "unknown key (did you mean `tags`?)");
}

}  // namespace
}  // namespace gw::config
