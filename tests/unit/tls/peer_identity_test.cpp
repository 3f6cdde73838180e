#include "tls/peer_identity.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <cstdio>
#include <vector>

#include "tls_test_pki.h"

namespace gw::tls {
namespace {

using config::CertificateMatch;
using Kind = config::CertificateMatch::Kind;

config::Peer peer(std::string ae, Kind kind, std::string value) {
  return config::Peer{std::move(ae), CertificateMatch{kind, std::move(value)}};
}

CertificateIdentity identity(std::string cn, std::vector<std::string> sans = {},
                             std::string sha256 = "AA:BB") {
  CertificateIdentity id;
  id.present = true;
  id.subject = "CN=" + cn;
  id.common_name = std::move(cn);
  id.sans = std::move(sans);
  id.sha256 = std::move(sha256);
  return id;
}

TEST(PeerIdentityTest, MatchesByCommonNameSanOrFingerprint) {
  const auto ct1 = identity("ct1.hospital.org", {"DNS:CT1.Hospital.org", "IP:10.0.0.7"}, "AB:CD");
  EXPECT_TRUE(matches({Kind::kSubjectCn, "ct1.hospital.org"}, ct1));
  EXPECT_TRUE(matches({Kind::kSubjectCn, "CT1.HOSPITAL.ORG"}, ct1));  // host names: any case
  EXPECT_FALSE(matches({Kind::kSubjectCn, "ct1"}, ct1));              // no partial match
  EXPECT_TRUE(matches({Kind::kSan, "DNS:ct1.hospital.org"}, ct1));
  EXPECT_TRUE(matches({Kind::kSan, "IP:10.0.0.7"}, ct1));
  EXPECT_FALSE(matches({Kind::kSan, "IP:10.0.0.8"}, ct1));
  EXPECT_FALSE(matches({Kind::kSan, "URI:ct1.hospital.org"}, ct1));  // the type must agree
  EXPECT_TRUE(matches({Kind::kSha256, "AB:CD"}, ct1));
  EXPECT_FALSE(matches({Kind::kSha256, "AB:CE"}, ct1));
  EXPECT_FALSE(matches({Kind::kSubjectCn, ""}, CertificateIdentity{}));  // no certificate
}

TEST(PeerIdentityTest, NoBindingsAllowEverything) {
  EXPECT_FALSE(check_peer_identity({}, "CT1", CertificateIdentity{}));
  EXPECT_FALSE(check_peer_identity({}, "CT1", identity("anything")));
}

TEST(PeerIdentityTest, BoundCertificateMayOnlyUseItsAeTitles) {
  const std::vector<config::Peer> peers{peer("CT1", Kind::kSubjectCn, "ct1"),
                                        peer("CT1_BACKUP", Kind::kSubjectCn, "ct1"),
                                        peer("CT2", Kind::kSan, "DNS:ct2.example")};
  EXPECT_FALSE(check_peer_identity(peers, "CT1", identity("ct1")));
  EXPECT_FALSE(check_peer_identity(peers, "CT1_BACKUP", identity("ct1")));
  auto why = check_peer_identity(peers, "CT2", identity("ct1"));
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("bound to calling AE title(s) CT1, CT1_BACKUP"), std::string::npos) << *why;
  // An AE title that appears nowhere in peers is refused too: the certificate is bound.
  EXPECT_TRUE(check_peer_identity(peers, "OTHER", identity("ct1")));
}

TEST(PeerIdentityTest, BoundAeTitleNeedsItsCertificateOverTls) {
  const std::vector<config::Peer> peers{peer("CT1", Kind::kSha256, "AA:BB"),
                                        peer("CT2", Kind::kSubjectCn, "ct2")};
  EXPECT_FALSE(check_peer_identity(peers, "CT1", identity("whatever", {}, "AA:BB")));
  // Plain DICOM (or TLS without a client certificate).
  auto why = check_peer_identity(peers, "CT1", CertificateIdentity{});
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("must call over TLS"), std::string::npos) << *why;
  // A valid but unbound certificate.
  why = check_peer_identity(peers, "CT1", identity("stranger", {}, "CC:DD"));
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("bound to another certificate"), std::string::npos) << *why;
  // Unbound certificate, unbound AE title: not this check's business.
  EXPECT_FALSE(check_peer_identity(peers, "US1", identity("stranger", {}, "CC:DD")));
  EXPECT_FALSE(check_peer_identity(peers, "US1", CertificateIdentity{}));
}

TEST(PeerIdentityTest, SeveralCertificatesMayShareAnAeTitle) {
  const std::vector<config::Peer> peers{peer("CT1", Kind::kSubjectCn, "ct1-a"),
                                        peer("CT1", Kind::kSubjectCn, "ct1-b")};
  EXPECT_FALSE(check_peer_identity(peers, "CT1", identity("ct1-a")));
  EXPECT_FALSE(check_peer_identity(peers, "CT1", identity("ct1-b")));
  EXPECT_TRUE(check_peer_identity(peers, "CT1", identity("ct1-c")));
}

class DescribeCertificateTest : public testing::TlsPkiTest {};

TEST_F(DescribeCertificateTest, ReadsCommonNameSansAndFingerprint) {
  issue("ct1.hospital.org", certs::CertKind::kClient,
        {"DNS:ct1.hospital.org", "IP:10.1.2.3", "IP:::1"});
  std::FILE* f = std::fopen(cert("ct1.hospital.org").c_str(), "r");
  ASSERT_NE(f, nullptr);
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ASSERT_NE(x, nullptr);
  const CertificateIdentity id = describe_certificate(x);
  EXPECT_TRUE(id.present);
  EXPECT_EQ(id.common_name, "ct1.hospital.org");
  EXPECT_EQ(id.subject, subject_of(x));
  EXPECT_EQ(id.sha256, sha256_fingerprint(x));
  EXPECT_EQ(id.sha256.size(), 95u);
  EXPECT_EQ(id.sans, (std::vector<std::string>{"DNS:ct1.hospital.org", "IP:10.1.2.3", "IP:::1"}));
  X509_free(x);
  EXPECT_FALSE(describe_certificate(nullptr).present);
}

}  // namespace
}  // namespace gw::tls
