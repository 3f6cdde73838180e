#pragma once
/// OpenSSL 3 handles owned by unique_ptr, and the few file helpers the PKI and the inspector
/// share: read every certificate of a PEM bundle, read an unencrypted private key, drain the
/// OpenSSL error queue into a message, write a file atomically with a given mode.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gw::certs {

/// Calls an OpenSSL free function; `Deleter<&X509_free>`.
template <auto kFree>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    kFree(p);
  }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<&EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<&EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<&X509_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<&X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<&X509_STORE_CTX_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<&X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<&BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<&BN_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<&ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<&ASN1_TIME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<&GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<&GENERAL_NAME_free>>;
using ExtKeyUsagePtr = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<&EXTENDED_KEY_USAGE_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, Deleter<&PKCS12_free>>;

/// A STACK_OF(X509) that owns its certificates (sk_X509_pop_free).
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

/// The OpenSSL error queue as one message ("reason; reason"), emptied. `fallback` when the
/// queue is empty.
std::string openssl_error(std::string_view fallback = "unknown OpenSSL error");

/// Every certificate in `path`: a PEM bundle (leaf first, as written), or one DER certificate.
/// kNotFound if the file does not exist, kInvalidArgument if it holds no certificate.
core::Result<std::vector<X509Ptr>> read_certificates(const std::filesystem::path& path);
/// Same, from PEM (or DER) bytes in memory (uploads).
core::Result<std::vector<X509Ptr>> parse_certificates(std::string_view data);

/// An unencrypted private key (PEM PKCS#8 or traditional, or DER). An encrypted key is
/// refused with a message saying so; there is never a terminal prompt.
core::Result<PkeyPtr> read_private_key(const std::filesystem::path& path);

/// Whether `path` holds a PEM block. The readers above also take DER, but the TLS contexts
/// (tls/context.cpp) load PEM only.
bool holds_pem(const std::filesystem::path& path);

/// PEM text of certificates, concatenated in order.
core::Result<std::string> certificates_pem(const std::vector<X509*>& certs);
/// Writes `key` as unencrypted PKCS#8 PEM with mode 0600 (atomically, see below). The PEM
/// text only lives in an OpenSSL buffer that is cleansed when freed.
core::Status write_private_key(const std::filesystem::path& path, EVP_PKEY* key, bool overwrite);

/// Writes `data` to a temporary file beside `path` with `mode`, fsyncs, renames over `path`,
/// fsyncs the directory. When `path` is a symlink its target is replaced and the link stays.
/// kAlreadyExists if `path` exists and `overwrite` is false.
core::Status write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               mode_t mode, bool overwrite);

/// "2025-01-31T12:00:00Z"; empty if the time cannot be decoded.
std::string iso8601(const ASN1_TIME* time);
/// Seconds since the epoch of an ASN1_TIME; false if it cannot be decoded.
bool to_time_t(const ASN1_TIME* time, std::time_t& out);
std::time_t to_time_t(std::chrono::system_clock::time_point tp);

}  // namespace gw::certs
