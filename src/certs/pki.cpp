#include "certs/pki.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <system_error>
#include <utility>

#include "core/log.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::make_error;
using Clock = std::chrono::system_clock;

constexpr auto kBackdate = std::chrono::minutes(5);  // tolerate peers' clock skew

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == lower(prefix);
}

// ---- subjectAltName -------------------------------------------------------------------------

struct San {
  bool is_ip = false;
  std::string dns;
  std::vector<unsigned char> ip;  // 4 or 16 bytes
};

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

// ---- certificate construction -----------------------------------------------------------------

enum class Role { kRootCa, kIntermediateCa, kLeaf };

struct CertSpec {
  Role role = Role::kLeaf;
  std::string common_name;
  std::string organization;
  EVP_PKEY* key = nullptr;         // subject key (public part is certified)
  X509* issuer_cert = nullptr;     // nullptr: self-signed
  EVP_PKEY* issuer_key = nullptr;  // nullptr: self-signed with `key`
  std::time_t not_before = 0;
  std::time_t not_after = 0;
  std::optional<CertKind> eku;     // leaves only
  std::vector<San> sans;           // leaves only; empty: no SAN extension
  bool leaf_is_ca = false;         // tests only
  const EVP_MD* digest = nullptr;  // nullptr: SHA-256
};

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

// ---- CA directory -----------------------------------------------------------------------------

constexpr const char* kRootKey = "ca.key";
constexpr const char* kRootCert = "ca.pem";
constexpr const char* kIntermediateKey = "intermediate.key";
constexpr const char* kIntermediateCert = "intermediate.pem";
constexpr const char* kChain = "ca-chain.pem";

struct Issuer {
  X509Ptr cert;
  PkeyPtr key;
  bool is_intermediate = false;
};

core::Result<Issuer> load_issuer(const fs::path& ca_dir) {
  std::error_code ec;
  const bool has_intermediate =
      fs::exists(ca_dir / kIntermediateKey, ec) && fs::exists(ca_dir / kIntermediateCert, ec);
  const fs::path cert_path = ca_dir / (has_intermediate ? kIntermediateCert : kRootCert);
  const fs::path key_path = ca_dir / (has_intermediate ? kIntermediateKey : kRootKey);
  auto certs = read_certificates(cert_path);
  if (!certs.ok()) {
    return make_error(certs.error().code, "CA certificate: " + certs.error().message);
  }
  auto key = read_private_key(key_path);
  if (!key.ok()) return make_error(key.error().code, "CA key: " + key.error().message);
  Issuer issuer{std::move(certs->front()), std::move(key).value(), has_intermediate};
  if (EVP_PKEY_eq(X509_get0_pubkey(issuer.cert.get()), issuer.key.get()) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument,
                      key_path.string() + " does not match " + cert_path.string());
  }
  if ((X509_get_extension_flags(issuer.cert.get()) & EXFLAG_CA) == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      cert_path.string() + " is not a CA certificate (basicConstraints CA:TRUE)");
  }
  return issuer;
}

core::Status refuse_existing(const std::vector<fs::path>& paths, bool overwrite) {
  if (overwrite) return core::ok_status();
  for (const fs::path& path : paths) {
    std::error_code ec;
    if (fs::exists(path, ec)) {
      return make_error(ErrorCode::kAlreadyExists,
                        path.string() + " already exists (use overwrite to replace it)");
    }
  }
  return core::ok_status();
}

core::Status write_certs(const fs::path& path, const std::vector<X509*>& certs, bool overwrite) {
  GW_ASSIGN_OR_RETURN(const std::string pem, certificates_pem(certs));
  return write_file_atomic(path, pem, 0644, overwrite);
}

std::time_t days_from(std::time_t start, int days) {
  return start + static_cast<std::time_t>(days) * 24 * 60 * 60;
}

core::Status check_days(int days) {
  if (days <= 0 || days > 36500) {
    return make_error(ErrorCode::kInvalidArgument,
                      "validity days must be between 1 and 36500, got " + std::to_string(days));
  }
  return core::ok_status();
}

}  // namespace

std::string_view key_type_name(KeySpec::Type type) {
  switch (type) {
    case KeySpec::Type::kEcP256:
      return "ec-p256";
    case KeySpec::Type::kRsa3072:
      return "rsa3072";
    case KeySpec::Type::kRsa2048:
      return "rsa2048";
    case KeySpec::Type::kRsa1024:
      return "rsa1024";
  }
  return "ec-p256";
}

core::Result<KeySpec::Type> parse_key_type(std::string_view name) {
  const std::string n = lower(name);
  if (n == "ec-p256" || n == "ec" || n == "p256" || n == "p-256") return KeySpec::Type::kEcP256;
  if (n == "rsa3072" || n == "rsa") return KeySpec::Type::kRsa3072;
  if (n == "rsa2048") return KeySpec::Type::kRsa2048;
  if (n == "rsa1024") return KeySpec::Type::kRsa1024;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown key type '" + std::string(name) + "' (ec-p256, rsa3072, rsa2048)");
}

core::Result<PkeyPtr> generate_key(const KeySpec& spec) {
  if (spec.type == KeySpec::Type::kRsa1024 && !spec.allow_weak) {
    return make_error(ErrorCode::kInvalidArgument,
                      "RSA-1024 keys are too weak (allow_weak not set)");
  }
  ERR_clear_error();
  const bool ec = spec.type == KeySpec::Type::kEcP256;
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, ec ? "EC" : "RSA", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    return make_error(ErrorCode::kInternal, "key generation: " + openssl_error());
  }
  if (ec) {
    if (EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1) {
      return make_error(ErrorCode::kInternal, "key generation: " + openssl_error());
    }
  } else {
    int bits = 3072;
    if (spec.type == KeySpec::Type::kRsa2048) bits = 2048;
    if (spec.type == KeySpec::Type::kRsa1024) bits = 1024;
    if (EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) != 1) {
      return make_error(ErrorCode::kInternal, "key generation: " + openssl_error());
    }
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    return make_error(ErrorCode::kInternal, "key generation: " + openssl_error());
  }
  return PkeyPtr(raw);
}

core::Result<CaFiles> init_ca(const fs::path& dir, const CaOptions& options) {
  GW_RETURN_IF_ERROR(check_days(options.days));
  CaFiles files{dir / kRootKey, dir / kRootCert, {}, {}, {}};
  if (options.with_intermediate) {
    files.intermediate_key = dir / kIntermediateKey;
    files.intermediate_cert = dir / kIntermediateCert;
    files.chain = dir / kChain;
  }
  GW_RETURN_IF_ERROR(refuse_existing({files.root_key, files.root_cert, files.intermediate_key,
                                      files.intermediate_cert, files.chain},
                                     options.overwrite));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec,
                  fs::perm_options::replace, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot chmod " + dir.string() + ": " + ec.message());

  const std::time_t now = to_time_t(Clock::now() - kBackdate);
  GW_ASSIGN_OR_RETURN(PkeyPtr root_key, generate_key(options.key));
  CertSpec root_spec;
  root_spec.role = Role::kRootCa;
  root_spec.common_name = options.common_name;
  root_spec.organization = options.organization;
  root_spec.key = root_key.get();
  root_spec.not_before = now;
  root_spec.not_after = days_from(now, options.days);
  GW_ASSIGN_OR_RETURN(X509Ptr root, build_certificate(root_spec));

  X509Ptr intermediate;
  PkeyPtr intermediate_key;
  if (options.with_intermediate) {
    GW_ASSIGN_OR_RETURN(intermediate_key, generate_key(options.key));
    CertSpec spec;
    spec.role = Role::kIntermediateCa;
    spec.common_name = options.intermediate_common_name;
    spec.organization = options.organization;
    spec.key = intermediate_key.get();
    spec.issuer_cert = root.get();
    spec.issuer_key = root_key.get();
    spec.not_before = now;
    spec.not_after = root_spec.not_after;
    GW_ASSIGN_OR_RETURN(intermediate, build_certificate(spec));
  }

  GW_RETURN_IF_ERROR(write_private_key(files.root_key, root_key.get(), options.overwrite));
  GW_RETURN_IF_ERROR(write_certs(files.root_cert, {root.get()}, options.overwrite));
  if (intermediate) {
    GW_RETURN_IF_ERROR(
        write_private_key(files.intermediate_key, intermediate_key.get(), options.overwrite));
    GW_RETURN_IF_ERROR(
        write_certs(files.intermediate_cert, {intermediate.get()}, options.overwrite));
    GW_RETURN_IF_ERROR(
        write_certs(files.chain, {intermediate.get(), root.get()}, options.overwrite));
  } else {
    // Replacing a CA that had an intermediate: issue() must not find the old one.
    for (const char* stale : {kIntermediateKey, kIntermediateCert, kChain}) {
      fs::remove(dir / stale, ec);
      if (ec)
        return make_error(ErrorCode::kIo,
                          std::string("cannot remove stale ") + stale + ": " + ec.message());
    }
  }
  core::logger("certs")->info("pki: CA created dir={} cn=\"{}\" intermediate={} key={}",
                              dir.string(), options.common_name, options.with_intermediate,
                              key_type_name(options.key.type));
  return files;
}

std::string_view cert_kind_name(CertKind kind) {
  switch (kind) {
    case CertKind::kServer:
      return "server";
    case CertKind::kClient:
      return "client";
    case CertKind::kBoth:
      return "both";
  }
  return "server";
}

core::Result<CertKind> parse_cert_kind(std::string_view name) {
  const std::string n = lower(name);
  if (n == "server") return CertKind::kServer;
  if (n == "client") return CertKind::kClient;
  if (n == "both") return CertKind::kBoth;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown certificate kind '" + std::string(name) + "' (server, client, both)");
}

core::Result<IssuedCertificate> issue(const fs::path& ca_dir, const IssueOptions& options) {
  if (options.out_cert.empty() || options.out_key.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "output certificate and key paths are required");
  }
  GW_RETURN_IF_ERROR(check_days(options.days));
  GW_RETURN_IF_ERROR(refuse_existing({options.out_cert, options.out_key}, options.overwrite));
  GW_ASSIGN_OR_RETURN(std::vector<San> sans,
                      sans_for(options.kind, options.common_name, options.sans));
  GW_ASSIGN_OR_RETURN(Issuer issuer, load_issuer(ca_dir));
  GW_ASSIGN_OR_RETURN(PkeyPtr key, generate_key(options.key));

  const std::time_t now = to_time_t(Clock::now() - kBackdate);
  CertSpec spec;
  spec.role = Role::kLeaf;
  spec.common_name = options.common_name;
  spec.organization = options.organization;
  spec.key = key.get();
  spec.issuer_cert = issuer.cert.get();
  spec.issuer_key = issuer.key.get();
  spec.not_before = now;
  spec.not_after = days_from(now, options.days);
  spec.eku = options.kind;
  spec.sans = std::move(sans);
  GW_ASSIGN_OR_RETURN(X509Ptr cert, build_certificate(spec));

  std::vector<X509*> chain = {cert.get()};
  if (options.include_chain_in_cert && issuer.is_intermediate) chain.push_back(issuer.cert.get());
  GW_RETURN_IF_ERROR(write_private_key(options.out_key, key.get(), options.overwrite));
  GW_RETURN_IF_ERROR(write_certs(options.out_cert, chain, options.overwrite));
  IssuedCertificate issued{options.out_cert, options.out_key, serial_hex(cert.get())};
  core::logger("certs")->info("pki: issued kind={} cn=\"{}\" serial={} days={} cert={}",
                              cert_kind_name(options.kind), options.common_name, issued.serial_hex,
                              options.days, options.out_cert.string());
  return issued;
}

core::Status export_p12(const ExportP12Options& options) {
  if (options.out.empty()) return make_error(ErrorCode::kInvalidArgument, "output path required");
  GW_RETURN_IF_ERROR(refuse_existing({options.out}, options.overwrite));
  GW_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, read_certificates(options.cert));
  GW_ASSIGN_OR_RETURN(PkeyPtr key, read_private_key(options.key));
  X509* leaf = certs.front().get();
  if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key.get()) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument,
                      options.key.string() + " does not match " + options.cert.string());
  }
  std::vector<X509Ptr> extra;
  if (!options.ca.empty()) {
    GW_ASSIGN_OR_RETURN(extra, read_certificates(options.ca));
  }
  X509StackPtr chain(sk_X509_new_null());
  if (!chain) return make_error(ErrorCode::kInternal, openssl_error());
  auto add_to_chain = [&](X509* cert) -> core::Status {
    for (int i = 0; i < sk_X509_num(chain.get()); ++i) {
      if (X509_cmp(sk_X509_value(chain.get(), i), cert) == 0) return core::ok_status();
    }
    if (X509_cmp(leaf, cert) == 0) return core::ok_status();
    if (X509_up_ref(cert) != 1) return make_error(ErrorCode::kInternal, openssl_error());
    if (sk_X509_push(chain.get(), cert) == 0) {
      X509_free(cert);
      return make_error(ErrorCode::kInternal, openssl_error());
    }
    return core::ok_status();
  };
  for (std::size_t i = 1; i < certs.size(); ++i) GW_RETURN_IF_ERROR(add_to_chain(certs[i].get()));
  for (const X509Ptr& cert : extra) GW_RETURN_IF_ERROR(add_to_chain(cert.get()));

  std::string name = options.friendly_name;
  if (name.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) >
        0) {
      name = cn;
    }
  }
  ERR_clear_error();
  // nid/iter 0: OpenSSL 3 defaults, PBES2 with AES-256-CBC and an HMAC-SHA-256 MAC.
  Pkcs12Ptr p12(PKCS12_create(options.password.c_str(), name.empty() ? nullptr : name.c_str(),
                              key.get(), leaf, chain.get(), 0, 0, 0, 0, 0));
  if (!p12) return make_error(ErrorCode::kInternal, "PKCS12_create: " + openssl_error());
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || i2d_PKCS12_bio(bio.get(), p12.get()) != 1) {
    return make_error(ErrorCode::kInternal, "cannot encode PKCS#12: " + openssl_error());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  GW_RETURN_IF_ERROR(write_file_atomic(options.out,
                                       std::string_view(data, static_cast<std::size_t>(size)), 0600,
                                       options.overwrite));
  core::logger("certs")->info("pki: PKCS#12 written out={} alias=\"{}\" chain={}",
                              options.out.string(), name, sk_X509_num(chain.get()));
  return core::ok_status();
}

core::Result<IssuedCertificate> make_test_certificate(const TestCertificateOptions& options) {
  if (options.out_cert.empty() || options.out_key.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "output certificate and key paths are required");
  }
  GW_ASSIGN_OR_RETURN(std::vector<San> sans, parse_sans(options.sans));
  GW_ASSIGN_OR_RETURN(PkeyPtr key, generate_key(options.key));
  std::optional<Issuer> issuer;
  if (!options.self_signed) {
    GW_ASSIGN_OR_RETURN(issuer, load_issuer(options.ca_dir));
  }
  const auto now = Clock::now();
  CertSpec spec;
  spec.role = Role::kLeaf;
  spec.common_name = options.common_name;
  spec.key = key.get();
  spec.issuer_cert = issuer ? issuer->cert.get() : nullptr;
  spec.issuer_key = issuer ? issuer->key.get() : nullptr;
  spec.not_before = to_time_t(options.not_before.value_or(now - kBackdate));
  spec.not_after = to_time_t(options.not_after.value_or(now + std::chrono::days(365)));
  spec.eku = options.kind;
  spec.sans = std::move(sans);
  spec.leaf_is_ca = options.is_ca;
  spec.digest = options.sha1_signature ? EVP_sha1() : nullptr;
  GW_ASSIGN_OR_RETURN(X509Ptr cert, build_certificate(spec));
  GW_RETURN_IF_ERROR(write_private_key(options.out_key, key.get(), /*overwrite=*/true));
  GW_RETURN_IF_ERROR(write_certs(options.out_cert, {cert.get()}, /*overwrite=*/true));
  return IssuedCertificate{options.out_cert, options.out_key, serial_hex(cert.get())};
}

}  // namespace gw::certs
