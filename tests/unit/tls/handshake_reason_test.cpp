// The metric/audit labels of failed handshakes: every diagnose() case runs through
// classify_handshake, so a change of wording in diagnose.cpp that loses its label fails here.
#include "tls/handshake_reason.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <set>

namespace gw::tls {
namespace {

std::error_code ssl_reason(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), asio::error::get_ssl_category()};
}

HandshakeFailure failure(Side side, std::error_code ec) {
  HandshakeFailure f;
  f.side = side;
  f.error = ec;
  return f;
}

/// What the SCP does: diagnose the failure, then classify the words (and the verify record).
HandshakeReason label_of(const HandshakeFailure& f) {
  return classify_handshake(f.verify, diagnose(f));
}

TEST(HandshakeReasonTest, LabelsAreTheDocumentedOnes) {
  std::set<std::string_view> labels;
  for (auto r : kHandshakeReasons) labels.insert(to_string(r));
  EXPECT_EQ(labels, (std::set<std::string_view>{
                        "unknown_ca", "expired", "not_yet_valid", "bad_key_usage",
                        "hostname_mismatch", "no_shared_cipher", "protocol_version",
                        "plain_dicom_on_tls_port", "no_peer_certificate", "other"}));
}

TEST(HandshakeReasonTest, VerifyErrors) {
  EXPECT_EQ(classify_verify_error(X509_V_ERR_CERT_HAS_EXPIRED), HandshakeReason::kExpired);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_CERT_NOT_YET_VALID), HandshakeReason::kNotYetValid);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            HandshakeReason::kUnknownCa);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
            HandshakeReason::kUnknownCa);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_INVALID_PURPOSE), HandshakeReason::kBadKeyUsage);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_HOSTNAME_MISMATCH),
            HandshakeReason::kHostnameMismatch);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_IP_ADDRESS_MISMATCH),
            HandshakeReason::kHostnameMismatch);
  EXPECT_EQ(classify_verify_error(X509_V_ERR_EE_KEY_TOO_SMALL), HandshakeReason::kOther);
}

TEST(HandshakeReasonTest, ServerSideFailuresThroughDiagnose) {
  auto f = failure(Side::kServer, asio::error::eof);
  f.first_byte = 0x01;
  EXPECT_EQ(label_of(f), HandshakeReason::kPlainDicomOnTlsPort);
  f.first_byte = 0x80;
  EXPECT_EQ(label_of(f), HandshakeReason::kProtocolVersion);
  f.first_byte = 'G';
  EXPECT_EQ(label_of(f), HandshakeReason::kOther);

  EXPECT_EQ(label_of(failure(Side::kServer, ssl_reason(SSL_R_UNSUPPORTED_PROTOCOL))),
            HandshakeReason::kProtocolVersion);
  EXPECT_EQ(label_of(failure(Side::kServer, ssl_reason(SSL_R_VERSION_TOO_LOW))),
            HandshakeReason::kProtocolVersion);
  EXPECT_EQ(label_of(failure(Side::kServer, ssl_reason(SSL_R_NO_SHARED_CIPHER))),
            HandshakeReason::kNoSharedCipher);
  EXPECT_EQ(label_of(failure(Side::kServer, ssl_reason(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE))),
            HandshakeReason::kNoPeerCertificate);
  EXPECT_EQ(label_of(failure(Side::kServer, ssl_reason(SSL_R_UNEXPECTED_EOF_WHILE_READING))),
            HandshakeReason::kOther);
  EXPECT_EQ(label_of(failure(Side::kServer, asio::error::connection_reset)),
            HandshakeReason::kOther);

  // A client certificate that failed verification: the verify record decides.
  for (auto [error, expected] :
       {std::pair{X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, HandshakeReason::kUnknownCa},
        std::pair{X509_V_ERR_CERT_HAS_EXPIRED, HandshakeReason::kExpired},
        std::pair{X509_V_ERR_CERT_NOT_YET_VALID, HandshakeReason::kNotYetValid},
        std::pair{X509_V_ERR_INVALID_PURPOSE, HandshakeReason::kBadKeyUsage}}) {
    auto v = failure(Side::kServer, ssl_reason(SSL_R_CERTIFICATE_VERIFY_FAILED));
    v.verify = {error, 0, "CN=modality"};
    EXPECT_EQ(label_of(v), expected) << diagnose(v);
    // The words alone say the same (a channel that lost its verify record).
    EXPECT_EQ(classify_handshake({}, diagnose(v)), expected) << diagnose(v);
  }
}

TEST(HandshakeReasonTest, ClientSideFailuresThroughDiagnose) {
  auto v = failure(Side::kClient, ssl_reason(SSL_R_CERTIFICATE_VERIFY_FAILED));
  v.verify = {X509_V_ERR_HOSTNAME_MISMATCH, 0, "CN=pacs"};
  v.host = "other.example";
  EXPECT_EQ(label_of(v), HandshakeReason::kHostnameMismatch);
  EXPECT_EQ(classify_handshake({}, diagnose(v)), HandshakeReason::kHostnameMismatch);
  EXPECT_EQ(label_of(failure(Side::kClient, ssl_reason(SSL_R_TLSV1_ALERT_UNKNOWN_CA))),
            HandshakeReason::kUnknownCa);
  EXPECT_EQ(label_of(failure(Side::kClient, ssl_reason(SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED))),
            HandshakeReason::kExpired);
  EXPECT_EQ(label_of(failure(Side::kClient, ssl_reason(SSL_R_TLSV1_ALERT_PROTOCOL_VERSION))),
            HandshakeReason::kProtocolVersion);
  EXPECT_EQ(label_of(failure(Side::kClient, ssl_reason(SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE))),
            HandshakeReason::kBadKeyUsage);
  EXPECT_EQ(label_of(failure(Side::kClient, ssl_reason(SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED))),
            HandshakeReason::kNoPeerCertificate);
}

TEST(HandshakeReasonTest, AcceptedVerifyFailureDoesNotDecide) {
  // no_verify: the SCP passes an empty record; a CRL problem is not an expiry.
  EXPECT_EQ(classify_handshake({}, "client certificate: the CRL in tls.crl_file has expired"),
            HandshakeReason::kOther);
}

}  // namespace
}  // namespace gw::tls
