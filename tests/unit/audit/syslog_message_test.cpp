#include "audit/syslog_message.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace gw::audit {
namespace {

index::AuditEvent sample() {
  index::AuditEvent e;
  e.id = 42;
  e.at_ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  e.actor = "user:alice";
  e.action = "auth.login";
  e.target = "user:alice";
  e.outcome = "ok";
  e.peer_address = "127.0.0.1:5555";
  e.details = R"({"method":"password"})";
  return e;
}

SyslogOrigin origin() {
  SyslogOrigin o;
  o.hostname = "gw1.example.org";
  o.procid = "1234";
  return o;
}

TEST(SyslogMessageTest, SeverityIsNoticeForOkAndWarningOtherwise) {
  EXPECT_EQ(syslog_severity("ok"), 5);
  EXPECT_EQ(syslog_severity("failed"), 4);
  EXPECT_EQ(syslog_severity("denied"), 4);
  // Facility 10 (authpriv): <85> and <84>, as IHE ATNA collectors expect.
  EXPECT_EQ(syslog_pri("ok"), 85);
  EXPECT_EQ(syslog_pri("failed"), 84);
}

TEST(SyslogMessageTest, TimestampIsUtcWithMilliseconds) {
  EXPECT_EQ(syslog_timestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(syslog_timestamp(1714564800123), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(syslog_timestamp(1714564800005), "2024-05-01T12:00:00.005Z");
  EXPECT_EQ(syslog_timestamp(-1), "1969-12-31T23:59:59.999Z");
}

TEST(SyslogMessageTest, ParamValuesEscapeQuoteBackslashAndBracket) {
  EXPECT_EQ(escape_param_value(R"(a"b\c]d)"), R"(a\"b\\c\]d)");
  EXPECT_EQ(escape_param_value("[x]"), "[x\\]");  // only the closing bracket is special
  EXPECT_EQ(escape_param_value("caf\xC3\xA9"), "caf\xC3\xA9");  // valid UTF-8 stays
  EXPECT_EQ(escape_param_value("a\xFF"
                               "b"),
            "a\xEF\xBF\xBD"
            "b");                                         // invalid: U+FFFD
  EXPECT_EQ(escape_param_value("\xC3"), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(escape_param_value("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(escape_param_value(""), "");
}

TEST(SyslogMessageTest, HeaderFieldsArePrintableAsciiCutAndNilWhenEmpty) {
  EXPECT_EQ(header_field("", 32), "-");
  EXPECT_EQ(header_field("a b\tc", 32), "a_b_c");
  EXPECT_EQ(header_field("caf\xC3\xA9", 32), "caf__");
  EXPECT_EQ(header_field(std::string(40, 'x'), 32), std::string(32, 'x'));
}

TEST(SyslogMessageTest, MessageHasEveryRfc5424Field) {
  EXPECT_EQ(format_syslog_message(sample(), origin()),
            "<85>1 2024-05-01T12:00:00.123Z gw1.example.org dicom-gw 1234 auth.login "
            "[dicomgw@32473 id=\"42\" actor=\"user:alice\" action=\"auth.login\" "
            "target=\"user:alice\" outcome=\"ok\" peer=\"127.0.0.1:5555\"] "
            "{\"method\":\"password\"}");
}

TEST(SyslogMessageTest, FailedOutcomeEscapedValuesAndNoPeer) {
  auto e = sample();
  e.outcome = "denied";
  e.peer_address.clear();
  e.target = R"(ae:"X]\Y")";
  e.action = "association.rejected";
  const auto m = format_syslog_message(e, SyslogOrigin{});
  EXPECT_EQ(m.rfind("<84>1 2024-05-01T12:00:00.123Z - dicom-gw - association.rejected ", 0), 0u)
      << m;
  EXPECT_NE(m.find(R"(target="ae:\"X\]\\Y\"")"), std::string::npos) << m;
  EXPECT_EQ(m.find("peer="), std::string::npos) << m;
}

TEST(SyslogMessageTest, DetailsAreAsciiJsonWithoutBom) {
  auto e = sample();
  e.details = "{\"station\":\"caf\xC3\xA9\",\"n\":1}";
  auto m = format_syslog_message(e, origin());
  EXPECT_NE(m.find(R"(] {"n":1,"station":"caf\u00e9"})"), std::string::npos) << m;
  EXPECT_EQ(m.find("\xEF\xBB\xBF"), std::string::npos);
  for (char c : m) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << m;

  e.details = "";
  EXPECT_TRUE(format_syslog_message(e, origin()).ends_with("] {}"));
  e.details = "not json";  // the index never stores this; sent as a JSON string, unchanged
  EXPECT_TRUE(format_syslog_message(e, origin()).ends_with(R"(] "not json")"));
}

TEST(SyslogMessageTest, LongDetailsAreCutToFitTheMessageLimit) {
  auto e = sample();
  nlohmann::json details;
  details["instances"] = 3000;
  details["sop_instance_uids"] = nlohmann::json::array();
  for (int i = 0; i < 3000; ++i) {
    details["sop_instance_uids"].push_back("1.2.826.0.1.3680043.10.1234.5678." + std::to_string(i));
  }
  e.details = details.dump();
  const auto m = format_syslog_message(e, origin());
  EXPECT_LE(m.size(), kMaxMessageOctets);
  const auto msg = nlohmann::json::parse(m.substr(m.find("] ") + 2));
  EXPECT_EQ(msg["truncated"], true);
  EXPECT_EQ(msg["instances"], 3000);  // scalars stay
  EXPECT_FALSE(msg["sop_instance_uids"].empty());
  EXPECT_LT(msg["sop_instance_uids"].size(), 3000u);
  EXPECT_EQ(msg["sop_instance_uids"][0], "1.2.826.0.1.3680043.10.1234.5678.0");  // the first kept

  e.details = details.dump().substr(0, 100);  // not JSON and short: unchanged
  EXPECT_LE(format_syslog_message(e, origin()).size(), kMaxMessageOctets);
  e.details = std::string(10000, 'x');  // not JSON and long
  EXPECT_TRUE(format_syslog_message(e, origin()).ends_with(R"(] {"truncated":true})"));
}

TEST(SyslogMessageTest, MsgIdIsTheActionCutTo32Octets) {
  auto e = sample();
  e.action = std::string(40, 'a');
  const auto m = format_syslog_message(e, origin());
  EXPECT_NE(m.find(" 1234 " + std::string(32, 'a') + " [dicomgw@32473"), std::string::npos) << m;
  // The SD-PARAM keeps the whole action.
  EXPECT_NE(m.find("action=\"" + std::string(40, 'a') + "\""), std::string::npos) << m;
}

TEST(SyslogMessageTest, OctetCountingFramesBytesNotCharacters) {
  std::string out;
  append_octet_counted(out, "abc");
  append_octet_counted(out, "h\xC3\xA9llo");  // 6 octets, 5 characters
  EXPECT_EQ(out, "3 abc6 h\xC3\xA9llo");
  out.clear();
  const auto m = format_syslog_message(sample(), origin());
  append_octet_counted(out, m);
  EXPECT_EQ(out, std::to_string(m.size()) + " " + m);
}

}  // namespace
}  // namespace gw::audit
