#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "unit/config/config_fixture.h"

namespace gw::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(ConfigTest, MinimalConfigGetsEveryDefault) {
  const Config c = parse_ok(kMinimal);
  EXPECT_EQ(c.ae_title, "DICOM_GW");
  EXPECT_EQ(c.data_dir, fs::path("/var/lib/dicom-gw"));
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].name, "plain");
  EXPECT_EQ(c.listeners[0].bind, "0.0.0.0");
  EXPECT_EQ(c.listeners[0].port, 11112);
  EXPECT_FALSE(c.listeners[0].tls);

  EXPECT_TRUE(c.accept.calling_ae_titles.empty());
  EXPECT_TRUE(c.accept.called_ae_titles.empty());
  EXPECT_TRUE(c.accept.require_tls_for.empty());

  EXPECT_FALSE(c.tls.enabled);
  EXPECT_TRUE(c.tls.cert_file.empty());
  EXPECT_TRUE(c.tls.ca_file.empty());
  EXPECT_FALSE(c.tls.no_verify);
  EXPECT_EQ(c.tls.peer_certificate, PeerCertificate::kRequired);
  EXPECT_EQ(c.tls.profile, TlsProfile::kBcp195Rfc8996);
  EXPECT_EQ(c.tls.min_version, "1.2");
  EXPECT_EQ(c.tls.ciphers, "");

  EXPECT_EQ(c.limits.max_associations, 64u);
  EXPECT_EQ(c.limits.max_pdu_length, 262144u);
  EXPECT_EQ(c.limits.max_associate_rq_length, 65536u);
  EXPECT_EQ(c.limits.max_async_operations, 16u);
  EXPECT_EQ(c.limits.artim_timeout, Seconds(30));
  EXPECT_EQ(c.limits.idle_timeout, Seconds(300));
  EXPECT_EQ(c.limits.shutdown_grace, Seconds(30));

  EXPECT_TRUE(c.destinations.empty());
  EXPECT_TRUE(c.routes.empty());
  EXPECT_EQ(c.retry.max_attempts, 20u);
  EXPECT_EQ(c.retry.max_age, Seconds(72 * 3600));
  EXPECT_EQ(c.retry.initial_backoff, Seconds(5));
  EXPECT_EQ(c.retry.max_backoff, Seconds(600));
  EXPECT_EQ(c.forwarding.association_idle_timeout, Seconds(10));
  EXPECT_EQ(c.forwarding.lease, Seconds(300));
  EXPECT_EQ(c.forwarding.circuit_breaker_failures, 5u);
  EXPECT_EQ(c.forwarding.probe_interval, Seconds(30));
  EXPECT_EQ(c.forwarding.batch, 32u);
  EXPECT_TRUE(c.storage.fsync);
  EXPECT_FALSE(c.storage.encrypt);
  EXPECT_EQ(c.storage.duplicates, DuplicatePolicy::kKeepFirst);
  EXPECT_EQ(c.storage.min_free_mb, 1024u);
  EXPECT_EQ(c.database.url, "");
  EXPECT_EQ(c.database.encryption_key_env, "DICOM_GW_DB_ENCRYPTION_KEY");
  EXPECT_TRUE(c.http.enabled);
  EXPECT_EQ(c.http.bind, "127.0.0.1");
  EXPECT_EQ(c.http.port, 8080);
  EXPECT_FALSE(c.http.tls.enabled);
  EXPECT_EQ(c.acme.certbot, fs::path("/usr/bin/certbot"));
  EXPECT_EQ(c.acme.server, "https://acme-v02.api.letsencrypt.org/directory");
  EXPECT_EQ(c.acme.renew_before_days, 30);
  EXPECT_FALSE(c.audit.syslog.enabled);
  EXPECT_EQ(c.audit.syslog.port, 6514);
  EXPECT_TRUE(c.audit.syslog.tls);
  EXPECT_EQ(c.logging.level, "info");
  EXPECT_TRUE(c.source_path.empty());
}

TEST_F(ConfigTest, EmptyValuesMeanDefaults) {
  const Config c = parse_ok(std::string(kMinimal) + "tls:\naccept:\nlimits: ~\n");
  EXPECT_FALSE(c.tls.enabled);
  EXPECT_EQ(c.limits.max_associations, 64u);
}

TEST_F(ConfigTest, FullDesignConfigParses) {
  write_certs();
  const std::string tls = (dir_ / "tls").string();
  const std::string yaml = R"(
ae_title: DICOM_GW
data_dir: /var/lib/dicom-gw
listeners:
  - {name: plain, bind: 0.0.0.0, port: 11112, tls: false}
  - {name: secure, bind: 0.0.0.0, port: 2762, tls: true}
accept:
  calling_ae_titles: [CT1, MR1]
  called_ae_titles: [DICOM_GW]
  require_tls_for: [MR1]
tls:
  enabled: true
  cert_file: )" + tls + R"(/cert.pem
  key_file:  )" + tls + R"(/key.pem
  ca_file:   )" + tls + R"(/ca.pem
  no_verify: false
  peer_certificate: optional
  profile: bcp195-nd
  min_version: "1.3"
  ciphers: ""
limits:
  max_associations: 10
  max_pdu_length: 16384
  max_associate_rq_length: 32768
  max_async_operations: 4
  artim_timeout: 10s
  idle_timeout: 5m
  shutdown_grace: 0
destinations:
  - name: Secure_PACS
    ae_title: SECURE_PACS
    host: pacs.example.com
    port: 2762
    calling_ae_title: GW_OUT
    tls_enabled: true
    tls_cert_path: )" + tls +
                           R"(/cert.pem
    tls_key_path:  )" + tls +
                           R"(/key.pem
    tls_ca_path:   )" + tls +
                           R"(/ca.pem
    verify_hostname: true
    max_associations: 4
    max_async_operations: 8
  - {name: archive, ae_title: ARCHIVE, host: 10.0.0.5, port: 104}
routes:
  - {name: ct-to-pacs, match: {calling_ae: CT1, modality: CT}, destinations: [Secure_PACS], continue: true}
  - {name: everything, destinations: [archive]}
storage:
  fsync: true
  encrypt: true
  duplicates: reject
  min_free_mb: 0
database:
  url: postgresql://gw@db.example.com/gw
  encryption_key_env: MY_KEY
http:
  bind: 127.0.0.1
  port: 8443
  tls: {enabled: true, cert_file: )" +
                           tls + R"(/cert.pem, key_file: )" + tls + R"(/key.pem}
acme:
  certbot: /usr/bin/certbot
  server: https://localhost:14000/dir
  renew_before_days: 20
audit:
  syslog: {enabled: true, host: syslog.example.com, port: 6514, tls: true}
logging:
  level: debug
)";
  const Config c = parse_ok(yaml);
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_TRUE(c.listeners[1].tls);
  EXPECT_EQ(c.listeners[1].port, 2762);
  EXPECT_THAT(c.accept.calling_ae_titles, ElementsAre("CT1", "MR1"));
  EXPECT_THAT(c.accept.called_ae_titles, ElementsAre("DICOM_GW"));
  EXPECT_THAT(c.accept.require_tls_for, ElementsAre("MR1"));
  EXPECT_TRUE(c.tls.enabled);
  EXPECT_EQ(c.tls.ca_file, dir_ / "tls/ca.pem");
  EXPECT_EQ(c.tls.peer_certificate, PeerCertificate::kOptional);
  EXPECT_EQ(c.tls.profile, TlsProfile::kBcp195Nd);
  EXPECT_EQ(c.tls.min_version, "1.3");
  EXPECT_EQ(c.limits.max_associations, 10u);
  EXPECT_EQ(c.limits.max_pdu_length, 16384u);
  EXPECT_EQ(c.limits.max_associate_rq_length, 32768u);
  EXPECT_EQ(c.limits.max_async_operations, 4u);
  EXPECT_EQ(c.limits.artim_timeout, Seconds(10));
  EXPECT_EQ(c.limits.idle_timeout, Seconds(300));
  EXPECT_EQ(c.limits.shutdown_grace, Seconds(0));
  ASSERT_EQ(c.destinations.size(), 2u);
  const Destination& d = c.destinations[0];
  EXPECT_EQ(d.name, "Secure_PACS");
  EXPECT_EQ(d.ae_title, "SECURE_PACS");
  EXPECT_EQ(d.host, "pacs.example.com");
  EXPECT_EQ(d.port, 2762);
  EXPECT_EQ(d.calling_ae_title, "GW_OUT");
  EXPECT_TRUE(d.tls_enabled);
  EXPECT_EQ(d.tls_key_path, dir_ / "tls/key.pem");
  EXPECT_EQ(d.max_associations, 4u);
  EXPECT_EQ(d.max_async_operations, 8u);
  EXPECT_EQ(c.destinations[1].max_async_operations, 1u);  // proposes no window by default
  EXPECT_EQ(c.destinations[1].port, 104);
  EXPECT_FALSE(c.destinations[1].tls_enabled);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_TRUE(c.routes[0].has_match);
  EXPECT_EQ(c.routes[0].match.calling_ae, std::vector<std::string>{"CT1"});
  EXPECT_EQ(c.routes[0].match.called_ae.empty(), true);
  EXPECT_EQ(c.routes[0].match.modality, std::vector<std::string>{"CT"});
  EXPECT_TRUE(c.routes[0].continue_matching);
  EXPECT_THAT(c.routes[0].destinations, ElementsAre("Secure_PACS"));
  EXPECT_FALSE(c.routes[1].has_match);
  EXPECT_FALSE(c.routes[1].continue_matching);
  EXPECT_TRUE(c.storage.encrypt);
  EXPECT_EQ(c.storage.duplicates, DuplicatePolicy::kReject);
  EXPECT_EQ(c.storage.min_free_mb, 0u);
  EXPECT_EQ(c.database.url, "postgresql://gw@db.example.com/gw");
  EXPECT_EQ(c.database.encryption_key_env, "MY_KEY");
  EXPECT_EQ(c.http.port, 8443);
  EXPECT_TRUE(c.http.tls.enabled);
  EXPECT_EQ(c.acme.server, "https://localhost:14000/dir");
  EXPECT_EQ(c.acme.renew_before_days, 20);
  EXPECT_TRUE(c.audit.syslog.enabled);
  EXPECT_EQ(c.audit.syslog.host, "syslog.example.com");
  EXPECT_EQ(c.logging.level, "debug");
}

TEST_F(ConfigTest, ReportsEveryMistakeWithItsPath) {
  const std::string yaml = R"(
data_dir: /var/lib/dicom-gw
listeners:
  - {name: plain, port: 11112}
  - {name: other, port: 70000}
tls:
  profile: tls-best
destinations:
  - {name: pacs, ae_title: PACS, port: 104}
routes:
  - {name: r, destinations: [pacs, nowhere]}
storage:
  fsnyc: true
logging:
  level: verbose
)";
  const auto issues = issues_of(yaml);
  EXPECT_THAT(paths_of(issues),
              ElementsAre("listeners[1].port", "tls.profile", "destinations[0].host",
                          "storage.fsnyc", "logging.level", "routes[0].destinations[1]"));
  EXPECT_EQ(message_at(issues, "listeners[1].port"), "expected an integer 0-65535, got `70000`");
  EXPECT_THAT(message_at(issues, "tls.profile"),
              HasSubstr("bcp195-rfc8996, bcp195-nd, bcp195-extended, modern"));
  EXPECT_EQ(message_at(issues, "destinations[0].host"), "is required");
  EXPECT_EQ(message_at(issues, "storage.fsnyc"), "unknown key (did you mean `fsync`?)");
  EXPECT_EQ(message_at(issues, "routes[0].destinations[1]"),
            "unknown destination `nowhere` (configured: pacs)");

  // The error message carries them all, one "path: message" per line.
  auto result = parse_config(yaml, dir_);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(std::count(result.error().message.begin(), result.error().message.end(), '\n'), 5);
  EXPECT_THAT(result.error().message,
              HasSubstr("listeners[1].port: expected an integer 0-65535, got `70000`\n"));
}

TEST_F(ConfigTest, SixDifferentMistakes) {
  const auto issues = issues_of(R"(
ae_title: THIS_AE_TITLE_IS_TOO_LONG
data_dir: /d
listeners:
  - {name: a, port: 104, tls: maybe}
accept:
  calling_ae_title: [CT1]
limits:
  max_pdu_length: 1024
  max_async_operations: 0
destinations:
  - {name: pacs, ae_title: PACS, host: pacs, port: 0, max_async_operations: 257}
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("ae_title", "listeners[0].tls", "accept.calling_ae_title",
                          "limits.max_pdu_length", "limits.max_async_operations",
                          "destinations[0].port", "destinations[0].max_async_operations"));
  EXPECT_THAT(message_at(issues, "ae_title"), HasSubstr("at most 16"));
  EXPECT_EQ(message_at(issues, "listeners[0].tls"), "expected a boolean (true or false)");
  EXPECT_EQ(message_at(issues, "limits.max_pdu_length"),
            "expected an integer 4096-16777216, got `1024`");
  EXPECT_EQ(message_at(issues, "limits.max_async_operations"),
            "expected an integer 1-256, got `0`");
  EXPECT_EQ(message_at(issues, "destinations[0].port"), "expected an integer 1-65535, got `0`");
  EXPECT_EQ(message_at(issues, "destinations[0].max_async_operations"),
            "expected an integer 1-256, got `257`");
}

TEST_F(ConfigTest, UnknownKeysAreRefusedWithASuggestion) {
  auto issues = issues_of(std::string(kMinimal) + "accept:\n  calling_ae_title: [CT1]\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "accept.calling_ae_title");
  EXPECT_EQ(issues[0].message, "unknown key (did you mean `calling_ae_titles`?)");

  issues = issues_of(std::string(kMinimal) + "frobnicate: 1\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "frobnicate");
  EXPECT_THAT(issues[0].message, HasSubstr("unknown key (expected one of: ae_title, data_dir"));

  issues = issues_of("data_dir: /d\nlistener:\n  - {name: a, port: 1}\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("listener", "listeners"));
  EXPECT_EQ(issues[0].message, "unknown key (did you mean `listeners`?)");

  issues = issues_of(std::string(kMinimal) +
                     "routes:\n  - {name: r, match: {modalty: CT, sopclass: x}, "
                     "destinations: [a]}\ndestinations:\n  - {name: a, ae_title: A, host: h, "
                     "port: 1, tls: true}\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("destinations[0].tls", "routes[0].match.modalty",
                                            "routes[0].match.sopclass"));
  EXPECT_EQ(issues[0].message, "unknown key (did you mean `tls_enabled`?)");
  EXPECT_EQ(issues[1].message, "unknown key (did you mean `modality`?)");
  EXPECT_EQ(issues[2].message, "unknown key (did you mean `sop_class`?)");
}

TEST_F(ConfigTest, DuplicateKeysAreRefused) {
  const auto issues = issues_of(std::string(kMinimal) + "data_dir: /other\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "data_dir");
  EXPECT_EQ(issues[0].message, "duplicate key");
}

TEST_F(ConfigTest, Durations) {
  const Config c = parse_ok(std::string(kMinimal) +
                            "limits: {artim_timeout: 45, idle_timeout: 5m, shutdown_grace: 2h}\n");
  EXPECT_EQ(c.limits.artim_timeout, Seconds(45));
  EXPECT_EQ(c.limits.idle_timeout, Seconds(300));
  EXPECT_EQ(c.limits.shutdown_grace, Seconds(7200));
  EXPECT_EQ(
      parse_ok(std::string(kMinimal) + "limits: {idle_timeout: \"90s\"}\n").limits.idle_timeout,
      Seconds(90));

  const auto issues = issues_of(std::string(kMinimal) + R"(limits:
  artim_timeout: 5 minutes
  idle_timeout: 0
  shutdown_grace: 25h
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("limits.artim_timeout", "limits.idle_timeout", "limits.shutdown_grace"));
  EXPECT_THAT(issues[0].message, HasSubstr("expected a duration"));
  EXPECT_EQ(issues[1].message, "must be between 1s and 24h, got `0`");
  EXPECT_EQ(issues[2].message, "must be between 0s and 24h, got `25h`");

  for (const char* bad : {"-5", "1.5h", "10d", "h", "99999999999999999999h", "[1]"}) {
    const auto one = issues_of(std::string(kMinimal) + "limits: {idle_timeout: " + bad + "}\n");
    EXPECT_THAT(paths_of(one), ElementsAre("limits.idle_timeout")) << bad;
  }
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheBaseDir) {
  write_certs("certs");
  const Config c = parse_ok(R"(
data_dir: data
listeners: [{name: s, port: 2762, tls: true}]
tls: {enabled: true, cert_file: certs/cert.pem, key_file: ./certs/key.pem, ca_file: certs/../certs/ca.pem}
destinations:
  - {name: p, ae_title: P, host: h, port: 1, tls_enabled: true, tls_ca_path: certs/ca.pem,
     tls_cert_path: certs/cert.pem, tls_key_path: certs/key.pem}
http: {tls: {enabled: true, cert_file: certs/cert.pem, key_file: certs/key.pem}}
acme: {certbot: /usr/local/bin/certbot}
)");
  EXPECT_EQ(c.data_dir, dir_ / "data");
  EXPECT_EQ(c.tls.cert_file, dir_ / "certs/cert.pem");
  EXPECT_EQ(c.tls.key_file, dir_ / "certs/key.pem");
  EXPECT_EQ(c.tls.ca_file, dir_ / "certs/ca.pem");
  EXPECT_EQ(c.destinations[0].tls_ca_path, dir_ / "certs/ca.pem");
  EXPECT_EQ(c.destinations[0].tls_cert_path, dir_ / "certs/cert.pem");
  EXPECT_EQ(c.http.tls.key_file, dir_ / "certs/key.pem");
  EXPECT_EQ(c.acme.certbot, fs::path("/usr/local/bin/certbot"));
}

TEST_F(ConfigTest, TlsListenerNeedsTheTlsSectionAndReadableFiles) {
  auto issues = issues_of("data_dir: /d\nlisteners: [{name: s, port: 2762, tls: true}]\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "listeners[0].tls");
  EXPECT_THAT(issues[0].message, HasSubstr("tls.enabled: true"));

  write("tls/cert.pem", "x");
  fs::create_directories(dir_ / "tls/ca.pem");  // a directory, not a file
  issues = issues_of(R"(
data_dir: /d
listeners: [{name: s, port: 2762, tls: true}]
tls: {enabled: true, cert_file: tls/cert.pem, key_file: tls/key.pem, ca_file: tls/ca.pem,
      crl_file: tls/crl.pem}
)");
  EXPECT_THAT(paths_of(issues), ElementsAre("tls.key_file", "tls.ca_file", "tls.crl_file"));
  EXPECT_EQ(issues[0].message, "file not found: " + (dir_ / "tls/key.pem").string());
  EXPECT_THAT(issues[1].message, HasSubstr("is a directory"));

  issues = issues_of("data_dir: /d\nlisteners: [{name: s, port: 1}]\ntls: {enabled: true}\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("tls.cert_file", "tls.key_file", "tls.ca_file"));

  // No CA needed when peers are not verified.
  write_certs();
  const Config c = parse_ok(
      "data_dir: /d\nlisteners: [{name: s, port: 1, tls: true}]\n"
      "tls: {enabled: true, cert_file: tls/cert.pem, key_file: tls/key.pem, "
      "peer_certificate: none}\n");
  EXPECT_EQ(c.tls.peer_certificate, PeerCertificate::kNone);
}

TEST_F(ConfigTest, PeersBindAeTitlesToCertificates) {
  write_certs();
  const std::string head =
      "data_dir: /d\nlisteners: [{name: s, port: 2762, tls: true}]\n"
      "tls: {enabled: true, cert_file: tls/cert.pem, key_file: tls/key.pem, ca_file: tls/ca.pem}\n";
  const Config c = parse_ok(head + R"(peers:
  - {ae_title: CT1, certificate: {subject_cn: ct1.hospital.org}}
  - {ae_title: CT2, certificate: {san: "dns:ct2.hospital.org"}}
  - ae_title: MR1
    certificate: {sha256: "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"}
)");
  ASSERT_EQ(c.peers.size(), 3u);
  EXPECT_EQ(c.peers[0].ae_title, "CT1");
  EXPECT_EQ(c.peers[0].certificate.kind, CertificateMatch::Kind::kSubjectCn);
  EXPECT_EQ(c.peers[0].certificate.value, "ct1.hospital.org");
  EXPECT_EQ(c.peers[1].certificate.kind, CertificateMatch::Kind::kSan);
  EXPECT_EQ(c.peers[1].certificate.value, "DNS:ct2.hospital.org");  // type spelled canonically
  EXPECT_EQ(c.peers[2].certificate.kind, CertificateMatch::Kind::kSha256);
  EXPECT_EQ(c.peers[2].certificate.value,
            "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:"
            "66:77:88:99");

  auto issues = issues_of(head + R"(peers:
  - {ae_title: CT1}
  - {ae_title: THIS_AE_TITLE_IS_TOO_LONG, certificate: {subject_cn: a}}
  - {ae_title: CT3, certificate: {subject_cn: a, sha256: "AA"}}
  - {ae_title: CT4, certificate: {san: "X400:foo"}}
  - {ae_title: CT5, certificate: {sha256: "AA:BB"}}
  - {ae_title: CT6, certificate: {cn: a}}
  - {ae_title: CT7, certificate: ct7}
)");
  EXPECT_THAT(
      paths_of(issues),
      ElementsAre("peers[0].certificate", "peers[1].ae_title", "peers[2].certificate",
                  "peers[3].certificate.san", "peers[4].certificate.sha256",
                  "peers[5].certificate.cn", "peers[5].certificate", "peers[6].certificate"));
  EXPECT_THAT(message_at(issues, "peers[2].certificate"), HasSubstr("exactly one of"));
  EXPECT_THAT(message_at(issues, "peers[4].certificate.sha256"), HasSubstr("64 hex digits"));

  // Bindings only make sense with a TLS listener that asks for client certificates.
  issues = issues_of(
      "data_dir: /d\nlisteners: [{name: p, port: 104}]\n"
      "peers: [{ae_title: CT1, certificate: {subject_cn: ct1}}]\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("peers"));
  issues = issues_of(
      "data_dir: /d\nlisteners: [{name: s, port: 2762, tls: true}]\n"
      "tls: {enabled: true, cert_file: tls/cert.pem, key_file: tls/key.pem, "
      "peer_certificate: none}\n"
      "peers: [{ae_title: CT1, certificate: {subject_cn: ct1}}]\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("peers"));
  EXPECT_THAT(issues[0].message, HasSubstr("peer_certificate"));
  // Nor with unverified ones: a self-signed certificate could claim any bound name.
  issues = issues_of(
      "data_dir: /d\nlisteners: [{name: s, port: 2762, tls: true}]\n"
      "tls: {enabled: true, cert_file: tls/cert.pem, key_file: tls/key.pem, no_verify: true}\n"
      "peers: [{ae_title: CT1, certificate: {subject_cn: ct1}}]\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("peers"));
  EXPECT_THAT(issues[0].message, HasSubstr("no_verify"));
}

TEST_F(ConfigTest, DestinationTlsRules) {
  write_certs();
  const auto issues = issues_of(std::string(kMinimal) + R"(destinations:
  - {name: a, ae_title: A, host: h, port: 1, tls_enabled: true}
  - {name: b, ae_title: B, host: h, port: 1, tls_enabled: true, tls_ca_path: tls/ca.pem,
     tls_cert_path: tls/cert.pem}
  - {name: c, ae_title: C, host: h, port: 1, tls_enabled: true, tls_ca_path: tls/missing.pem}
  - {name: d, ae_title: D, host: h, port: 1, tls_enabled: false, tls_ca_path: tls/missing.pem}
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("destinations[0].tls_ca_path", "destinations[1].tls_key_path",
                          "destinations[2].tls_ca_path"));
  EXPECT_THAT(issues[2].message, HasSubstr("file not found"));
}

TEST_F(ConfigTest, RouteToUnknownDestination) {
  const auto issues = issues_of(std::string(kMinimal) + R"(destinations:
  - {name: Secure_PACS, ae_title: PACS, host: h, port: 104}
routes:
  - {name: r1, destinations: [Secure_PACS, X]}
  - {name: r2, destinations: [secure_pacs]}
)");
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].path, "routes[0].destinations[1]");
  EXPECT_EQ(issues[0].message, "unknown destination `X` (configured: Secure_PACS)");
  EXPECT_EQ(issues[1].path, "routes[1].destinations[0]");
  EXPECT_EQ(issues[1].message, "unknown destination `secure_pacs` (did you mean `Secure_PACS`?)");
}

TEST_F(ConfigTest, NamesMustBeUnique) {
  const auto issues = issues_of(R"(
data_dir: /d
listeners:
  - {name: a, port: 104}
  - {name: a, port: 105}
  - {name: b, port: 104}
  - {name: c, port: 0}
  - {name: d, port: 0}
destinations:
  - {name: p, ae_title: P, host: h, port: 1}
  - {name: p, ae_title: P, host: h, port: 1}
routes:
  - {name: r, destinations: [p]}
  - {name: r, destinations: [p]}
)");
  EXPECT_THAT(paths_of(issues), ElementsAre("listeners[1].name", "listeners[2].port",
                                            "destinations[1].name", "routes[1].name"));
}

TEST_F(ConfigTest, ListenerBindIsAnIpAddress) {
  // What the listener can bind (dicom::Listener::create): a host name would pass the check
  // and then stop `serve` with "bad bind address".
  const auto issues = issues_of(R"(
data_dir: /d
listeners:
  - {name: a, bind: localhost, port: 104}
  - {name: b, bind: 10.0.0.300, port: 105}
  - {name: c, bind: "[::1]", port: 106}
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("listeners[0].bind", "listeners[1].bind", "listeners[2].bind"));
  EXPECT_THAT(message_at(issues, "listeners[0].bind"), HasSubstr("got `localhost`"));

  const Config c = parse_ok(R"(
data_dir: /d
listeners:
  - {name: a, bind: 127.0.0.1, port: 104}
  - {name: b, bind: "::", port: 105}
  - {name: c, bind: "::1", port: 106}
  - {name: d, bind: 0.0.0.0, port: 107}
)");
  EXPECT_EQ(c.listeners[1].bind, "::");
}

TEST_F(ConfigTest, RequiredKeys) {
  auto issues = issues_of("");
  EXPECT_THAT(paths_of(issues), ElementsAre("data_dir", "listeners"));
  issues = issues_of("data_dir: /d\nlisteners: []\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("listeners"));
  issues = issues_of(R"(
data_dir: /d
listeners: [{bind: 0.0.0.0}, {name: "", port: 1}, plain]
destinations: [{}]
routes: [{name: r}]
)");
  EXPECT_THAT(
      paths_of(issues),
      ElementsAre("listeners[0].name", "listeners[0].port", "listeners[1].name", "listeners[2]",
                  "destinations[0].name", "destinations[0].ae_title", "destinations[0].host",
                  "destinations[0].port", "routes[0].destinations"));
}

TEST_F(ConfigTest, AeTitles) {
  const auto issues = issues_of(std::string(kMinimal) + R"(accept:
  calling_ae_titles: [OK, "", "    ", "A\\B", "ABCDEFGHIJKLMNOPQ", "ABCDEFGHIJKLMNOP"]
  called_ae_titles: "not a list"
  require_tls_for: ["CT\t1"]
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("accept.calling_ae_titles[1]", "accept.calling_ae_titles[2]",
                          "accept.calling_ae_titles[3]", "accept.calling_ae_titles[4]",
                          "accept.called_ae_titles", "accept.require_tls_for[0]"));
  EXPECT_THAT(issues[1].message, HasSubstr("all spaces"));
  EXPECT_THAT(issues[2].message, HasSubstr("backslash"));
  EXPECT_THAT(issues[5].message, HasSubstr("control"));
  // Spaces around a title are padding: peers' titles arrive without them.
  const Config padded = parse_ok(std::string(kMinimal) + R"(accept:
  calling_ae_titles: ["CT1 ", " CT2", "MY SCU"]
  require_tls_for: ["  CT1"]
)");
  EXPECT_THAT(padded.accept.calling_ae_titles, ElementsAre("CT1", "CT2", "MY SCU"));
  EXPECT_THAT(padded.accept.require_tls_for, ElementsAre("CT1"));
}

TEST_F(ConfigTest, EnumsAndUrls) {
  const Config c = parse_ok(std::string(kMinimal) + R"(
tls: {profile: modern, peer_certificate: none, min_version: 1.3}
storage: {duplicates: overwrite}
database: {url: "sqlite:///var/lib/dicom-gw/index.db"}
logging: {level: "off"}
)");
  EXPECT_EQ(c.tls.profile, TlsProfile::kModern);
  EXPECT_EQ(c.tls.min_version, "1.3");
  EXPECT_EQ(c.storage.duplicates, DuplicatePolicy::kOverwrite);
  EXPECT_EQ(c.database.url, "sqlite:///var/lib/dicom-gw/index.db");
  EXPECT_EQ(c.logging.level, "off");
  EXPECT_EQ(to_string(c.tls.profile), "modern");
  EXPECT_EQ(to_string(PeerCertificate::kOptional), "optional");
  EXPECT_EQ(to_string(DuplicatePolicy::kKeepFirst), "keep-first");
  EXPECT_EQ(to_string(TlsProfile::kBcp195Extended), "bcp195-extended");
  EXPECT_EQ(parse_ok(std::string(kMinimal) + "database: {url: 'postgres://h/db'}\n").database.url,
            "postgres://h/db");

  const auto issues = issues_of(std::string(kMinimal) + R"(
tls: {min_version: "1.1", peer_certificate: yes}
database: {url: "mysql://user:secret@h/db", encryption_key_env: "1BAD"}
http: {port: 0}
)");
  EXPECT_THAT(paths_of(issues),
              ElementsAre("tls.peer_certificate", "tls.min_version", "database.url",
                          "database.encryption_key_env", "http.port"));
  EXPECT_THAT(issues[2].message, ::testing::Not(HasSubstr("secret")));
}

TEST_F(ConfigTest, CorsOriginsAreExactLowerCaseOriginsOrRefusedWithTheirIndex) {
  EXPECT_TRUE(parse_ok(std::string(kMinimal)).http.cors_origins.empty()) << "no CORS by default";
  const auto ok = parse_ok(std::string(kMinimal) +
                           "http: {cors_origins: [\"HTTPS://Admin.Example.org\", "
                           "\"http://127.0.0.1:3000\", \"http://[::1]:8081\"]}\n");
  EXPECT_THAT(ok.http.cors_origins, ElementsAre("https://admin.example.org",
                                                "http://127.0.0.1:3000", "http://[::1]:8081"));
  const auto issues = issues_of(std::string(kMinimal) +
                                "http: {cors_origins: [\"*\", \"https://a.org/app\", "
                                "\"ftp://a.org\", \"https://ok.org\", [x]]}\n");
  EXPECT_THAT(paths_of(issues), ElementsAre("http.cors_origins[0]", "http.cors_origins[1]",
                                            "http.cors_origins[2]", "http.cors_origins[4]"));
  EXPECT_THAT(issues[0].message, HasSubstr("no wildcard"));
  EXPECT_THAT(paths_of(issues_of(std::string(kMinimal) + "http: {cors_origins: x}\n")),
              ElementsAre("http.cors_origins"));
}

TEST_F(ConfigTest, YamlSyntaxErrorHasLineAndColumn) {
  const auto issues = issues_of("data_dir: /d\nlisteners: [{name: a, port: 1}\nhttp: {}\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "");
  EXPECT_THAT(issues[0].message, HasSubstr("YAML syntax error at line "));
  EXPECT_THAT(issues[0].message, HasSubstr(", column "));

  EXPECT_EQ(issues_of("- a\n- b\n")[0].message, "the configuration must be a YAML mapping of keys");
  EXPECT_THAT(issues_of(std::string(kMinimal) + "---\ndata_dir: /e\n")[0].message,
              HasSubstr("single YAML document"));
}

TEST_F(ConfigTest, LoadConfigReadsTheFileAndResolvesAgainstItsDirectory) {
  const fs::path file =
      write("etc/config.yaml", "data_dir: data\nlisteners: [{name: a, port: 1}]\n");
  std::vector<ConfigIssue> issues;
  auto result = load_config(file, &issues);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(issues.empty());
  EXPECT_EQ(result->data_dir, dir_ / "etc/data");
  EXPECT_EQ(result->source_path, file);

  write("etc/bad.yaml", "data_dir: /d\n");
  result = load_config(dir_ / "etc/bad.yaml", &issues);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "listeners: is required (a list with at least one listener)");
  EXPECT_THAT(paths_of(issues), ElementsAre("listeners"));
}

TEST_F(ConfigTest, MissingFile) {
  const fs::path file = dir_ / "nope.yaml";
  std::vector<ConfigIssue> issues;
  auto result = load_config(file, &issues);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, core::ErrorCode::kConfig);
  EXPECT_EQ(result.error().message,
            "config: cannot read " + file.string() + ": No such file or directory");
  EXPECT_EQ(issues.size(), 1u);

  result = load_config(dir_);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "config: cannot read " + dir_.string() + ": Is a directory");
}

/// packaging/config.example.yaml must pass the loader once its certificate files exist (on a
/// real host they live under /etc/dicom-gw/tls; here they are dummies in the temp dir).
TEST_F(ConfigTest, PackagedExampleParses) {
  const fs::path example =
      fs::path(__FILE__).parent_path() / "../../../packaging/config.example.yaml";
  std::ifstream in(example);
  ASSERT_TRUE(in) << example;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string from = "/etc/dicom-gw/tls/";
  const std::string to = (dir_ / "tls").string() + "/";
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  write_certs();
  write("tls/client-cert.pem", "dummy\n");
  write("tls/client-key.pem", "dummy\n");
  const Config c = parse_ok(text);
  EXPECT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.destinations.size(), 1u);
  EXPECT_EQ(c.routes.size(), 1u);
}

}  // namespace
}  // namespace gw::config
