#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "certs/pki.h"
#include "certs/pki_internal.h"
#include "core/log.h"

namespace gw::certs {
namespace {

using core::ErrorCode;
using core::make_error;
using detail::refuse_existing;

}  // namespace

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

}  // namespace gw::certs
