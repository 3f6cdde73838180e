#include "tls/diagnose.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <cstdio>

namespace gw::tls {

namespace {

std::string_view whose(Side side) {
  return side == Side::kServer ? "client certificate" : "server certificate";
}

std::string with_subject(std::string text, const VerifyFailure& v) {
  if (!v.subject.empty()) text += " (" + v.subject + (v.depth > 0 ? ", an issuer" : "") + ")";
  return text;
}

/// OpenSSL's packed error code from an Asio error in the ssl category.
unsigned long packed(const std::error_code& ec) {
  return static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
}

/// Plain words for an OpenSSL reason in the SSL library; empty when we have nothing better
/// than OpenSSL's own string.
std::string describe_ssl_reason(int reason, const HandshakeFailure& f) {
  const bool server = f.side == Side::kServer;
  switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      if (f.verify.failed()) {
        return with_subject(describe_verify_error(f.verify.error, f.side, f.host), f.verify);
      }
      return std::string(whose(f.side)) + " did not verify";
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return server ? "protocol too old: the client offered only TLS 1.0/1.1 (or SSL); TLS 1.2 "
                      "is the minimum (TLS 1.3 under profile modern / min_version 1.3)"
                    : "protocol too old: the server offered a TLS version below our minimum";
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return "the peer refused our TLS version (it requires another one)";
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_CIPHERS_AVAILABLE:
      return "no shared cipher: the peer offered no suite the profile allows (TLS 1.2 needs "
             "ECDHE/DHE with AES-GCM or ChaCha20-Poly1305; CBC suites are refused)";
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      return "the peer refused the handshake (no common protocol version or cipher suite, or "
             "it requires a certificate we did not send)";
    case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
      return "the peer considers our offer too weak (protocol or cipher suite)";
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return "peer sent no certificate (tls.peer_certificate: required)";
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return "the peer requires a certificate and we sent none";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return "the peer refused our certificate: unknown CA (our issuer is not in its trust "
             "store)";
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return "the peer refused our certificate: expired (or not yet valid)";
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
      return "the peer refused our certificate: revoked";
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      return server ? "the peer refused our certificate: unsupported purpose (no serverAuth "
                      "extended key usage?)"
                    : "the peer refused our certificate: unsupported purpose (no clientAuth "
                      "extended key usage?)";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      return "the peer refused our certificate (bad certificate: key too small, wrong purpose "
             "or host name?)";
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return "the peer denied access";
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
      return "the handshake signature did not verify (certificate and key do not match?)";
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return server ? "the peer does not speak TLS (not a TLS record)"
                    : "the peer does not speak TLS (a plain DICOM port?)";
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
      return "HTTP spoken to the DICOM TLS port";
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return "the peer closed the connection during the handshake";
    case SSL_R_EE_KEY_TOO_SMALL:
    case SSL_R_CA_KEY_TOO_SMALL:
      return "key too small for security level 2 (RSA/DH keys need 2048 bits, EC 224)";
    case SSL_R_CA_MD_TOO_WEAK:
      return "signature algorithm too weak (SHA-1 or MD5) for security level 2";
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
      return "no common signature algorithm (the peer's key or hash is not allowed)";
    default:
      return {};
  }
}

}  // namespace

std::string describe_verify_error(int x509_error, Side side, std::string_view host) {
  const std::string who(whose(side));
  switch (x509_error) {
    case X509_V_OK:
      return who + " verified";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return who + " expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return who + " not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return who + ": unknown CA (its issuer is not in the trusted CA bundle)";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return who + " is self-signed and not in the trusted CA bundle";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
      return who + ": key too small for security level 2 (RSA needs 2048 bits, EC 224)";
    case X509_V_ERR_CA_MD_TOO_WEAK:
      return who + ": signature algorithm too weak (SHA-1 or MD5) for security level 2";
    case X509_V_ERR_INVALID_PURPOSE:
      return who + ": unsupported certificate purpose (no " +
             (side == Side::kServer ? "clientAuth" : "serverAuth") + " extended key usage)";
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return who + ": host name mismatch (its subjectAltName does not name " +
             (host.empty() ? std::string("the host we dialled") : std::string(host)) + ")";
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return who + ": IP address mismatch (its subjectAltName does not list " +
             (host.empty() ? std::string("the address we dialled") : std::string(host)) + ")";
    case X509_V_ERR_CERT_REVOKED:
      return who + " revoked (tls.crl_file)";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
      return who + ": no CRL for its issuer in tls.crl_file";
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return who + ": the CRL in tls.crl_file has expired";
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return who + ": the CRL in tls.crl_file is not yet valid";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return who + ": signature does not verify";
    case X509_V_ERR_INVALID_CA:
      return who + ": an issuer in its chain is not a CA";
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return who + ": chain longer than its CA allows (pathlen)";
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return who + ": chain too long";
    default:
      return who + ": " + X509_verify_cert_error_string(x509_error);
  }
}

std::optional<std::string> describe_first_byte(std::uint8_t byte) {
  if (byte == kTlsHandshakeRecord) return std::nullopt;
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%02X", byte);
  switch (byte) {
    case 0x01:
      return "plain DICOM spoken to the TLS port (first byte 0x01: an A-ASSOCIATE-RQ, not a TLS "
             "handshake)";
    case 'G':
    case 'P':
    case 'H':
    case 'C':
      return std::string("HTTP spoken to the DICOM TLS port (first byte ") + hex + ")";
    case 0x80:
      return "protocol too old: an SSLv2-format hello (first byte 0x80)";
    case 0x15:
      return "the peer sent a TLS alert instead of a handshake (first byte 0x15)";
    default:
      return std::string("not a TLS handshake (first byte ") + hex + ", expected 0x16)";
  }
}

std::string diagnose(const HandshakeFailure& f) {
  if (f.first_byte) {
    if (auto why = describe_first_byte(*f.first_byte)) return *why;
  }
  if (f.timed_out) return "handshake timed out (the peer sent nothing or stalled)";
  const auto& ec = f.error;
  if (ec.category() == asio::error::get_ssl_category()) {
    const unsigned long code = packed(ec);
    if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
      auto text = describe_ssl_reason(ERR_GET_REASON(code), f);
      if (!text.empty()) return text;
    }
    // A verification failure is the most useful thing to say when OpenSSL gave no reason.
    if (f.verify.failed()) {
      return with_subject(describe_verify_error(f.verify.error, f.side, f.host), f.verify);
    }
    char buf[256] = {};
    ERR_error_string_n(code, buf, sizeof(buf));
    const char* reason = ERR_reason_error_string(code);
    return std::string("TLS error: ") + (reason != nullptr ? reason : buf);
  }
  if (f.verify.failed()) {
    return with_subject(describe_verify_error(f.verify.error, f.side, f.host), f.verify);
  }
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    return "the peer closed the connection during the handshake";
  }
  if (ec == asio::error::operation_aborted) return "handshake cancelled";
  if (!ec) return "handshake failed";
  return "handshake failed: " + ec.message();
}

}  // namespace gw::tls
