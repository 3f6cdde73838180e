#pragma once
/// One connection to a syslog collector: TCP, and TLS (RFC 5425) with a client context from
/// tls::make_client_context (the gateway's BCP 195 profile, trust and client certificate) and
/// the server's host name checked by tls::expect_server_identity, as DICOM associations do.
///
/// Blocking in style, non-blocking underneath: every operation runs on the exporter's own
/// thread, waits in poll() with a deadline, and returns at once (kCancelled) when the Wakeup is
/// told to stop, so shutdown never waits for a slow or silent collector. Name resolution
/// (getaddrinfo) is the one call that cannot be interrupted: use an address, or a name the
/// resolver answers quickly.
///
/// send() returns only once the collector's TCP has acknowledged every byte (the socket's send
/// queue is empty): RFC 5425 has no application acknowledgement, so this is the closest to
/// "delivered" the protocol allows. What a collector acknowledged and then lost (it crashed
/// before writing it) cannot be seen from here.
///
/// SIGPIPE: writes on a socket the collector reset raise it; the exporter's thread blocks it.

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/unique_fd.h"
#include "tls/context.h"
#include "tls/diagnose.h"

namespace gw::audit {

/// Wakes a thread waiting in poll(): for good (request_stop) or because there is new work
/// (notify). Thread-safe.
class Wakeup {
 public:
  /// kIo when no eventfd can be made.
  static core::Result<std::unique_ptr<Wakeup>> create();

  void notify();
  void request_stop();
  bool stopping() const { return stopping_.load(); }
  /// True when notify() was called since the last take (then resets it).
  bool take_notified() { return notified_.exchange(false); }
  /// The descriptor to poll (readable after notify or request_stop).
  int fd() const { return fd_.get(); }
  /// Empties the descriptor; the flags keep what happened.
  void drain();
  /// Sleeps up to `timeout`; returns early when stopping, and on notify when `on_notify`.
  void sleep(std::chrono::milliseconds timeout, bool on_notify);

 private:
  explicit Wakeup(core::UniqueFd fd) : fd_(std::move(fd)) {}
  void signal();

  core::UniqueFd fd_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> notified_{false};
};

class SyslogConnection {
 public:
  using Clock = std::chrono::steady_clock;

  /// Resolves `host`, connects (each address in turn) and, with `tls`, runs the handshake
  /// with host name verification, then waits up to kConfirmWait for the collector to refuse
  /// us; all within `timeout`. Errors: kCancelled (stopping), kTimeout,
  /// kIo (resolution, refused, unreachable), kTls (tls::diagnose's plain words).
  static core::Result<std::unique_ptr<SyslogConnection>> open(
      const std::string& host, std::uint16_t port, std::shared_ptr<const tls::TlsContext> tls,
      Wakeup& wakeup, std::chrono::milliseconds timeout);
  SyslogConnection(const SyslogConnection&) = delete;
  SyslogConnection& operator=(const SyslogConnection&) = delete;
  /// Sends close_notify if it fits in the socket at once, then closes.
  ~SyslogConnection();

  /// How long a new connection waits for the collector to refuse it (a close, an alert) or,
  /// TLS 1.3, to accept our certificate (a session ticket) before the first row is written.
  static constexpr std::chrono::milliseconds kConfirmWait{1000};

  /// Writes all of `bytes`, then waits until the collector's TCP acknowledged them; both
  /// within `timeout`. Any error leaves the connection unusable (close it).
  core::Status send(std::string_view bytes, std::chrono::milliseconds timeout);
  /// False once the collector closed the connection or it failed (why: last_error()). Reads
  /// and discards whatever the collector sent (TLS session tickets, alerts); never waits.
  bool alive();
  /// Why alive() returned false.
  const std::string& last_error() const { return last_error_; }
  /// "TLSv1.3", or "tcp" without TLS.
  std::string protocol() const;

 private:
  SyslogConnection(core::UniqueFd fd, std::string host, Wakeup& wakeup)
      : fd_(std::move(fd)), host_(std::move(host)), wakeup_(wakeup) {}
  enum class Waited { kReady, kTimeout, kStopped };
  /// poll() for `events` on the socket until `deadline`, waking for stop.
  Waited wait(short events, Clock::time_point deadline);
  core::Status handshake(std::shared_ptr<const tls::TlsContext> tls, Clock::time_point deadline);
  /// Waits up to kConfirmWait for the collector's verdict on us (see kConfirmWait).
  core::Status confirm_accepted(Clock::time_point deadline);
  core::Status write_all(std::string_view bytes, Clock::time_point deadline);
  core::Status wait_acknowledged(std::size_t bytes, Clock::time_point deadline);
  /// Plain words for a failed TLS read or write (SSL_get_error kind, first queued error).
  std::string tls_failure(int kind, unsigned long code) const;

  struct SslDeleter {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };

  core::UniqueFd fd_;  // closed last: SSL_set_fd does not own it
  std::string host_;
  Wakeup& wakeup_;
  std::shared_ptr<const tls::TlsContext> context_;  // before ssl_: its SSL_CTX
  tls::VerifyFailure verify_;  // filled by the context's verify callback during the handshake
  std::unique_ptr<SSL, SslDeleter> ssl_;
  std::string last_error_;
};

}  // namespace gw::audit
