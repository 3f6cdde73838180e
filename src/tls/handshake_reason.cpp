#include "tls/handshake_reason.h"

#include <openssl/x509_vfy.h>

namespace gw::tls {

namespace {

bool has(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

std::string_view to_string(HandshakeReason reason) {
  switch (reason) {
    case HandshakeReason::kUnknownCa:
      return "unknown_ca";
    case HandshakeReason::kExpired:
      return "expired";
    case HandshakeReason::kNotYetValid:
      return "not_yet_valid";
    case HandshakeReason::kBadKeyUsage:
      return "bad_key_usage";
    case HandshakeReason::kHostnameMismatch:
      return "hostname_mismatch";
    case HandshakeReason::kNoSharedCipher:
      return "no_shared_cipher";
    case HandshakeReason::kProtocolVersion:
      return "protocol_version";
    case HandshakeReason::kPlainDicomOnTlsPort:
      return "plain_dicom_on_tls_port";
    case HandshakeReason::kNoPeerCertificate:
      return "no_peer_certificate";
    case HandshakeReason::kOther:
      break;
  }
  return "other";
}

HandshakeReason classify_verify_error(int x509_error) {
  switch (x509_error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return HandshakeReason::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return HandshakeReason::kNotYetValid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return HandshakeReason::kUnknownCa;
    case X509_V_ERR_INVALID_PURPOSE:
      return HandshakeReason::kBadKeyUsage;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return HandshakeReason::kHostnameMismatch;
    default:
      return HandshakeReason::kOther;
  }
}

HandshakeReason classify_handshake(const VerifyFailure& verify, std::string_view d) {
  if (verify.failed()) {
    const auto reason = classify_verify_error(verify.error);
    if (reason != HandshakeReason::kOther) return reason;
  }
  // diagnose()'s phrases (diagnose.cpp), most specific first: "not yet valid" before
  // "expired" ("expired (or not yet valid)" is an expiry alert).
  if (has(d, "plain DICOM")) return HandshakeReason::kPlainDicomOnTlsPort;
  if (has(d, "protocol too old") || has(d, "refused our TLS version")) {
    return HandshakeReason::kProtocolVersion;
  }
  if (has(d, "no shared cipher") || has(d, "no common signature algorithm")) {
    return HandshakeReason::kNoSharedCipher;
  }
  if (has(d, "peer sent no certificate") || has(d, "requires a certificate")) {
    return HandshakeReason::kNoPeerCertificate;
  }
  if (has(d, "unknown CA") || has(d, "self-signed")) return HandshakeReason::kUnknownCa;
  if (has(d, "not yet valid") && !has(d, "expired")) return HandshakeReason::kNotYetValid;
  if (has(d, "expired") && !has(d, "CRL")) return HandshakeReason::kExpired;
  if (has(d, "purpose") || has(d, "extended key usage")) return HandshakeReason::kBadKeyUsage;
  if (has(d, "host name mismatch") || has(d, "IP address mismatch")) {
    return HandshakeReason::kHostnameMismatch;
  }
  return HandshakeReason::kOther;
}

}  // namespace gw::tls
