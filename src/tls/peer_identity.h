#pragma once
/// AE title <-> client certificate bindings (`peers:` in the config).
///
/// The rule, in both directions:
///  - a certificate that matches any `peers` entry may only call with the AE titles of the
///    entries it matches (a stolen modality certificate cannot pose as another AE title);
///  - a calling AE title that appears in `peers` may only call over TLS with a certificate that
///    matches one of its entries (the AE title alone, or plain DICOM, is not enough).
/// Certificates and AE titles that appear nowhere in `peers` are left to the other checks.
///
/// check_peer_identity() is pure (no OpenSSL); describe_certificate() extracts what it needs
/// from a verified peer certificate once, at handshake time.

#include <openssl/x509.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"

namespace gw::tls {

/// What the bindings look at in a peer certificate. Empty (present == false) without one.
struct CertificateIdentity {
  bool present = false;
  std::string subject;      ///< RFC 2253 ("CN=ct1,O=Hospital"), for logs
  std::string common_name;  ///< the subject's (last, most specific) CN
  /// subjectAltName entries as "DNS:…", "IP:…" (inet_ntop text), "URI:…", "email:…".
  std::vector<std::string> sans;
  std::string sha256;  ///< "AA:BB:…" over the DER certificate
};

/// Reads CN, SANs and the SHA-256 fingerprint of `cert` (null: an empty identity).
CertificateIdentity describe_certificate(X509* cert);

/// Whether `cert` is the certificate `match` names. CN and SAN values of type DNS and email
/// compare ASCII case-insensitively; IP, URI and fingerprints exactly (fingerprints are
/// canonical upper case on both sides).
bool matches(const config::CertificateMatch& match, const CertificateIdentity& cert);

/// nullopt when the association may proceed; otherwise why not, in plain words (for the log;
/// the peer gets A-ASSOCIATE-RJ calling-AE-not-recognized). `cert` is the peer certificate
/// (present == false for plain DICOM or a TLS client without one).
std::optional<std::string> check_peer_identity(std::span<const config::Peer> peers,
                                               const std::string& calling_ae,
                                               const CertificateIdentity& cert);

}  // namespace gw::tls
