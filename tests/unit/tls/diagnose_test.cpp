#include "tls/diagnose.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>

namespace gw::tls {
namespace {

using ::testing::HasSubstr;

std::error_code ssl_reason(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), asio::error::get_ssl_category()};
}

HandshakeFailure server_failure(std::error_code ec) {
  HandshakeFailure f;
  f.side = Side::kServer;
  f.error = ec;
  return f;
}

TEST(DiagnoseTest, FirstByteTellsPlainDicomFromTls) {
  EXPECT_FALSE(describe_first_byte(0x16).has_value());
  EXPECT_THAT(*describe_first_byte(0x01), HasSubstr("plain DICOM spoken to the TLS port"));
  EXPECT_THAT(*describe_first_byte('G'), HasSubstr("HTTP"));
  EXPECT_THAT(*describe_first_byte(0x80), HasSubstr("protocol too old"));
  EXPECT_THAT(*describe_first_byte(0x42), HasSubstr("0x42"));
  HandshakeFailure f = server_failure(asio::error::eof);
  f.first_byte = 0x01;
  EXPECT_THAT(diagnose(f), HasSubstr("plain DICOM spoken to the TLS port"));
  f.first_byte = 0x16;  // a TLS hello: the error decides
  EXPECT_THAT(diagnose(f), HasSubstr("closed the connection"));
}

TEST(DiagnoseTest, VerifyErrorsInPlainWords) {
  EXPECT_EQ(describe_verify_error(X509_V_ERR_CERT_HAS_EXPIRED, Side::kServer),
            "client certificate expired");
  EXPECT_EQ(describe_verify_error(X509_V_ERR_CERT_HAS_EXPIRED, Side::kClient),
            "server certificate expired");
  EXPECT_THAT(describe_verify_error(X509_V_ERR_CERT_NOT_YET_VALID, Side::kServer),
              HasSubstr("not yet valid"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, Side::kServer),
              HasSubstr("unknown CA"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, Side::kServer),
              HasSubstr("self-signed"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_EE_KEY_TOO_SMALL, Side::kServer),
              HasSubstr("key too small"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_INVALID_PURPOSE, Side::kServer),
              HasSubstr("unsupported certificate purpose (no clientAuth"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_INVALID_PURPOSE, Side::kClient),
              HasSubstr("no serverAuth"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_HOSTNAME_MISMATCH, Side::kClient, "pacs.lan"),
              HasSubstr("host name mismatch"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_IP_ADDRESS_MISMATCH, Side::kClient, "10.0.0.1"),
              HasSubstr("10.0.0.1"));
  EXPECT_THAT(describe_verify_error(X509_V_ERR_CERT_REVOKED, Side::kServer), HasSubstr("revoked"));
}

TEST(DiagnoseTest, VerifyFailedUsesTheRecordedFailure) {
  HandshakeFailure f = server_failure(ssl_reason(SSL_R_CERTIFICATE_VERIFY_FAILED));
  f.verify = {X509_V_ERR_CERT_HAS_EXPIRED, 0, "CN=modality1"};
  EXPECT_EQ(diagnose(f), "client certificate expired (CN=modality1)");
  f.verify = {X509_V_ERR_CERT_HAS_EXPIRED, 1, "CN=Old Intermediate"};
  EXPECT_THAT(diagnose(f), HasSubstr("an issuer"));
  f.verify = {};
  EXPECT_THAT(diagnose(f), HasSubstr("did not verify"));
}

TEST(DiagnoseTest, OpensslReasons) {
  EXPECT_THAT(diagnose(server_failure(ssl_reason(SSL_R_UNSUPPORTED_PROTOCOL))),
              HasSubstr("protocol too old"));
  EXPECT_THAT(diagnose(server_failure(ssl_reason(SSL_R_NO_SHARED_CIPHER))),
              HasSubstr("no shared cipher"));
  EXPECT_THAT(diagnose(server_failure(ssl_reason(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE))),
              HasSubstr("peer sent no certificate"));
  EXPECT_THAT(diagnose(server_failure(ssl_reason(SSL_R_HTTP_REQUEST))), HasSubstr("HTTP"));
  HandshakeFailure c = server_failure(ssl_reason(SSL_R_TLSV1_ALERT_UNKNOWN_CA));
  c.side = Side::kClient;
  EXPECT_THAT(diagnose(c), HasSubstr("refused our certificate: unknown CA"));
  c.error = ssl_reason(SSL_R_WRONG_VERSION_NUMBER);
  EXPECT_THAT(diagnose(c), HasSubstr("does not speak TLS"));
  c.error = ssl_reason(SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
  EXPECT_THAT(diagnose(c), HasSubstr("requires a certificate"));
}

TEST(DiagnoseTest, TransportErrors) {
  EXPECT_THAT(diagnose(server_failure(asio::error::eof)), HasSubstr("closed the connection"));
  EXPECT_THAT(diagnose(server_failure(asio::ssl::error::stream_truncated)),
              HasSubstr("closed the connection"));
  EXPECT_THAT(diagnose(server_failure(ssl_reason(SSL_R_UNEXPECTED_EOF_WHILE_READING))),
              HasSubstr("closed the connection"));
  HandshakeFailure t = server_failure(asio::error::operation_aborted);
  t.timed_out = true;
  EXPECT_THAT(diagnose(t), HasSubstr("timed out"));
  // An unknown OpenSSL reason still says something.
  EXPECT_THAT(diagnose(server_failure(ssl_reason(SSL_R_BAD_PACKET))), HasSubstr("TLS error"));
}

}  // namespace
}  // namespace gw::tls
