#pragma once
/// DICOM TLS profiles (PS3.15 Annex B, BCP 195): which protocol versions and cipher suites an
/// SSL_CTX offers. Every profile refuses TLS 1.0/1.1, CBC suites, static RSA key exchange,
/// renegotiation and compression, and runs at OpenSSL security level 2 (RSA/DH >= 2048 bits,
/// EC >= 224 bits, no SHA-1 signatures).
///
///   bcp195-rfc8996  (default) TLS 1.2 + 1.3, 1.3 preferred; TLS 1.2: ECDHE + AES-GCM/ChaCha20
///   bcp195-nd       PS3.15 B.9 non-downgrading: TLS 1.2+, ECDHE + AES-GCM
///   bcp195-extended PS3.15 B.10: the rfc8996 suites plus DHE + AES-GCM/ChaCha20
///   modern          TLS 1.3 only

#include <openssl/ssl.h>

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/result.h"

namespace gw::tls {

/// TLS 1.3 suites of every profile, strongest first.
inline constexpr std::string_view kTls13Suites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

/// What a profile (plus tls.min_version and tls.ciphers) resolves to.
struct Profile {
  config::TlsProfile id = config::TlsProfile::kBcp195Rfc8996;
  int min_version = TLS1_2_VERSION;  ///< TLS1_2_VERSION | TLS1_3_VERSION
  int max_version = TLS1_3_VERSION;
  std::string tls12_ciphers;  ///< OpenSSL cipher list for TLS 1.2 (empty for TLS 1.3 only)
  std::string tls13_suites = std::string(kTls13Suites);
};

/// "bcp195-rfc8996" etc. (the YAML and CLI spelling); nullopt for anything else.
std::optional<config::TlsProfile> parse_profile(std::string_view name);

/// Resolves a profile with the optional `min_version` ("" / "1.2" / "1.3") and `ciphers`
/// override (a TLS 1.2 OpenSSL cipher list). kConfig with a plain-words message when
/// `ciphers` names an unknown suite or one that is not AEAD with forward secrecy.
core::Result<Profile> resolve_profile(config::TlsProfile id, std::string_view min_version = "",
                                      std::string_view ciphers = "");

/// Checks a TLS 1.2 cipher override: every suite it expands to must be ECDHE/DHE with an AEAD
/// cipher (AES-GCM, ChaCha20-Poly1305). The message names the offending entries.
core::Status check_tls12_ciphers(std::string_view ciphers);

/// Applies a profile to a context: versions, suites, security level 2, no renegotiation, no
/// compression, server cipher preference, ECDH curves auto, DH parameters auto.
core::Status apply_profile(SSL_CTX* ctx, const Profile& profile);

/// "TLSv1.2", "TLSv1.3".
std::string_view version_name(int version);

}  // namespace gw::tls
