#include "tls/context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <ctime>

namespace gw::tls {

using core::ErrorCode;
using core::make_error;
namespace fs = std::filesystem;

namespace {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free_all(bio); }
};

/// ex_data slots: the per-connection VerifyFailure (SSL) and the "accept anything" flag
/// (SSL_CTX). Asio uses SSL_CTX's app_data for its own callback, so we stay off it.
int ssl_record_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int ctx_accept_all_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
bool accept_all_flag = true;  // address stored in the SSL_CTX slot; never changes

/// The OpenSSL error queue as one message, emptied.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string text;
    if (reason != nullptr) {
      text = reason;
    } else {
      char buf[256] = {};
      ERR_error_string_n(e, buf, sizeof(buf));
      text = buf;
    }
    if (out.find(text) == std::string::npos) out += (out.empty() ? "" : "; ") + text;
  }
  return out;
}

/// Records the first failure and, for no_verify contexts, accepts anyway. A C callback: no
/// exception may leave it.
int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
  try {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl == nullptr || preverify_ok == 1) return preverify_ok;
    if (auto* record = static_cast<VerifyFailure*>(SSL_get_ex_data(ssl, ssl_record_index()));
        record != nullptr && !record->failed()) {
      record->error = X509_STORE_CTX_get_error(store);
      record->depth = X509_STORE_CTX_get_error_depth(store);
      if (X509* cert = X509_STORE_CTX_get_current_cert(store)) record->subject = subject_of(cert);
    }
    if (SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_accept_all_index()) != nullptr) return 1;
    return 0;
  } catch (...) {
    return 0;
  }
}

/// kConfig "<key>: <path>: <why>" unless `path` names a readable regular file.
core::Status check_file(std::string_view key, const fs::path& path) {
  if (path.empty()) return make_error(ErrorCode::kConfig, std::string(key) + ": not set");
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return make_error(ErrorCode::kConfig,
                      std::string(key) + ": " + path.string() + ": no such file");
  }
  if (!fs::is_regular_file(st)) {
    return make_error(ErrorCode::kConfig,
                      std::string(key) + ": " + path.string() + ": not a regular file");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return make_error(ErrorCode::kConfig,
                      std::string(key) + ": " + path.string() + ": not readable (permissions)");
  }
  return {};
}

/// Loads our certificate chain and key and checks that they belong together.
core::Status load_identity(SSL_CTX* ctx, std::string_view cert_key, const fs::path& cert,
                           std::string_view key_key, const fs::path& key) {
  GW_RETURN_IF_ERROR(check_file(cert_key, cert));
  GW_RETURN_IF_ERROR(check_file(key_key, key));
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    const unsigned long e = ERR_peek_last_error();
    std::string why = openssl_errors();
    if (ERR_GET_REASON(e) == SSL_R_EE_KEY_TOO_SMALL ||
        ERR_GET_REASON(e) == SSL_R_CA_KEY_TOO_SMALL) {
      why = "key too small for security level 2 (RSA needs 2048 bits, EC 224)";
    } else if (ERR_GET_REASON(e) == SSL_R_CA_MD_TOO_WEAK) {
      why = "signature algorithm too weak (SHA-1 or MD5) for security level 2";
    } else if (ERR_GET_LIB(e) == ERR_LIB_PEM) {
      why = "no PEM certificate in it (" + why + ")";
    }
    return make_error(ErrorCode::kConfig,
                      std::string(cert_key) + ": " + cert.string() + ": cannot use: " + why);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    const std::string why = openssl_errors();
    if (why.find("values mismatch") != std::string::npos ||
        why.find("mismatch") != std::string::npos) {
      return make_error(ErrorCode::kConfig, std::string(key_key) + ": " + key.string() +
                                                " does not match the certificate in " +
                                                std::string(cert_key));
    }
    return make_error(ErrorCode::kConfig, std::string(key_key) + ": " + key.string() +
                                              ": cannot read the private key (PEM, unencrypted; " +
                                              why + ")");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::kConfig, std::string(key_key) + ": " + key.string() +
                                              " does not match the certificate in " +
                                              std::string(cert_key));
  }
  return {};
}

core::Status load_trust(SSL_CTX* ctx, std::string_view key, const fs::path& ca,
                        bool client_ca_list) {
  GW_RETURN_IF_ERROR(check_file(key, ca));
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    return make_error(ErrorCode::kConfig, std::string(key) + ": " + ca.string() +
                                              ": no usable CA certificate in it (" +
                                              openssl_errors() + ")");
  }
  if (client_ca_list) {
    // The CA names sent in CertificateRequest help a client pick the right certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    ERR_clear_error();
  }
  return {};
}

core::Status load_crl(SSL_CTX* ctx, const fs::path& crl) {
  GW_RETURN_IF_ERROR(check_file("tls.crl_file", crl));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
  ERR_clear_error();
  if (lookup == nullptr || X509_load_crl_file(lookup, crl.c_str(), X509_FILETYPE_PEM) <= 0) {
    return make_error(ErrorCode::kConfig, "tls.crl_file: " + crl.string() + ": no PEM CRL in it (" +
                                              openssl_errors() + ")");
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  return {};
}

/// Subject, serial and expiry warnings of our own certificate.
void describe_own_certificate(SSL_CTX* ctx, std::string& subject, std::string& serial,
                              std::vector<std::string>& warnings) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return;
  subject = subject_of(cert);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    warnings.push_back("own certificate (" + subject + ") has expired: peers will refuse it");
  } else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    warnings.push_back("own certificate (" + subject + ") is not yet valid");
  } else {
    int days = 0;
    int secs = 0;
    if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)) == 1 && days < 30) {
      warnings.push_back("own certificate (" + subject + ") expires in " + std::to_string(days) +
                         " day(s)");
    }
  }
}

SslCtxPtr new_ctx(const SSL_METHOD* method) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) return ctx;
  // Never prompt on a terminal for a key passphrase: encrypted keys are refused instead.
  SSL_CTX_set_default_passwd_cb(ctx.get(), [](char*, int, int, void*) { return 0; });
  return ctx;
}

}  // namespace

void attach_verify_record(SSL* ssl, VerifyFailure* record) {
  SSL_set_ex_data(ssl, ssl_record_index(), record);
}

std::string subject_of(X509* cert) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!bio || cert == nullptr) return {};
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string sha256_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &n) != 1) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    if (i > 0) out += ':';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

core::Result<std::shared_ptr<const TlsContext>> make_server_context(const config::Tls& tls) {
  GW_ASSIGN_OR_RETURN(Profile profile, resolve_profile(tls.profile, tls.min_version, tls.ciphers));
  SslCtxPtr ctx = new_ctx(TLS_server_method());
  if (!ctx) return make_error(ErrorCode::kTls, "SSL_CTX_new failed: " + openssl_errors());
  GW_RETURN_IF_ERROR(apply_profile(ctx.get(), profile));
  // No session resumption: every connection presents and verifies its certificate against
  // the current snapshot (a reloaded CRL or CA bundle applies to the next connection).
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  GW_RETURN_IF_ERROR(
      load_identity(ctx.get(), "tls.cert_file", tls.cert_file, "tls.key_file", tls.key_file));

  const bool ask_peer = tls.peer_certificate != config::PeerCertificate::kNone;
  if (ask_peer && !tls.no_verify) {
    if (tls.ca_file.empty()) {
      return make_error(
          ErrorCode::kConfig,
          "tls.ca_file: required to verify peer certificates (tls.peer_certificate: " +
              std::string(config::to_string(tls.peer_certificate)) + ")");
    }
  }
  if (!tls.ca_file.empty()) {
    GW_RETURN_IF_ERROR(load_trust(ctx.get(), "tls.ca_file", tls.ca_file, ask_peer));
  }
  if (!tls.crl_file.empty()) GW_RETURN_IF_ERROR(load_crl(ctx.get(), tls.crl_file));
  SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);

  int mode = SSL_VERIFY_NONE;
  if (tls.peer_certificate == config::PeerCertificate::kRequired && !tls.no_verify) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  } else if (ask_peer) {
    mode = SSL_VERIFY_PEER;  // optional, or no_verify: no certificate is fine
  }
  SSL_CTX_set_verify(ctx.get(), mode, verify_callback);
  if (tls.no_verify) SSL_CTX_set_ex_data(ctx.get(), ctx_accept_all_index(), &accept_all_flag);

  std::shared_ptr<TlsContext> out(new TlsContext(ctx.release(), Side::kServer));
  out->profile_ = std::move(profile);
  out->peer_policy_ = tls.peer_certificate;
  out->no_verify_ = tls.no_verify;
  if (tls.no_verify) {
    out->warnings_.emplace_back(
        "tls.no_verify is true: peer certificates are NOT verified (any client is accepted)");
  }
  describe_own_certificate(out->native(), out->subject_, out->serial_, out->warnings_);
  return std::shared_ptr<const TlsContext>(std::move(out));
}

core::Result<std::shared_ptr<const TlsContext>> make_client_context(
    const ClientTlsOptions& options) {
  GW_ASSIGN_OR_RETURN(Profile profile,
                      resolve_profile(options.profile, options.min_version, options.ciphers));
  SslCtxPtr ctx = new_ctx(TLS_client_method());
  if (!ctx) return make_error(ErrorCode::kTls, "SSL_CTX_new failed: " + openssl_errors());
  GW_RETURN_IF_ERROR(apply_profile(ctx.get(), profile));
  if (!options.cert.empty() || !options.key.empty()) {
    GW_RETURN_IF_ERROR(
        load_identity(ctx.get(), options.cert_name, options.cert, options.key_name, options.key));
  }
  if (options.verify_peer && options.ca.empty()) {
    return make_error(ErrorCode::kConfig,
                      options.ca_name + ": the CA bundle that signs the server is required" +
                          (options.ca_name == "--ca" ? " (or --no-verify)" : ""));
  }
  if (!options.ca.empty()) {
    GW_RETURN_IF_ERROR(load_trust(ctx.get(), options.ca_name, options.ca, false));
  }
  SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, verify_callback);
  if (!options.verify_peer) {
    SSL_CTX_set_ex_data(ctx.get(), ctx_accept_all_index(), &accept_all_flag);
  }

  std::shared_ptr<TlsContext> out(new TlsContext(ctx.release(), Side::kClient));
  out->profile_ = std::move(profile);
  out->peer_policy_ = config::PeerCertificate::kRequired;
  out->no_verify_ = !options.verify_peer;
  if (!options.verify_peer) {
    out->warnings_.emplace_back(
        "--no-verify: the server's certificate is NOT verified (anyone can impersonate it)");
  }
  describe_own_certificate(out->native(), out->subject_, out->serial_, out->warnings_);
  return std::shared_ptr<const TlsContext>(std::move(out));
}

core::Status expect_server_identity(SSL* ssl, const TlsContext& context, const std::string& host,
                                    bool verify_hostname) {
  in6_addr buf{};
  const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
                     ::inet_pton(AF_INET6, host.c_str(), &buf) == 1;
  if (!is_ip && !host.empty()) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (!verify_hostname || context.no_verify()) return {};
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      return make_error(ErrorCode::kInvalidArgument, "cannot verify address " + host);
    }
    return {};
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, host.c_str()) != 1) {
    return make_error(ErrorCode::kInvalidArgument, "cannot verify host name " + host);
  }
  return {};
}

// ---- TlsContextHolder --------------------------------------------------------------------------

core::Result<std::shared_ptr<TlsContextHolder>> TlsContextHolder::create(const config::Tls& tls) {
  GW_ASSIGN_OR_RETURN(auto initial, make_server_context(tls));
  return std::make_shared<TlsContextHolder>(std::move(initial));
}

std::shared_ptr<const TlsContext> TlsContextHolder::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

core::Status TlsContextHolder::reload(const config::Tls& tls) {
  GW_ASSIGN_OR_RETURN(auto next, make_server_context(tls));
  std::shared_ptr<const TlsContext> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(current_, std::move(next));
  }
  return {};  // `old` is released here, outside the lock (last user may be a connection)
}

}  // namespace gw::tls
