#pragma once
/// Why a TLS handshake failed, as one of a few fixed labels: the `reason` of the metric
/// dicom_gw_tls_handshake_failures_total and of the audit row. diagnose.h says it in a
/// sentence for the log; this says it in a word a dashboard can count.

#include <array>
#include <cstddef>
#include <string_view>

#include "tls/diagnose.h"

namespace gw::tls {

enum class HandshakeReason {
  kUnknownCa,            ///< the peer certificate's issuer is not trusted (or self-signed)
  kExpired,              ///< a certificate has expired
  kNotYetValid,          ///< a certificate is not valid yet
  kBadKeyUsage,          ///< wrong (extended) key usage: no clientAuth/serverAuth
  kHostnameMismatch,     ///< the certificate does not name the host or address we dialled
  kNoSharedCipher,       ///< no cipher suite (or signature algorithm) in common
  kProtocolVersion,      ///< TLS 1.0/1.1, SSL, or a version the peer refuses
  kPlainDicomOnTlsPort,  ///< an A-ASSOCIATE-RQ where a ClientHello belongs
  kNoPeerCertificate,    ///< the peer sent no certificate but one is required
  kOther,                ///< anything else (timeouts, resets, HTTP, weak keys, …)
};

inline constexpr std::size_t kHandshakeReasonCount = 10;

/// Every reason, in enum order (for exporting zeros).
inline constexpr std::array<HandshakeReason, kHandshakeReasonCount> kHandshakeReasons = {
    HandshakeReason::kUnknownCa,         HandshakeReason::kExpired,
    HandshakeReason::kNotYetValid,       HandshakeReason::kBadKeyUsage,
    HandshakeReason::kHostnameMismatch,  HandshakeReason::kNoSharedCipher,
    HandshakeReason::kProtocolVersion,   HandshakeReason::kPlainDicomOnTlsPort,
    HandshakeReason::kNoPeerCertificate, HandshakeReason::kOther};

/// The label: "unknown_ca", "expired", "not_yet_valid", "bad_key_usage", "hostname_mismatch",
/// "no_shared_cipher", "protocol_version", "plain_dicom_on_tls_port", "no_peer_certificate",
/// "other".
std::string_view to_string(HandshakeReason reason);

/// A certificate verification error (X509_V_ERR_*); kOther for the ones without a label.
HandshakeReason classify_verify_error(int x509_error);

/// A failed handshake as the channel reports it: the first verification failure (when there
/// was one and it was enforced) decides; otherwise diagnose()'s words do. Both come from this
/// module, and the unit tests run every diagnose() case through here, so the two stay in step.
HandshakeReason classify_handshake(const VerifyFailure& verify, std::string_view diagnosis);

}  // namespace gw::tls
