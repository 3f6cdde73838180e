#include "tls/profile.h"

#include <openssl/err.h>

#include <array>
#include <memory>
#include <utility>
#include <vector>

namespace gw::tls {

using core::ErrorCode;
using core::make_error;

namespace {

// TLS 1.2 suites, strongest first. All ECDHE/DHE (forward secrecy) with an AEAD cipher.
constexpr std::string_view kEcdheGcm =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr std::string_view kEcdheChacha =
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr std::string_view kDheAead =
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-CHACHA20-POLY1305";

constexpr std::array<std::pair<std::string_view, config::TlsProfile>, 4> kNames = {{
    {"bcp195-rfc8996", config::TlsProfile::kBcp195Rfc8996},
    {"bcp195-nd", config::TlsProfile::kBcp195Nd},
    {"bcp195-extended", config::TlsProfile::kBcp195Extended},
    {"modern", config::TlsProfile::kModern},
}};

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out += ':';
    out += p;
  }
  return out;
}

std::vector<std::string> split(std::string_view list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const auto end = list.find_first_of(":, ", pos);
    auto token = list.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (!token.empty()) out.emplace_back(token);
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return out;
}

/// A suite we allow for TLS 1.2: ECDHE or DHE key exchange, AEAD cipher, authenticated.
bool allowed_tls12_suite(const SSL_CIPHER* c) {
  const int kx = SSL_CIPHER_get_kx_nid(c);
  const int auth = SSL_CIPHER_get_auth_nid(c);
  return SSL_CIPHER_is_aead(c) == 1 && (kx == NID_kx_ecdhe || kx == NID_kx_dhe) &&
         auth != NID_auth_null && auth != NID_auth_psk;
}

}  // namespace

std::optional<config::TlsProfile> parse_profile(std::string_view name) {
  for (const auto& [n, id] : kNames) {
    if (n == name) return id;
  }
  return std::nullopt;
}

std::string_view version_name(int version) {
  switch (version) {
    case TLS1_VERSION:
      return "TLSv1";
    case TLS1_1_VERSION:
      return "TLSv1.1";
    case TLS1_2_VERSION:
      return "TLSv1.2";
    case TLS1_3_VERSION:
      return "TLSv1.3";
    default:
      return "unknown";
  }
}

core::Status check_tls12_ciphers(std::string_view ciphers) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return make_error(ErrorCode::kInternal, "SSL_CTX_new failed");
  // Unknown names first: OpenSSL silently skips them when anything else in the list matches.
  std::vector<std::string> unknown;
  for (const auto& token : split(ciphers)) {
    // OpenSSL applies "@SECLEVEL=n" to the whole context: it would undo security level 2.
    if (token.rfind("@SECLEVEL", 0) == 0) {
      return make_error(ErrorCode::kConfig,
                        "tls.ciphers: \"" + token +
                            "\" is not allowed (the security level is fixed at 2: RSA keys of "
                            "2048 bits or more, no SHA-1 signatures)");
    }
    const char first = token.front();
    if (first == '!' || first == '-' || first == '+' || first == '@') continue;  // modifiers
    if (SSL_CTX_set_cipher_list(ctx.get(), token.c_str()) != 1) unknown.push_back(token);
  }
  ERR_clear_error();
  if (!unknown.empty()) {
    std::string names;
    for (const auto& u : unknown) names += (names.empty() ? "" : ", ") + u;
    return make_error(ErrorCode::kConfig, "tls.ciphers: unknown cipher suite(s): " + names +
                                              " (OpenSSL names, " +
                                              "e.g. ECDHE-RSA-AES128-GCM-SHA256)");
  }
  const std::string list(ciphers);
  if (list.empty() || SSL_CTX_set_cipher_list(ctx.get(), list.c_str()) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::kConfig, "tls.ciphers: the list selects no cipher suite");
  }
  std::string refused;
  STACK_OF(SSL_CIPHER)* suites = SSL_CTX_get_ciphers(ctx.get());
  for (int i = 0; i < sk_SSL_CIPHER_num(suites); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(suites, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;  // a TLS 1.3 suite: not from this list
    if (!allowed_tls12_suite(c)) {
      refused += (refused.empty() ? "" : ", ") + std::string(SSL_CIPHER_get_name(c));
    }
  }
  if (!refused.empty()) {
    return make_error(ErrorCode::kConfig,
                      "tls.ciphers: not allowed (every TLS 1.2 suite must be ECDHE or DHE with "
                      "AES-GCM or ChaCha20-Poly1305; CBC, static RSA and anonymous suites are "
                      "refused): " +
                          refused);
  }
  return {};
}

core::Result<Profile> resolve_profile(config::TlsProfile id, std::string_view min_version,
                                      std::string_view ciphers) {
  Profile p;
  p.id = id;
  switch (id) {
    case config::TlsProfile::kBcp195Rfc8996:
      p.tls12_ciphers = join({kEcdheGcm, kEcdheChacha});
      break;
    case config::TlsProfile::kBcp195Nd:
      p.tls12_ciphers = std::string(kEcdheGcm);
      break;
    case config::TlsProfile::kBcp195Extended:
      p.tls12_ciphers = join({kEcdheGcm, kEcdheChacha, kDheAead});
      break;
    case config::TlsProfile::kModern:
      p.min_version = TLS1_3_VERSION;
      break;
  }
  if (min_version == "1.3") {
    p.min_version = TLS1_3_VERSION;
  } else if (!min_version.empty() && min_version != "1.2") {
    return make_error(ErrorCode::kConfig, R"(tls.min_version: must be "1.2" or "1.3", not ")" +
                                              std::string(min_version) + "\"");
  }
  if (!ciphers.empty()) {
    GW_RETURN_IF_ERROR(check_tls12_ciphers(ciphers));
    p.tls12_ciphers = std::string(ciphers);
  }
  if (p.min_version == TLS1_3_VERSION) p.tls12_ciphers.clear();
  return p;
}

core::Status apply_profile(SSL_CTX* ctx, const Profile& profile) {
  auto fail = [](const std::string& what) {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    char buf[256] = {};
    if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
    return make_error(ErrorCode::kTls, what + (e != 0 ? std::string(": ") + buf : ""));
  };
  if (SSL_CTX_set_min_proto_version(ctx, profile.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, profile.max_version) != 1) {
    return fail("cannot set the TLS protocol versions");
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // With TLS 1.3 only the TLS 1.2 list is never consulted (the version floor refuses 1.2).
  if (!profile.tls12_ciphers.empty() &&
      SSL_CTX_set_cipher_list(ctx, profile.tls12_ciphers.c_str()) != 1) {
    return fail("cannot set the TLS 1.2 cipher suites");
  }
  if (SSL_CTX_set_ciphersuites(ctx, profile.tls13_suites.c_str()) != 1) {
    return fail("cannot set the TLS 1.3 cipher suites");
  }
  // After the cipher lists: a list can carry "@SECLEVEL=n", which OpenSSL applies to the context.
  SSL_CTX_set_security_level(ctx, 2);
  if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384:P-521:ffdhe2048:ffdhe3072") != 1) {
    ERR_clear_error();  // older builds without some group: keep OpenSSL's defaults
  }
  SSL_CTX_set_dh_auto(ctx, 1);
  return {};
}

}  // namespace gw::tls
