// audit.syslog: the TLS file overrides and what a start with TLS needs.
#include <gtest/gtest.h>

#include <string>

#include "config_fixture.h"

namespace gw::config {
namespace {

constexpr const char* kBase = "data_dir: /var/lib/dicom-gw\nlisteners:\n  - {name: a, port: 104}\n";

class SyslogConfigTest : public ConfigTest {};

TEST_F(SyslogConfigTest, OverridesAreReadAndDefaultToNothing) {
  write_certs("syslog");
  const Config c = parse_ok(std::string(kBase) +
                            "audit:\n  syslog: {enabled: true, host: siem.example.org, "
                            "ca_file: syslog/ca.pem, cert_file: syslog/cert.pem, key_file: "
                            "syslog/key.pem}\n");
  EXPECT_EQ(c.audit.syslog.ca_file, dir_ / "syslog/ca.pem");
  EXPECT_EQ(c.audit.syslog.cert_file, dir_ / "syslog/cert.pem");
  EXPECT_EQ(c.audit.syslog.key_file, dir_ / "syslog/key.pem");
  EXPECT_EQ(c.audit.syslog.port, 6514);
  EXPECT_TRUE(c.audit.syslog.tls);

  const Config plain = parse_ok(std::string(kBase) + "audit:\n  syslog: {enabled: false}\n");
  EXPECT_TRUE(plain.audit.syslog.ca_file.empty());
  EXPECT_TRUE(plain.audit.syslog.cert_file.empty());
}

TEST_F(SyslogConfigTest, TlsNeedsACaHereOrInTheTlsSection) {
  const auto issues =
      issues_of(std::string(kBase) + "audit:\n  syslog: {enabled: true, host: siem}\n");
  EXPECT_NE(message_at(issues, "audit.syslog.ca_file").find("tls.ca_file"), std::string::npos);

  write_certs();
  parse_ok(std::string(kBase) + "tls: {ca_file: tls/ca.pem}\naudit:\n  syslog: {enabled: true, " +
           "host: siem}\n");
  // Plain TCP needs no CA.
  parse_ok(std::string(kBase) + "audit:\n  syslog: {enabled: true, host: siem, tls: false}\n");
}

TEST_F(SyslogConfigTest, MissingFilesHalfAPairAndNoHostAreRefused) {
  write_certs("syslog");
  auto issues = issues_of(std::string(kBase) +
                          "audit:\n  syslog: {enabled: true, host: siem, ca_file: nope.pem}\n");
  EXPECT_NE(message_at(issues, "audit.syslog.ca_file").find("not found"), std::string::npos);

  issues = issues_of(std::string(kBase) +
                     "audit:\n  syslog: {enabled: true, host: siem, ca_file: syslog/ca.pem, "
                     "cert_file: syslog/cert.pem}\n");
  EXPECT_NE(message_at(issues, "audit.syslog.key_file").find("go together"), std::string::npos);

  issues =
      issues_of(std::string(kBase) + "audit:\n  syslog: {enabled: true, host: \"\", tls: false}\n");
  EXPECT_NE(message_at(issues, "audit.syslog.host").find("required"), std::string::npos);
}

TEST_F(SyslogConfigTest, FormatIsJsonOrDicomWithItsSourceIdentification) {
  const Config json = parse_ok(std::string(kBase) + "audit:\n  syslog: {enabled: false}\n");
  EXPECT_EQ(json.audit.syslog.format, SyslogFormat::kJson);
  EXPECT_TRUE(json.audit.syslog.audit_source_id.empty());

  const Config dicom = parse_ok(std::string(kBase) +
                                "audit:\n  syslog: {enabled: true, host: arr, tls: false, "
                                "format: dicom, audit_source_id: GW1, enterprise_site_id: RAD}\n");
  EXPECT_EQ(dicom.audit.syslog.format, SyslogFormat::kDicom);
  EXPECT_EQ(dicom.audit.syslog.audit_source_id, "GW1");
  EXPECT_EQ(dicom.audit.syslog.enterprise_site_id, "RAD");

  const auto issues =
      issues_of(std::string(kBase) + "audit:\n  syslog: {enabled: false, format: xml}\n");
  EXPECT_NE(message_at(issues, "audit.syslog.format").find("dicom"), std::string::npos);
}

}  // namespace
}  // namespace gw::config
