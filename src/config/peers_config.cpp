// `peers:`: calling AE titles bound to client certificate identities (subject CN, SAN or
// SHA-256 fingerprint), read into their canonical form for tls/peer_identity.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/reader.h"
#include "config/suggest.h"

namespace gw::config {
namespace detail {
namespace {

constexpr std::array<std::string_view, 2> kPeerKeys = {"ae_title", "certificate"};
constexpr std::array<std::string_view, 3> kCertificateMatchKeys = {"subject_cn", "san", "sha256"};

/// "DNS:Host.Example" -> "DNS:Host.Example" with the type spelled canonically (DNS, IP, URI,
/// email; case-insensitive on input); nullopt when the type is unknown or the value empty.
std::optional<std::string> canonical_san(std::string_view text) {
  constexpr std::array<std::string_view, 4> kTypes = {"DNS", "IP", "URI", "email"};
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  const std::string_view type = text.substr(0, colon);
  for (std::string_view t : kTypes) {
    if (t.size() == type.size() && edit_distance(t, type) == 0) {
      return std::string(t) + std::string(text.substr(colon));
    }
  }
  return std::nullopt;
}

/// "aa:bb:…" or "aabb…" (64 hex digits, optional ':' between pairs) -> "AA:BB:…".
std::optional<std::string> canonical_sha256(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c == ':') continue;
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!digit) return std::nullopt;
    hex += (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  if (hex.size() != 64) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) out += ':';
    out += hex.substr(i, 2);
  }
  return out;
}

}  // namespace

std::optional<CertificateMatch> Reader::read_certificate_match(const Section& s) {
  constexpr std::string_view kOne =
      "expected exactly one of subject_cn, san (\"DNS:host\", \"IP:…\", \"URI:…\", "
      "\"email:…\") or sha256";
  int present = 0;
  for (std::string_view key : kCertificateMatchKeys) present += s.has(key) ? 1 : 0;
  if (present != 1) {
    add(s.path(), std::string(kOne));
    return std::nullopt;
  }
  CertificateMatch match;
  std::string text;
  if (s.has("subject_cn")) {
    if (!read_non_empty(s, "subject_cn", text)) return std::nullopt;
    match.kind = CertificateMatch::Kind::kSubjectCn;
    match.value = std::move(text);
  } else if (s.has("san")) {
    if (!read_non_empty(s, "san", text)) return std::nullopt;
    auto san = canonical_san(text);
    if (!san) {
      add(s.path("san"),
          fmt::format("expected TYPE:VALUE with TYPE one of DNS, IP, URI, email, got `{}`", text));
      return std::nullopt;
    }
    match.kind = CertificateMatch::Kind::kSan;
    match.value = std::move(*san);
  } else {
    if (!read_non_empty(s, "sha256", text)) return std::nullopt;
    auto fingerprint = canonical_sha256(text);
    if (!fingerprint) {
      add(s.path("sha256"),
          fmt::format("expected a SHA-256 fingerprint (64 hex digits, ':' between pairs "
                      "allowed, as `openssl x509 -fingerprint -sha256` prints), got `{}`",
                      text));
      return std::nullopt;
    }
    match.kind = CertificateMatch::Kind::kSha256;
    match.value = std::move(*fingerprint);
  }
  return match;
}

std::vector<Peer> Reader::read_peers(const Section& root) {
  std::vector<Peer> peers;
  auto list = sequence(root, "peers", "expected a list of {ae_title, certificate} bindings");
  if (!list) return peers;
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("peers", index++), kPeerKeys);
    if (!s.valid()) continue;
    Peer peer;
    bool ok = require(s, "ae_title") && read_ae_title(s, "ae_title", peer.ae_title);
    if (require(s, "certificate", "is required ({subject_cn: …} | {san: …} | {sha256: …})")) {
      Section c(*this, *s.value("certificate"), s.path("certificate"), kCertificateMatchKeys);
      if (!c.valid()) continue;
      auto match = read_certificate_match(c);
      if (!match) continue;
      peer.certificate = std::move(*match);
    } else {
      ok = false;
    }
    if (ok) peers.push_back(std::move(peer));
  }
  return peers;
}

}  // namespace detail
}  // namespace gw::config
