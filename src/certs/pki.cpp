#include "certs/pki.h"

#include <openssl/err.h>

#include <system_error>
#include <utility>

#include "certs/pki_internal.h"
#include "core/log.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::make_error;
using Clock = std::chrono::system_clock;
using detail::build_certificate;
using detail::CertSpec;
using detail::check_days;
using detail::days_from;
using detail::kBackdate;
using detail::lower;
using detail::refuse_existing;
using detail::Role;
using detail::write_certs;

// ---- CA directory -----------------------------------------------------------------------------

constexpr const char* kRootKey = "ca.key";
constexpr const char* kRootCert = "ca.pem";
constexpr const char* kIntermediateKey = "intermediate.key";
constexpr const char* kIntermediateCert = "intermediate.pem";
constexpr const char* kChain = "ca-chain.pem";

}  // namespace

namespace detail {

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

}  // namespace detail

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
  if (n == "rsa-3072" || n == "rsa3072" || n == "rsa") return KeySpec::Type::kRsa3072;
  if (n == "rsa-2048" || n == "rsa2048") return KeySpec::Type::kRsa2048;
  if (n == "rsa-1024" || n == "rsa1024") return KeySpec::Type::kRsa1024;
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown key type '" + std::string(name) + "' (ec-p256, rsa-3072, rsa-2048)");
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

}  // namespace gw::certs
