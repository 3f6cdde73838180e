// database.encryption_key_env: a variable *name*. A value that looks like the key itself (an
// operator pasted it there) is refused without being repeated, so it never reaches stderr or
// the journal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config_fixture.h"

namespace gw::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string with_env(const std::string& value) {
  return std::string(kMinimal) + "database: {encryption_key_env: \"" + value + "\"}\n";
}

TEST_F(ConfigTest, AKeyPastedAsTheVariableNameIsRefusedAndNotRepeated) {
  const std::string keys[] = {
      "q7Vt3kP+0sYx/9bLw2Rz8mN4cJ6hUeA1fGdK5iTo0aE=",                      // base64, 44 chars
      "3f9a0c1e7b2d4f6a8c0e2b4d6f8a0c1e3f5a7b9d1c3e5f7a9b0d2c4e6f8a0b1c",  // hex, a digit first
      "deadbeefcafef00d0123456789abcdef0123456789abcdefdeadbeefcafef00d",  // hex, a name by rules
      "DEADBEEFCAFEF00D0123456789ABCDEF0123456789ABCDEF",                  // upper hex, no _
      "q7Vt3kP_0sYx9bLw2Rz8mN4cJ6hUeA1fGdK5iTo0aE",  // base64url without -: a name by the rules
      "short key",                                   // a space: not a name either
  };
  for (const auto& key : keys) {
    const auto issues = issues_of(with_env(key));
    const std::string message = message_at(issues, "database.encryption_key_env");
    EXPECT_THAT(message, HasSubstr("looks like a key")) << key;
    EXPECT_THAT(message, Not(HasSubstr(key))) << key;
    for (const auto& issue : issues) {
      EXPECT_THAT(issue.message, Not(HasSubstr(key.substr(0, 12)))) << key;
    }
  }
}

TEST_F(ConfigTest, VariableNamesStillPassLongOnesInUpperCaseWithUnderscores) {
  EXPECT_EQ(parse_ok(with_env("MY_KEY")).database.encryption_key_env, "MY_KEY");
  EXPECT_EQ(
      parse_ok(with_env("ACME_DICOM_GATEWAY_DB_ENCRYPTION_KEY_SITE_2")).database.encryption_key_env,
      "ACME_DICOM_GATEWAY_DB_ENCRYPTION_KEY_SITE_2");
  EXPECT_EQ(parse_ok(with_env("dicom_gw_key")).database.encryption_key_env, "dicom_gw_key");
  // A short name starting with a digit: an ordinary mistake, said so (still not repeated).
  const auto issues = issues_of(with_env("1BAD"));
  const std::string message = message_at(issues, "database.encryption_key_env");
  EXPECT_THAT(message, HasSubstr("not starting with a digit"));
  EXPECT_THAT(message, Not(HasSubstr("1BAD")));
}

}  // namespace
}  // namespace gw::config
