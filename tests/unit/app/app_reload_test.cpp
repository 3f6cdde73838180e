// What a configuration reload reports as needing a restart (restart_only_changes).
#include "app/app_reload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace gw::app {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

config::Config parse(const std::string& more) {
  auto c = config::parse_config("data_dir: /d\nlisteners:\n  - {name: plain, port: 11112}\n" + more,
                                "/");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(c).value() : config::Config{};
}

TEST(RestartOnlyChanges, NothingChanged) {
  const auto a = parse("logging: {level: info}\n");
  EXPECT_THAT(restart_only_changes(a, parse("logging: {level: info}\n")), IsEmpty());
}

TEST(RestartOnlyChanges, LoggingLevelNeedsARestart) {
  // The level is set once at start: a reload that changes it must say so, not ignore it.
  EXPECT_THAT(
      restart_only_changes(parse("logging: {level: info}\n"), parse("logging: {level: debug}\n")),
      ElementsAre("logging"));
}

TEST(RestartOnlyChanges, AcmeAndDatabaseConnectionSettings) {
  EXPECT_THAT(restart_only_changes(parse(""), parse("acme: {renew_before_days: 10}\n")),
              ElementsAre("acme"));
  EXPECT_THAT(restart_only_changes(parse(""), parse("database: {pool_size: 3}\n")),
              ElementsAre("database"));
}

TEST(RestartOnlyChanges, TheFreeSpaceReserveNeedsARestart) {
  EXPECT_THAT(restart_only_changes(parse(""), parse("storage: {min_free_mb: 10}\n")),
              ElementsAre("storage"));
}

TEST(RestartOnlyChanges, TheAuditMessageFormatNeedsARestart) {
  const auto running = parse("audit: {syslog: {enabled: true, host: arr, tls: false}}\n");
  EXPECT_THAT(restart_only_changes(running, parse("audit: {syslog: {enabled: true, host: arr, "
                                                  "tls: false, format: dicom}}\n")),
              ElementsAre("audit"));
  EXPECT_THAT(restart_only_changes(running, parse("audit: {syslog: {enabled: true, host: arr, "
                                                  "tls: false, audit_source_id: X}}\n")),
              ElementsAre("audit"));
}

TEST(RestartOnlyChanges, EveryRestartOnlySectionIsNamed) {
  const auto running = parse("");
  const auto fresh = parse(R"(ae_title: OTHER
node_id: n2
storage: {fsync: false}
http: {port: 9090}
audit: {syslog: {enabled: true, host: collector, tls: false}}
logging: {level: warn}
)");
  EXPECT_THAT(restart_only_changes(running, fresh),
              ElementsAre("ae_title", "node_id", "storage", "audit", "http", "logging"));
}

}  // namespace
}  // namespace gw::app
