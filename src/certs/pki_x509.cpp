#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "certs/pki_internal.h"

namespace gw::certs::detail {
namespace {

using core::ErrorCode;
using core::make_error;

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == lower(prefix);
}

std::optional<std::vector<unsigned char>> parse_ip(const std::string& text) {
  std::array<unsigned char, 16> buf{};
  if (::inet_pton(AF_INET, text.c_str(), buf.data()) == 1) {
    return std::vector<unsigned char>(buf.begin(), buf.begin() + 4);
  }
  if (::inet_pton(AF_INET6, text.c_str(), buf.data()) == 1) {
    return std::vector<unsigned char>(buf.begin(), buf.end());
  }
  return std::nullopt;
}

/// A host name as it may appear in a dNSName: labels of letters, digits, '-' and '_', an
/// optional leading "*." wildcard label.
bool is_dns_name(std::string_view name) {
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') {
    return false;
  }
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return true;
}

core::Result<San> parse_san(std::string_view entry) {
  const std::string text(entry);
  if (auto ip = parse_ip(text)) return San{true, {}, std::move(*ip)};
  if (starts_with_nocase(entry, "IP:")) {
    const std::string addr(entry.substr(3));
    if (auto ip = parse_ip(addr)) return San{true, {}, std::move(*ip)};
    return make_error(ErrorCode::kInvalidArgument, "not an IP address in SAN: " + text);
  }
  std::string_view name = entry;
  if (starts_with_nocase(entry, "DNS:")) {
    name.remove_prefix(4);
  } else if (entry.find(':') != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "unsupported SAN (use DNS:name or IP:address): " + text);
  }
  if (!is_dns_name(name)) {
    return make_error(ErrorCode::kInvalidArgument, "not a valid DNS name in SAN: " + text);
  }
  return San{false, lower(name), {}};
}

core::Result<GeneralNamesPtr> make_general_names(const std::vector<San>& sans) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return make_error(ErrorCode::kInternal, openssl_error());
  for (const San& san : sans) {
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!name) return make_error(ErrorCode::kInternal, openssl_error());
    if (san.is_ip) {
      ASN1_OCTET_STRING* ip = ASN1_OCTET_STRING_new();
      if (ip == nullptr ||
          ASN1_OCTET_STRING_set(ip, san.ip.data(), static_cast<int>(san.ip.size())) != 1) {
        ASN1_OCTET_STRING_free(ip);
        return make_error(ErrorCode::kInternal, openssl_error());
      }
      GENERAL_NAME_set0_value(name.get(), GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (dns == nullptr ||
          ASN1_STRING_set(dns, san.dns.data(), static_cast<int>(san.dns.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        return make_error(ErrorCode::kInternal, openssl_error());
      }
      GENERAL_NAME_set0_value(name.get(), GEN_DNS, dns);
    }
    GENERAL_NAME* raw = name.release();  // the stack owns it once pushed
    if (sk_GENERAL_NAME_push(names.get(), raw) == 0) {
      GENERAL_NAME_free(raw);
      return make_error(ErrorCode::kInternal, openssl_error());
    }
  }
  return names;
}

core::Status add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return make_error(ErrorCode::kInternal, std::string("cannot add extension ") + OBJ_nid2sn(nid) +
                                                ": " + openssl_error());
  }
  return core::ok_status();
}

core::Result<Asn1IntegerPtr> random_serial() {
  std::array<unsigned char, 16> bytes{};
  BignumPtr bn;
  do {
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
      return make_error(ErrorCode::kInternal, "RAND_bytes: " + openssl_error());
    }
    bn.reset(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
    if (!bn) return make_error(ErrorCode::kInternal, openssl_error());
  } while (BN_is_zero(bn.get()));
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return make_error(ErrorCode::kInternal, openssl_error());
  return serial;
}

core::Status set_subject(X509* cert, const std::string& common_name,
                         const std::string& organization) {
  X509_NAME* name = X509_get_subject_name(cert);
  auto add = [&](const char* field, const std::string& value) -> core::Status {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1) {
      return make_error(ErrorCode::kInvalidArgument,
                        std::string("bad ") + field + " '" + value + "': " + openssl_error());
    }
    return core::ok_status();
  };
  if (!organization.empty()) GW_RETURN_IF_ERROR(add("O", organization));
  return add("CN", common_name);
}

const char* key_usage_for(const CertSpec& spec) {
  if (spec.role != Role::kLeaf || spec.leaf_is_ca) return "critical,keyCertSign,cRLSign";
  // keyEncipherment only means something for RSA key transport (TLS 1.2 RSA kx).
  return EVP_PKEY_get_base_id(spec.key) == EVP_PKEY_RSA
             ? "critical,digitalSignature,keyEncipherment"
             : "critical,digitalSignature";
}

const char* eku_for(CertKind kind) {
  switch (kind) {
    case CertKind::kServer:
      return "serverAuth";
    case CertKind::kClient:
      return "clientAuth";
    case CertKind::kBoth:
      return "serverAuth,clientAuth";
  }
  return "serverAuth";
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

core::Result<std::vector<San>> parse_sans(const std::vector<std::string>& entries) {
  std::vector<San> sans;
  for (const std::string& entry : entries) {
    GW_ASSIGN_OR_RETURN(San san, parse_san(entry));
    sans.push_back(std::move(san));
  }
  return sans;
}

/// The SANs of a certificate for `kind`: the given ones, or for a server DNS:<cn> (IP:<cn> if
/// the common name is an address).
core::Result<std::vector<San>> sans_for(const std::optional<CertKind>& kind,
                                        const std::string& common_name,
                                        const std::vector<std::string>& entries) {
  GW_ASSIGN_OR_RETURN(std::vector<San> sans, parse_sans(entries));
  const bool server = kind.has_value() && *kind != CertKind::kClient;
  if (!sans.empty() || !server) return sans;
  auto from_cn = parse_san(common_name);
  if (!from_cn.ok()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a server certificate needs a subjectAltName and the common name '" +
                          common_name + "' is not a host name or IP address; give the SANs");
  }
  sans.push_back(std::move(from_cn).value());
  return sans;
}

core::Result<X509Ptr> build_certificate(const CertSpec& spec) {
  if (spec.common_name.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "common name is required");
  }
  if (spec.not_after <= spec.not_before) {
    return make_error(ErrorCode::kInvalidArgument, "validity ends before it starts");
  }
  ERR_clear_error();
  X509Ptr cert(X509_new());
  if (!cert) return make_error(ErrorCode::kInternal, openssl_error());
  GW_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, random_serial());
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.not_after) == nullptr ||
      X509_set_pubkey(cert.get(), spec.key) != 1) {
    return make_error(ErrorCode::kInternal, openssl_error());
  }
  GW_RETURN_IF_ERROR(set_subject(cert.get(), spec.common_name, spec.organization));
  X509* issuer = spec.issuer_cert != nullptr ? spec.issuer_cert : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1) {
    return make_error(ErrorCode::kInternal, openssl_error());
  }
  EVP_PKEY* signing_key = spec.issuer_key != nullptr ? spec.issuer_key : spec.key;

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
  if (issuer == cert.get() && X509V3_set_issuer_pkey(&ctx, signing_key) != 1) {
    return make_error(ErrorCode::kInternal, openssl_error());
  }
  const char* basic = "critical,CA:FALSE";
  if (spec.role == Role::kRootCa || spec.leaf_is_ca) basic = "critical,CA:TRUE";
  if (spec.role == Role::kIntermediateCa) basic = "critical,CA:TRUE,pathlen:0";
  GW_RETURN_IF_ERROR(add_ext(cert.get(), &ctx, NID_basic_constraints, basic));
  GW_RETURN_IF_ERROR(add_ext(cert.get(), &ctx, NID_key_usage, key_usage_for(spec)));
  if (spec.role == Role::kLeaf && spec.eku.has_value()) {
    GW_RETURN_IF_ERROR(add_ext(cert.get(), &ctx, NID_ext_key_usage, eku_for(*spec.eku)));
  }
  if (!spec.sans.empty()) {
    GW_ASSIGN_OR_RETURN(GeneralNamesPtr names, make_general_names(spec.sans));
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) !=
        1) {
      return make_error(ErrorCode::kInternal, "cannot add subjectAltName: " + openssl_error());
    }
  }
  GW_RETURN_IF_ERROR(add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  // Self-signed: OpenSSL omits the AKI unless told "always". Otherwise an issuer without a
  // subjectKeyIdentifier (an old imported CA) gets issuer+serial instead of a key id.
  const char* aki = issuer == cert.get() ? "keyid:always" : "keyid,issuer";
  GW_RETURN_IF_ERROR(add_ext(cert.get(), &ctx, NID_authority_key_identifier, aki));

  const EVP_MD* digest = spec.digest != nullptr ? spec.digest : EVP_sha256();
  if (X509_sign(cert.get(), signing_key, digest) <= 0) {
    return make_error(ErrorCode::kInternal, "cannot sign certificate: " + openssl_error());
  }
  return cert;
}

std::string serial_hex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return {};
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

}  // namespace gw::certs::detail
