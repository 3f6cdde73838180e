#pragma once
/// What a certificate says, and what is wrong with a certificate/key/CA set, in plain words.
/// Backs `dicom-gw certs info|check`, `GET /api/v1/certs/info` and upload validation.

#include <openssl/types.h>  // X509, forward-declared

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gw::certs {

struct CertificateInfo {
  std::string subject;  ///< RFC 2253: "CN=pacs.example.org,O=Hospital"
  std::string issuer;
  std::string serial_hex;  ///< upper-case hex, no separators
  std::string not_before;  ///< ISO 8601 UTC: "2025-01-31T12:00:00Z"
  std::string not_after;
  std::int64_t days_until_expiry = 0;  ///< whole days from `now`; negative once expired
  std::vector<std::string> sans;       ///< "DNS:name", "IP:1.2.3.4", "email:…", "URI:…"
  std::vector<std::string> ekus;       ///< "serverAuth", "clientAuth", … or a dotted OID
  std::string key_type;                ///< "RSA", "EC", "Ed25519", …
  int key_bits = 0;
  std::string signature_algorithm;  ///< "sha256WithRSAEncryption", "ecdsa-with-SHA256", …
  std::string sha256_fingerprint;   ///< "AA:BB:…" (32 bytes)
  bool is_ca = false;               ///< basicConstraints CA:TRUE
  bool self_signed = false;
};

using TimePoint = std::chrono::system_clock::time_point;

/// The fields of one parsed certificate.
CertificateInfo describe_certificate(X509* cert, TimePoint now = std::chrono::system_clock::now());

/// The first certificate in `path` (PEM or DER).
core::Result<CertificateInfo> inspect_certificate(const std::filesystem::path& path,
                                                  TimePoint now = std::chrono::system_clock::now());
/// Every certificate of a PEM bundle, in file order (leaf first when the file is a chain).
core::Result<std::vector<CertificateInfo>> inspect_chain(
    const std::filesystem::path& path, TimePoint now = std::chrono::system_clock::now());

enum class Purpose { kServer, kClient };

/// The validity window at `now`: valid, expiring (within CheckOptions::expiring_days),
/// expired, not yet valid; kUnreadable when the certificate could not be parsed at all.
enum class CertStatus { kValid, kExpiring, kExpired, kNotYetValid, kUnreadable };
/// "valid", "expiring", "expired", "not_yet_valid", "unreadable" (API and CLI output).
std::string_view cert_status_name(CertStatus status);

struct CheckOptions {
  std::filesystem::path cert;  ///< leaf first; further certificates are the untrusted chain
  std::filesystem::path key;   ///< optional: must match the leaf
  std::filesystem::path ca;    ///< optional: trust anchors the chain must verify against
  /// With no `ca`: verify against the system trust store (public CAs, Let's Encrypt).
  bool use_system_trust = false;
  Purpose purpose = Purpose::kServer;
  std::string hostname;          ///< optional: DNS name or IP the peer will dial; SAN only
  std::optional<TimePoint> now;  ///< default: the system clock
  int expiring_days = 30;
};

struct CheckReport {
  CertStatus status = CertStatus::kUnreadable;
  /// Everything that would make a TLS peer refuse the certificate; empty when it is usable.
  std::vector<std::string> problems;
  /// Worth knowing but not fatal ("expires in 12 days", "no extendedKeyUsage").
  std::vector<std::string> warnings;
  /// The certificates of the cert file, leaf first (empty when unreadable).
  std::vector<CertificateInfo> chain;
  /// Whether the chain verified against `ca` / the system store; nullopt when not checked.
  std::optional<bool> chain_verified;

  [[nodiscard]] bool ok() const { return problems.empty(); }
};

/// Checks a certificate (and optionally its key and CA) for `purpose`: parse errors, key
/// mismatch, validity window, key size (RSA < 2048, EC < 256), SHA-1/MD5 signatures, EKU,
/// hostname against the SAN, chain verification, and PEM encoding (DER parses but the TLS
/// contexts load PEM only). Never fails: unreadable inputs are problems.
CheckReport check_certificate(const CheckOptions& options);

}  // namespace gw::certs
