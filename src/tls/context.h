#pragma once
/// TLS contexts as immutable snapshots. A TlsContext is built once from files (own certificate
/// chain + key, trusted CA bundle, optional CRL) and a profile, and never changes: a reload
/// builds a new one and swaps it in TlsContextHolder, so new connections use the new snapshot
/// while running associations finish on the one they started with (they hold a shared_ptr).
///
/// Peer verification: a server context asks for a client certificate according to
/// tls.peer_certificate (required | optional | none) and checks its clientAuth purpose; a client
/// context always verifies the server (serverAuth purpose; the host name is checked per
/// connection, see expect_server_identity below). `no_verify` accepts anything and is warned
/// about.
/// A verify callback records the *first* failure of each connection in a VerifyFailure that
/// the channel attaches (attach_verify_record), for diagnose().

#include <openssl/ssl.h>

#include <asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "tls/diagnose.h"
#include "tls/profile.h"

namespace gw::tls {

/// What an outgoing connection presents and trusts (dicom-gw echo|send --tls, forwarders).
struct ClientTlsOptions {
  std::filesystem::path cert;  ///< optional: our certificate (chain) for mutual TLS
  std::filesystem::path key;   ///< required with cert
  std::filesystem::path ca;    ///< trusted CAs; required when verify_peer
  config::TlsProfile profile = config::TlsProfile::kBcp195Rfc8996;
  std::string min_version;  ///< "" | "1.2" | "1.3"
  std::string ciphers;      ///< optional TLS 1.2 override (AEAD only)
  bool verify_peer = true;  ///< false: accept any server certificate (loudly warned)
  /// How error messages name cert, key and ca: the command-line flags by default, the config
  /// keys for a destination or the audit export ("destinations[0].tls_key_path").
  std::string cert_name = "--cert";
  std::string key_name = "--key";
  std::string ca_name = "--ca";
};

class TlsContext {
 public:
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  Side side() const { return side_; }
  const Profile& profile() const { return profile_; }
  /// Server: tls.peer_certificate. Client: kRequired (the server must always present one).
  config::PeerCertificate peer_policy() const { return peer_policy_; }
  /// Peer certificates are not verified (no_verify / --no-verify).
  bool no_verify() const { return no_verify_; }
  /// Our own certificate (empty for a client without one), for logs and /status.
  const std::string& certificate_subject() const { return subject_; }
  const std::string& certificate_serial() const { return serial_; }
  /// Things worth a warning at start and reload ("no_verify is on", "certificate expires in
  /// 5 days"). Never contains key material.
  const std::vector<std::string>& warnings() const { return warnings_; }

  /// The Asio context streams are created from. SSL_new only takes a reference on the SSL_CTX
  /// (thread-safe in OpenSSL 3); nothing changes the context after construction.
  asio::ssl::context& asio_context() const { return ctx_; }
  SSL_CTX* native() const { return ctx_.native_handle(); }

 private:
  friend core::Result<std::shared_ptr<const TlsContext>> make_server_context(const config::Tls&);
  friend core::Result<std::shared_ptr<const TlsContext>> make_client_context(
      const ClientTlsOptions&);
  TlsContext(SSL_CTX* owned, Side side) : ctx_(owned), side_(side) {}

  mutable asio::ssl::context ctx_;
  Side side_;
  Profile profile_;
  config::PeerCertificate peer_policy_ = config::PeerCertificate::kRequired;
  bool no_verify_ = false;
  std::string subject_;
  std::string serial_;
  std::vector<std::string> warnings_;
};

/// The listener's context from the `tls:` section. kConfig/kTls with the key path and plain
/// words: missing or unreadable file, key does not match the certificate, key too small for
/// security level 2, CA bundle without certificates, bad CRL, cipher override not AEAD.
core::Result<std::shared_ptr<const TlsContext>> make_server_context(const config::Tls& tls);

/// An outgoing connection's context.
core::Result<std::shared_ptr<const TlsContext>> make_client_context(
    const ClientTlsOptions& options);

/// Client side, before the handshake: SNI for a host name (RFC 6066 forbids IP literals) and,
/// when `verify_hostname` and `context` verifies peers, the name or address the server's
/// certificate must carry in its subjectAltName (no partial wildcards; as OpenSSL does, a
/// certificate without any DNS subjectAltName is matched on its subject CN). Shared by every
/// outgoing TLS connection (DICOM associations, the audit syslog export). kInvalidArgument
/// when OpenSSL refuses the name.
core::Status expect_server_identity(SSL* ssl, const TlsContext& context, const std::string& host,
                                    bool verify_hostname);

/// Makes the verify callback record the first failure of `ssl`'s handshake in `record`, which
/// must outlive the handshake. Without a record failures are not recorded (still enforced).
void attach_verify_record(SSL* ssl, VerifyFailure* record);

/// RFC 2253 subject ("CN=modality1,O=Hospital") and SHA-256 fingerprint ("AB:CD:…").
std::string subject_of(X509* cert);
std::string sha256_fingerprint(X509* cert);

/// The current snapshot of a listener's TLS context, swapped atomically on reload.
class TlsContextHolder {
 public:
  static core::Result<std::shared_ptr<TlsContextHolder>> create(const config::Tls& tls);

  /// The snapshot new connections use.
  std::shared_ptr<const TlsContext> current() const;
  /// Builds a new snapshot from `tls` (the files are read again) and swaps it in. On failure
  /// the old snapshot stays and the error says why.
  core::Status reload(const config::Tls& tls);

  explicit TlsContextHolder(std::shared_ptr<const TlsContext> initial)
      : current_(std::move(initial)) {}

 private:
  // libstdc++ 12 has no std::atomic<std::shared_ptr>: a mutex guards current_, held only to
  // copy or replace the pointer (never while building a context).
  mutable std::mutex mu_;
  std::shared_ptr<const TlsContext> current_;
};

}  // namespace gw::tls
