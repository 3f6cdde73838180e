#include "tls/peer_identity.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

#include "tls/context.h"

namespace gw::tls {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

std::string asn1_string(const ASN1_STRING* s) {
  if (s == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int len = ASN1_STRING_length(ip);
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  if (len == 4 && inet_ntop(AF_INET, data, buf, sizeof(buf)) != nullptr) return buf;
  if (len == 16 && inet_ntop(AF_INET6, data, buf, sizeof(buf)) != nullptr) return buf;
  return {};
}

bool san_matches(const std::string& want, const std::string& have) {
  const bool case_insensitive = want.starts_with("DNS:") || want.starts_with("email:");
  return case_insensitive ? iequals(want, have) : want == have;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

CertificateIdentity describe_certificate(X509* cert) {
  CertificateIdentity id;
  if (cert == nullptr) return id;
  id.present = true;
  id.subject = subject_of(cert);
  id.sha256 = sha256_fingerprint(cert);
  const X509_NAME* name = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) {
    id.common_name = asn1_string(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  }
  struct NamesDeleter {
    void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
  };
  std::unique_ptr<GENERAL_NAMES, NamesDeleter> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return id;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    switch (gn->type) {
      case GEN_DNS:
        id.sans.push_back("DNS:" + asn1_string(gn->d.dNSName));
        break;
      case GEN_IPADD:
        if (auto ip = ip_text(gn->d.iPAddress); !ip.empty()) id.sans.push_back("IP:" + ip);
        break;
      case GEN_URI:
        id.sans.push_back("URI:" + asn1_string(gn->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        id.sans.push_back("email:" + asn1_string(gn->d.rfc822Name));
        break;
      default:
        break;
    }
  }
  return id;
}

bool matches(const config::CertificateMatch& match, const CertificateIdentity& cert) {
  if (!cert.present) return false;
  using Kind = config::CertificateMatch::Kind;
  switch (match.kind) {
    case Kind::kSubjectCn:
      return !cert.common_name.empty() && iequals(match.value, cert.common_name);
    case Kind::kSan:
      return std::any_of(cert.sans.begin(), cert.sans.end(),
                         [&](const std::string& san) { return san_matches(match.value, san); });
    case Kind::kSha256:
      return !cert.sha256.empty() && match.value == cert.sha256;
  }
  return false;
}

std::optional<std::string> check_peer_identity(std::span<const config::Peer> peers,
                                               const std::string& calling_ae,
                                               const CertificateIdentity& cert) {
  if (peers.empty()) return std::nullopt;
  std::vector<std::string> bound_titles;  // AE titles this certificate is bound to
  bool calling_ae_bound = false;          // calling_ae appears in peers
  bool calling_ae_matched = false;        // ... with an entry this certificate matches
  for (const auto& peer : peers) {
    const bool cert_matches = matches(peer.certificate, cert);
    if (cert_matches &&
        std::find(bound_titles.begin(), bound_titles.end(), peer.ae_title) == bound_titles.end()) {
      bound_titles.push_back(peer.ae_title);
    }
    if (peer.ae_title == calling_ae) {
      calling_ae_bound = true;
      calling_ae_matched = calling_ae_matched || cert_matches;
    }
  }
  if (!bound_titles.empty() && !calling_ae_matched) {
    return "certificate (" + cert.subject + ") is bound to calling AE title(s) " +
           join(bound_titles) + " in peers, not " + calling_ae;
  }
  if (calling_ae_bound && !cert.present) {
    return "calling AE title " + calling_ae +
           " is bound to a certificate in peers and must call over TLS with it";
  }
  if (calling_ae_bound && !calling_ae_matched) {
    return "calling AE title " + calling_ae +
           " is bound to another certificate in peers than the one presented (" + cert.subject +
           ")";
  }
  return std::nullopt;
}

}  // namespace gw::tls
