#pragma once
/// TlsEngine: one OpenSSL connection over memory buffers, with no I/O of its own.
///
/// TlsChannel moves bytes between the socket and this engine; the engine only encrypts and
/// decrypts. It replaces asio::ssl::stream, whose fixed 17 KiB BIO pair cost one socket read
/// and one socket write per TLS record, a tiny record per PDU header, and two extra copies of
/// every byte: here ciphertext arrives in large socket reads (rx_space/rx_commit), and every
/// record a write produces leaves in one socket write (begin_flush/end_flush).
///
/// Ciphertext to send piles up in a pending buffer; begin_flush() hands it over (a swap, not a
/// copy) and new output goes to a fresh pending buffer until end_flush(), so an engine call made
/// while a socket write is in flight (a read that answers a KeyUpdate) never moves the bytes
/// being written.
///
/// Errors are reported like Asio's engine reports them (ssl category, the first queued OpenSSL
/// error), so tls::diagnose reads them unchanged.

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace gw::dicom {

class TlsEngine {
 public:
  /// What the caller must do next.
  enum class Want {
    kDone,    ///< the operation completed (`bytes` says how much for read/write)
    kInput,   ///< feed more ciphertext (rx_space/rx_commit), then call again
    kError,   ///< `error` says why; send any pending output (an alert) before closing
    kClosed,  ///< the peer sent close_notify
  };
  struct Step {
    Want want = Want::kDone;
    std::size_t bytes = 0;
    std::error_code error;
  };

  /// Throws std::system_error (ssl category) if OpenSSL cannot create the connection.
  explicit TlsEngine(SSL_CTX* context);
  ~TlsEngine();
  TlsEngine(const TlsEngine&) = delete;
  TlsEngine& operator=(const TlsEngine&) = delete;

  SSL* ssl() const { return ssl_; }

  void set_server() { SSL_set_accept_state(ssl_); }
  void set_client() { SSL_set_connect_state(ssl_); }

  Step handshake();
  /// Decrypts up to out.size() bytes (whatever the buffered records hold).
  Step read(std::span<std::uint8_t> out);
  /// Encrypts all of `in` into the pending output. Anything but kDone is an error (with the
  /// renegotiation the profiles forbid, OpenSSL could ask for input here: reported, not lost).
  Step write(std::span<const std::uint8_t> in);
  /// Queues close_notify; kDone once the peer's close_notify was read too, kInput until then.
  Step shutdown();

  /// Where the next socket read goes: the free tail of the receive buffer (made empty first
  /// when everything in it was consumed).
  std::span<std::uint8_t> rx_space();
  void rx_commit(std::size_t n) { rx_end_ += n; }
  bool rx_empty() const { return rx_begin_ == rx_end_; }

  bool has_output() const { return !tx_pending_.empty(); }
  std::size_t output_size() const { return tx_pending_.size(); }
  /// The output to write now; valid until end_flush(). One flush at a time.
  std::span<const std::uint8_t> begin_flush();
  /// Done with the output begin_flush() gave; a buffer grown past kKeptOutput is released.
  void end_flush();

  /// Asio's mapping of a transport EOF: a clean end after the peer's close_notify, otherwise
  /// asio::ssl::error::stream_truncated.
  std::error_code eof_error() const;

  /// The receive buffer: small until the handshake is done (an unauthenticated peer holds
  /// little), then large enough that one socket read carries several records.
  static constexpr std::size_t kHandshakeBuffer = 17 * 1024;
  static constexpr std::size_t kReceiveBuffer = 128 * 1024;
  /// Output buffer capacity kept between writes.
  static constexpr std::size_t kKeptOutput = 512 * 1024;

 private:
  Step finish(int result);
  static BIO_METHOD* bio_method();
  static int bio_write(BIO* bio, const char* data, int len);
  static int bio_read(BIO* bio, char* out, int len);
  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);

  SSL* ssl_ = nullptr;
  std::vector<std::uint8_t> rx_;
  std::size_t rx_begin_ = 0;
  std::size_t rx_end_ = 0;
  std::vector<std::uint8_t> tx_pending_;
  std::vector<std::uint8_t> tx_inflight_;
};

}  // namespace gw::dicom
