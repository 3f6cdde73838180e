#pragma once
/// DICOM over TLS (PS3.15 B.9-B.11): the Channel interface over a TCP socket and a TlsEngine.
///
/// The engine encrypts and decrypts in memory; this class does the socket I/O: ciphertext is
/// read in chunks of up to TlsEngine::kReceiveBuffer, and each write_all() leaves in as few
/// socket writes as its size allows (records are cut at 16 KiB of plaintext, small pieces such
/// as PDU headers are merged with the data after them instead of becoming records of their
/// own).
///
/// A TlsChannel keeps the TLS context snapshot it was created with for its whole life, so a
/// reload (TlsContextHolder) never changes a running association. The handshake runs under the
/// channel's watchdog deadline like every read (ARTIM on the server side), per connection: a
/// silent or slow peer holds only its own coroutine.
///
/// Server side, handshake_server() first peeks at the peer's first byte: a plain DICOM
/// A-ASSOCIATE-RQ (0x01) on the TLS port is refused with that diagnosis instead of an OpenSSL
/// "wrong version number". Client side, handshake_client() sends SNI (for names, not IP
/// literals) and checks the server's host name or IP address against its subjectAltName.
/// Failures are reported in plain words (tls/diagnose.h).

#include <memory>
#include <string>

#include "dicom/channel.h"
#include "dicom/tls_engine.h"
#include "tls/context.h"
#include "tls/peer_identity.h"

namespace gw::dicom {

class TlsChannel final : public Channel {
 public:
  /// Takes a connected socket; sets TCP_NODELAY; starts the watchdog. kTls if OpenSSL cannot
  /// create the connection object.
  static Result<std::shared_ptr<TlsChannel>> create(asio::ip::tcp::socket socket,
                                                    std::shared_ptr<const tls::TlsContext> context);

  /// Server side: peeks at the first byte, then the TLS handshake, both within `timeout`.
  /// Errors: kTimeout, kTls (message: tls::diagnose's plain words), kIo (peer went away
  /// before sending anything).
  asio::awaitable<Status> handshake_server(Clock::duration timeout);
  /// Client side: SNI + host name (or IP) verification when `verify_hostname` (and the
  /// context verifies peers), then the handshake within `timeout`.
  asio::awaitable<Status> handshake_client(const std::string& host, bool verify_hostname,
                                           Clock::duration timeout);

  asio::awaitable<Status> read_exact(std::span<std::uint8_t> buf) override;
  asio::awaitable<Status> write_all(std::span<const asio::const_buffer> buffers) override;
  /// After a completed handshake with nothing in flight: sends close_notify and waits for the
  /// peer's (bounded by the deadline, at most kShutdownLimit), then closes the socket.
  /// Otherwise (timeout, cancelled, an operation pending) closes the socket at once.
  void close() noexcept override;
  void cancel() noexcept override;
  std::string peer_address() const override { return peer_; }
  bool is_tls() const override { return true; }
  asio::any_io_executor executor() override { return socket_.get_executor(); }

  /// The peer's certificate (empty when it sent none): RFC 2253 subject, SHA-256 fingerprint.
  std::string peer_certificate_subject() const;
  std::string peer_certificate_sha256() const;
  /// CN, SANs and fingerprint of the peer's certificate, for the `peers:` bindings.
  tls::CertificateIdentity peer_identity() const;
  /// "TLSv1.3", "TLSv1.2"; the negotiated suite ("TLS_AES_256_GCM_SHA384").
  std::string protocol() const;
  std::string cipher() const;
  const tls::TlsContext& context() const { return *context_; }
  /// The first certificate verification failure (also under no_verify, where it was accepted).
  const tls::VerifyFailure& verify_failure() const { return verify_; }

  static constexpr Clock::duration kShutdownLimit = std::chrono::seconds(2);

  TlsChannel(asio::ip::tcp::socket socket, std::shared_ptr<const tls::TlsContext> context);

 private:
  Status handshake_error(const std::error_code& ec, std::optional<std::uint8_t> first_byte,
                         const std::string& host) const;
  Status io_error(const std::error_code& ec, const char* what) const;
  void close_socket() noexcept;
  asio::awaitable<void> graceful_close();
  SSL* ssl() const { return engine_.ssl(); }
  /// Drives a handshake or shutdown step function until it is done: flushes its output, feeds
  /// it socket input.
  asio::awaitable<std::error_code> drive(TlsEngine::Step (TlsEngine::*step)());
  /// Writes the engine's pending output; another flush in progress takes it along instead.
  asio::awaitable<std::error_code> flush();
  /// One socket read into the engine; EOF becomes the engine's eof_error().
  asio::awaitable<std::error_code> fill();
  /// Encrypts `data` into the engine, merging pieces under a record into `stage_`.
  std::error_code encrypt(std::span<const std::uint8_t> data);
  std::error_code encrypt_stage();

  std::shared_ptr<const tls::TlsContext> context_;  // before engine_: its SSL_CTX
  asio::ip::tcp::socket socket_;
  TlsEngine engine_;
  std::vector<std::uint8_t> stage_;  // plaintext waiting to fill a record
  bool flushing_ = false;
  std::string peer_;
  tls::VerifyFailure verify_;  // filled by the context's verify callback
  asio::steady_timer shutdown_timer_;
  bool handshake_done_ = false;
  int pending_ = 0;  // reads and writes in flight (one strand: no lock)
};

}  // namespace gw::dicom
