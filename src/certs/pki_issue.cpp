#include <utility>

#include "certs/pki.h"
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
using detail::Issuer;
using detail::kBackdate;
using detail::load_issuer;
using detail::lower;
using detail::parse_sans;
using detail::refuse_existing;
using detail::Role;
using detail::San;
using detail::sans_for;
using detail::serial_hex;
using detail::write_certs;

}  // namespace

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
