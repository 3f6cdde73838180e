#include "certs/x509_info.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include <array>
#include <cstdio>
#include <ctime>

#include "certs/openssl_util.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kSecondsPerDay = std::int64_t{24} * 60 * 60;
constexpr int kMinRsaBits = 2048;
constexpr int kMinEcBits = 256;

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  // RFC 2253 order (most specific first), UTF-8 kept readable.
  const unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(size)};
}

std::string hex_serial(const X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return {};
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  const int len = ASN1_STRING_length(ip);
  const unsigned char* bytes = ASN1_STRING_get0_data(ip);
  char buf[INET6_ADDRSTRLEN] = {};
  if (len == 4 && ::inet_ntop(AF_INET, bytes, buf, sizeof(buf)) != nullptr) return buf;
  if (len == 16 && ::inet_ntop(AF_INET6, bytes, buf, sizeof(buf)) != nullptr) return buf;
  return "<" + std::to_string(len) + "-byte address>";
}

std::string asn1_text(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<std::size_t>(ASN1_STRING_length(s))};
}

std::vector<std::string> subject_alt_names(X509* cert) {
  std::vector<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    switch (name->type) {
      case GEN_DNS:
        out.push_back("DNS:" + asn1_text(name->d.dNSName));
        break;
      case GEN_IPADD:
        out.push_back("IP:" + ip_text(name->d.iPAddress));
        break;
      case GEN_EMAIL:
        out.push_back("email:" + asn1_text(name->d.rfc822Name));
        break;
      case GEN_URI:
        out.push_back("URI:" + asn1_text(name->d.uniformResourceIdentifier));
        break;
      case GEN_DIRNAME:
        out.push_back("DirName:" + name_text(name->d.directoryName));
        break;
      default:
        out.emplace_back("othername");
        break;
    }
  }
  return out;
}

std::string object_name(const ASN1_OBJECT* obj) {
  const int nid = OBJ_obj2nid(obj);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  std::array<char, 128> buf{};
  OBJ_obj2txt(buf.data(), static_cast<int>(buf.size()), obj, 1);
  return buf.data();
}

std::vector<std::string> extended_key_usages(X509* cert) {
  std::vector<std::string> out;
  ExtKeyUsagePtr ekus(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  if (!ekus) return out;
  for (int i = 0; i < sk_ASN1_OBJECT_num(ekus.get()); ++i) {
    out.push_back(object_name(sk_ASN1_OBJECT_value(ekus.get(), i)));
  }
  return out;
}

std::string key_type_of(const EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_RSA_PSS:
      return "RSA-PSS";
    case EVP_PKEY_EC:
      return "EC";
    case EVP_PKEY_DSA:
      return "DSA";
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
    default:
      break;
  }
  const char* name = EVP_PKEY_get0_type_name(key);
  return name != nullptr ? name : "unknown";
}

std::string fingerprint(const X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md.data(), &len) != 1) return {};
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    char byte[4];
    std::snprintf(byte, sizeof(byte), i == 0 ? "%02X" : ":%02X", md[i]);
    out += byte;
  }
  return out;
}

std::int64_t whole_days_until(const ASN1_TIME* time, std::time_t now) {
  std::time_t t = 0;
  if (!to_time_t(time, t)) return 0;
  const std::int64_t diff = static_cast<std::int64_t>(t) - static_cast<std::int64_t>(now);
  // Floor, so that a certificate that expired an hour ago is at -1, not 0.
  return diff >= 0 ? diff / kSecondsPerDay : -((-diff + kSecondsPerDay - 1) / kSecondsPerDay);
}

/// "" for the leaf, "chain certificate #2 (CN=…): " for the others.
std::string label(std::size_t index, const CertificateInfo& info) {
  if (index == 0) return {};
  return "chain certificate #" + std::to_string(index + 1) + " (" + info.subject + "): ";
}

/// Key size and signature digest of one certificate.
void audit_strength(X509* cert, const CertificateInfo& info, const std::string& prefix,
                    bool check_signature, std::vector<std::string>& problems) {
  const bool rsa_like =
      info.key_type == "RSA" || info.key_type == "RSA-PSS" || info.key_type == "DSA";
  if (rsa_like && info.key_bits < kMinRsaBits) {
    problems.push_back(prefix + "key too small: " + info.key_type + " " +
                       std::to_string(info.key_bits) + " bits (minimum " +
                       std::to_string(kMinRsaBits) + ")");
  } else if (info.key_type == "EC" && info.key_bits < kMinEcBits) {
    problems.push_back(prefix + "key too small: EC " + std::to_string(info.key_bits) +
                       " bits (minimum " + std::to_string(kMinEcBits) + ")");
  }
  if (!check_signature) return;
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid) != 1) return;
  if (md_nid == NID_sha1) {
    problems.push_back(prefix + "SHA-1 signature (" + info.signature_algorithm +
                       "); reissue with SHA-256");
  } else if (md_nid == NID_md5 || md_nid == NID_md5_sha1) {
    problems.push_back(prefix + "MD5 signature (" + info.signature_algorithm +
                       "); reissue with SHA-256");
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

bool is_ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

void check_usage(X509* leaf, const CertificateInfo& info, Purpose purpose, CheckReport& report) {
  const std::uint32_t flags = X509_get_extension_flags(leaf);
  const char* wanted = purpose == Purpose::kServer ? "serverAuth" : "clientAuth";
  if ((flags & EXFLAG_XKUSAGE) != 0) {
    const std::uint32_t need = purpose == Purpose::kServer ? XKU_SSL_SERVER : XKU_SSL_CLIENT;
    if ((X509_get_extended_key_usage(leaf) & need) == 0) {
      report.problems.push_back(std::string("missing ") + wanted +
                                " in extendedKeyUsage (has: " + join(info.ekus) + ")");
    }
  } else {
    report.warnings.push_back(std::string("no extendedKeyUsage extension; ") + wanted +
                              " is allowed by default, but some peers expect it");
  }
  if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
    report.problems.emplace_back("keyUsage lacks digitalSignature (TLS 1.3 and ECDHE need it)");
  }
  if (info.is_ca) {
    report.warnings.emplace_back("the first certificate is a CA certificate, not an end entity");
  }
}

void check_hostname(X509* leaf, const CertificateInfo& info, const std::string& hostname,
                    CheckReport& report) {
  if (hostname.empty()) return;
  const bool match = is_ip_literal(hostname)
                         ? X509_check_ip_asc(leaf, hostname.c_str(), 0) == 1
                         : X509_check_host(leaf, hostname.data(), hostname.size(),
                                           X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1;
  ERR_clear_error();
  if (match) return;
  report.problems.push_back("hostname '" + hostname + "' not in subjectAltName" +
                            (info.sans.empty()
                                 ? std::string(" (the certificate has no subjectAltName)")
                                 : " (" + join(info.sans) + ")"));
}

/// The readers take DER as well, but every TLS context of the gateway loads PEM only.
std::string der_problem(const std::string& what, const std::string& openssl_command) {
  return what + " is DER-encoded: dicom-gw loads PEM only (convert it with `openssl " +
         openssl_command + " -inform der -in FILE -out FILE.pem`)";
}

void check_key(const CheckOptions& options, const std::vector<X509Ptr>& certs,
               const std::vector<CertificateInfo>& infos, CheckReport& report) {
  if (options.key.empty()) return;
  auto key = read_private_key(options.key);
  if (!key.ok()) {
    report.problems.push_back("cannot read private key: " + key.error().message);
    return;
  }
  if (!holds_pem(options.key)) report.problems.push_back(der_problem("private key", "pkey"));
  if (EVP_PKEY_eq(X509_get0_pubkey(certs.front().get()), key->get()) == 1) return;
  for (std::size_t i = 1; i < certs.size(); ++i) {
    if (EVP_PKEY_eq(X509_get0_pubkey(certs[i].get()), key->get()) == 1) {
      ERR_clear_error();
      report.problems.push_back("certificates are out of order: the key matches certificate #" +
                                std::to_string(i + 1) + " (" + infos[i].subject +
                                "); the certificate of the key must come first");
      return;
    }
  }
  ERR_clear_error();
  report.problems.emplace_back("private key does not match the certificate");
}

/// Verifies leaf + the rest of the cert file against the CA; returns the verified chain (leaf
/// to anchor) or an empty vector. Time is checked separately (NO_CHECK_TIME) so an expired
/// certificate is reported once, as expired, and not again as a chain error.
std::vector<X509Ptr> verify_chain(const CheckOptions& options, const std::vector<X509Ptr>& certs,
                                  CheckReport& report) {
  std::vector<X509Ptr> verified;
  if (options.ca.empty() && !options.use_system_trust) return verified;
  X509StorePtr store(X509_STORE_new());
  if (!store) {
    report.problems.push_back("cannot verify chain: " + openssl_error());
    return verified;
  }
  if (!options.ca.empty()) {
    auto anchors = read_certificates(options.ca);
    if (!anchors.ok()) {
      report.problems.push_back("cannot read CA file: " + anchors.error().message);
      return verified;
    }
    if (!holds_pem(options.ca)) report.problems.push_back(der_problem("CA file", "x509"));
    for (const X509Ptr& anchor : *anchors) {
      if (X509_STORE_add_cert(store.get(), anchor.get()) != 1) ERR_clear_error();  // duplicate
    }
  } else if (X509_STORE_set_default_paths(store.get()) != 1) {
    report.problems.push_back("cannot load the system trust store: " + openssl_error());
    return verified;
  }
  X509StackPtr untrusted(sk_X509_new_null());
  if (!untrusted) {
    report.problems.push_back("cannot verify chain: " + openssl_error());
    return verified;
  }
  for (std::size_t i = 1; i < certs.size(); ++i) {
    if (X509_up_ref(certs[i].get()) != 1) continue;
    if (sk_X509_push(untrusted.get(), certs[i].get()) == 0) X509_free(certs[i].get());
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), store.get(), certs.front().get(), untrusted.get()) != 1) {
    report.problems.push_back("cannot verify chain: " + openssl_error());
    return verified;
  }
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    std::string where;
    if (X509* current = X509_STORE_CTX_get_current_cert(ctx.get()); current != nullptr) {
      where = " (at " + name_text(X509_get_subject_name(current)) + ")";
    }
    report.problems.push_back(std::string("chain does not verify: ") +
                              X509_verify_cert_error_string(error) + where);
    report.chain_verified = false;
    ERR_clear_error();
    return verified;
  }
  report.chain_verified = true;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* cert = sk_X509_value(chain, i);
    if (X509_up_ref(cert) == 1) verified.emplace_back(cert);
  }
  return verified;
}

}  // namespace

CertificateInfo describe_certificate(X509* cert, TimePoint now) {
  CertificateInfo info;
  info.subject = name_text(X509_get_subject_name(cert));
  info.issuer = name_text(X509_get_issuer_name(cert));
  info.serial_hex = hex_serial(cert);
  info.not_before = iso8601(X509_get0_notBefore(cert));
  info.not_after = iso8601(X509_get0_notAfter(cert));
  info.days_until_expiry = whole_days_until(X509_get0_notAfter(cert), to_time_t(now));
  info.sans = subject_alt_names(cert);
  info.ekus = extended_key_usages(cert);
  if (const EVP_PKEY* key = X509_get0_pubkey(cert); key != nullptr) {
    info.key_type = key_type_of(key);
    info.key_bits = EVP_PKEY_get_bits(key);
  }
  info.signature_algorithm = OBJ_nid2ln(X509_get_signature_nid(cert));
  info.sha256_fingerprint = fingerprint(cert);
  info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
  info.self_signed = X509_self_signed(cert, 0) == 1;
  ERR_clear_error();
  return info;
}

core::Result<CertificateInfo> inspect_certificate(const fs::path& path, TimePoint now) {
  GW_ASSIGN_OR_RETURN(const std::vector<X509Ptr> certs, read_certificates(path));
  return describe_certificate(certs.front().get(), now);
}

core::Result<std::vector<CertificateInfo>> inspect_chain(const fs::path& path, TimePoint now) {
  GW_ASSIGN_OR_RETURN(const std::vector<X509Ptr> certs, read_certificates(path));
  std::vector<CertificateInfo> out;
  out.reserve(certs.size());
  for (const X509Ptr& cert : certs) out.push_back(describe_certificate(cert.get(), now));
  return out;
}

std::string_view cert_status_name(CertStatus status) {
  switch (status) {
    case CertStatus::kValid:
      return "valid";
    case CertStatus::kExpiring:
      return "expiring";
    case CertStatus::kExpired:
      return "expired";
    case CertStatus::kNotYetValid:
      return "not_yet_valid";
    case CertStatus::kUnreadable:
      return "unreadable";
  }
  return "unreadable";
}

CheckReport check_certificate(const CheckOptions& options) {
  CheckReport report;
  const TimePoint now = options.now.value_or(std::chrono::system_clock::now());
  std::time_t now_t = to_time_t(now);

  auto certs = read_certificates(options.cert);
  if (!certs.ok()) {
    report.problems.push_back("cannot parse certificate: " + certs.error().message);
    return report;
  }
  if (!holds_pem(options.cert)) report.problems.push_back(der_problem("certificate file", "x509"));
  for (const X509Ptr& cert : *certs) report.chain.push_back(describe_certificate(cert.get(), now));
  X509* leaf = certs->front().get();
  const CertificateInfo& info = report.chain.front();

  // Validity window of the leaf: the status.
  if (X509_cmp_time(X509_get0_notAfter(leaf), &now_t) < 0) {
    report.status = CertStatus::kExpired;
    report.problems.push_back("expired on " + info.not_after);
  } else if (X509_cmp_time(X509_get0_notBefore(leaf), &now_t) > 0) {
    report.status = CertStatus::kNotYetValid;
    report.problems.push_back("not yet valid: valid from " + info.not_before);
  } else if (info.days_until_expiry <= options.expiring_days) {
    report.status = CertStatus::kExpiring;
    report.warnings.push_back("expires in " + std::to_string(info.days_until_expiry) +
                              " days, on " + info.not_after);
  } else {
    report.status = CertStatus::kValid;
  }

  check_key(options, *certs, report.chain, report);
  check_usage(leaf, info, options.purpose, report);
  check_hostname(leaf, info, options.hostname, report);

  // Strength and issuer validity over the verified chain when there is one (it includes CA
  // certificates from the CA file), else over the certificates of the file.
  const std::vector<X509Ptr> verified = verify_chain(options, *certs, report);
  const std::vector<X509Ptr>& audited = verified.empty() ? *certs : verified;
  for (std::size_t i = 0; i < audited.size(); ++i) {
    X509* cert = audited[i].get();
    const CertificateInfo cert_info = i == 0 ? info : describe_certificate(cert, now);
    // A trust anchor's own signature is never checked by TLS peers.
    const bool check_signature = i == 0 || !cert_info.self_signed;
    audit_strength(cert, cert_info, label(i, cert_info), check_signature, report.problems);
    if (i == 0) continue;
    if (X509_cmp_time(X509_get0_notAfter(cert), &now_t) < 0) {
      report.problems.push_back(label(i, cert_info) + "expired on " + cert_info.not_after);
    } else if (X509_cmp_time(X509_get0_notBefore(cert), &now_t) > 0) {
      report.problems.push_back(label(i, cert_info) + "not yet valid: valid from " +
                                cert_info.not_before);
    }
  }
  ERR_clear_error();
  return report;
}

}  // namespace gw::certs
