#include "audit/syslog_transport.h"

#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <asio/ssl/error.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>

namespace gw::audit {

using core::ErrorCode;
using core::make_error;
using core::Status;

namespace {

std::string errno_text(int e) { return std::generic_category().message(e); }

int poll_ms(SyslogConnection::Clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - SyslogConnection::Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, INT_MAX));
}

struct AddrinfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};

}  // namespace

// ---- Wakeup ------------------------------------------------------------------------------------

core::Result<std::unique_ptr<Wakeup>> Wakeup::create() {
  core::UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd.valid()) return make_error(ErrorCode::kIo, "eventfd: " + errno_text(errno));
  return std::unique_ptr<Wakeup>(new Wakeup(std::move(fd)));
}

void Wakeup::signal() {
  const std::uint64_t one = 1;
  // Fails only when the counter would overflow: it is readable then anyway.
  [[maybe_unused]] const auto n = ::write(fd_.get(), &one, sizeof(one));
}

void Wakeup::notify() {
  notified_ = true;
  signal();
}

void Wakeup::request_stop() {
  stopping_ = true;
  signal();
}

void Wakeup::drain() {
  std::uint64_t value = 0;
  [[maybe_unused]] const auto n = ::read(fd_.get(), &value, sizeof(value));
}

void Wakeup::sleep(std::chrono::milliseconds timeout, bool on_notify) {
  const auto deadline = SyslogConnection::Clock::now() + timeout;
  for (;;) {  // each round ends the sleep or waits again until the same deadline
    if (stopping() || (on_notify && notified_.load())) return;
    const int ms = poll_ms(deadline);
    if (ms == 0) return;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, ms) > 0) drain();
  }
}

// ---- SyslogConnection --------------------------------------------------------------------------

SyslogConnection::~SyslogConnection() {
  // close_notify as far as the socket takes it now: a collector must not wait for us.
  if (ssl_ && SSL_is_init_finished(ssl_.get()) == 1) {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
}

SyslogConnection::Waited SyslogConnection::wait(short events, Clock::time_point deadline) {
  for (;;) {  // returns on readiness, the deadline or stop; a notify only re-arms the wait
    if (wakeup_.stopping()) return Waited::kStopped;
    const int ms = poll_ms(deadline);
    if (ms == 0) return Waited::kTimeout;
    std::array<pollfd, 2> fds{pollfd{fd_.get(), events, 0}, pollfd{wakeup_.fd(), POLLIN, 0}};
    const int r = ::poll(fds.data(), fds.size(), ms);
    if (r < 0 && errno != EINTR) return Waited::kReady;  // the next call reports the error
    if (r <= 0) continue;
    if (fds[1].revents != 0) wakeup_.drain();
    if (fds[0].revents != 0) return Waited::kReady;
  }
}

core::Result<std::unique_ptr<SyslogConnection>> SyslogConnection::open(
    const std::string& host, std::uint16_t port, std::shared_ptr<const tls::TlsContext> tls,
    Wakeup& wakeup, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (gai != 0) {
    return make_error(ErrorCode::kIo, "cannot resolve " + host + ": " + ::gai_strerror(gai));
  }
  const std::unique_ptr<addrinfo, AddrinfoDeleter> addresses(found);
  std::string failure = "no address for " + host;
  ErrorCode code = ErrorCode::kIo;
  for (const addrinfo* ai = addresses.get(); ai != nullptr; ai = ai->ai_next) {
    core::UniqueFd fd(::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      failure = "socket: " + errno_text(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::unique_ptr<SyslogConnection> c(new SyslogConnection(std::move(fd), host, wakeup));
    if (::connect(c->fd_.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        failure = "connect to " + where + ": " + errno_text(errno);
        continue;
      }
      const auto waited = c->wait(POLLOUT, deadline);
      if (waited == Waited::kStopped) return make_error(ErrorCode::kCancelled, "stopping");
      if (waited == Waited::kTimeout) {
        failure = "connect to " + where + ": timed out";
        code = ErrorCode::kTimeout;
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(c->fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        failure = "connect to " + where + ": " + errno_text(err);
        code = ErrorCode::kIo;
        continue;
      }
    }
    if (tls) GW_RETURN_IF_ERROR(c->handshake(std::move(tls), deadline));
    GW_RETURN_IF_ERROR(c->confirm_accepted(deadline));
    return c;
  }
  return make_error(code, failure);
}

Status SyslogConnection::handshake(std::shared_ptr<const tls::TlsContext> tls,
                                   Clock::time_point deadline) {
  context_ = std::move(tls);
  ssl_.reset(SSL_new(context_->native()));
  if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
    return make_error(ErrorCode::kTls, "cannot create a TLS connection");
  }
  SSL_set_mode(ssl_.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  tls::attach_verify_record(ssl_.get(), &verify_);
  GW_RETURN_IF_ERROR(tls::expect_server_identity(ssl_.get(), *context_, host_, true));
  SSL_set_connect_state(ssl_.get());
  for (;;) {  // each round finishes, fails, or waits for the socket (under the deadline)
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) return {};
    const int kind = SSL_get_error(ssl_.get(), r);
    const unsigned long code = ERR_get_error();  // the first queued error, as Asio reports it
    const int sys = errno;
    Waited waited = Waited::kReady;
    if (kind == SSL_ERROR_WANT_READ) {
      waited = wait(POLLIN, deadline);
    } else if (kind == SSL_ERROR_WANT_WRITE) {
      waited = wait(POLLOUT, deadline);
    } else {
      tls::HandshakeFailure f;
      f.side = tls::Side::kClient;
      f.verify = verify_;
      f.host = host_;
      if (code != 0) {
        f.error = std::error_code(static_cast<int>(code), asio::error::get_ssl_category());
      } else if (kind == SSL_ERROR_SYSCALL && sys != 0) {
        f.error = std::error_code(sys, std::system_category());
      } else {
        f.error = asio::ssl::error::stream_truncated;
      }
      return make_error(ErrorCode::kTls,
                        "TLS handshake with " + host_ + " failed: " + tls::diagnose(f));
    }
    if (waited == Waited::kStopped) return make_error(ErrorCode::kCancelled, "stopping");
    if (waited == Waited::kTimeout) {
      tls::HandshakeFailure f;
      f.side = tls::Side::kClient;
      f.timed_out = true;
      return make_error(ErrorCode::kTimeout,
                        "TLS handshake with " + host_ + " failed: " + tls::diagnose(f));
    }
  }
}

Status SyslogConnection::confirm_accepted(Clock::time_point deadline) {
  // A collector decides whether to admit us once the connection is up: rsyslog checks the
  // certificate's name after the handshake (TLS 1.3 even ends the handshake before the server
  // has verified our certificate), and may refuse an address right after accept. It closes
  // the connection then, but its TCP would still acknowledge rows written meanwhile: they
  // would count as sent. So wait a moment for the verdict. A close or an alert fails the
  // connection; a TLS 1.3 session ticket (sent once the server has accepted us) ends the wait
  // early; silence is taken as admission.
  const auto until = std::min(deadline, Clock::now() + kConfirmWait);
  for (;;) {  // each round handles what arrived, or ends at `until`
    const auto waited = wait(POLLIN | POLLRDHUP, until);
    if (waited == Waited::kStopped) return make_error(ErrorCode::kCancelled, "stopping");
    if (waited == Waited::kTimeout) return {};
    if (!alive()) {
      if (!ssl_) {
        return make_error(ErrorCode::kIo,
                          "the collector closed the connection at once (does it admit this "
                          "address? its log says why): " +
                              last_error_);
      }
      return make_error(ErrorCode::kTls,
                        "the collector refused the connection after the TLS handshake (does it "
                        "admit our certificate? its log says why): " +
                            last_error_);
    }
    if (ssl_) {
      const SSL_SESSION* session = SSL_get0_session(ssl_.get());
      if (session != nullptr && SSL_SESSION_has_ticket(session) == 1) return {};
    }
  }
}

std::string SyslogConnection::tls_failure(int kind, unsigned long code) const {
  if (kind == SSL_ERROR_ZERO_RETURN) return "the collector closed the connection (close_notify)";
  if (code == 0) return "the collector closed the connection";
  tls::HandshakeFailure f;  // the same words as for a handshake: an alert after it is common
  f.side = tls::Side::kClient;
  f.verify = verify_;
  f.host = host_;
  f.error = std::error_code(static_cast<int>(code), asio::error::get_ssl_category());
  return tls::diagnose(f);
}

Status SyslogConnection::write_all(std::string_view bytes, Clock::time_point deadline) {
  std::size_t done = 0;
  while (done < bytes.size()) {  // each round writes some bytes or waits for the socket
    const std::size_t want = std::min<std::size_t>(bytes.size() - done, INT_MAX / 2);
    short wait_for = POLLOUT;
    if (ssl_) {
      ERR_clear_error();
      const int r = SSL_write(ssl_.get(), bytes.data() + done, static_cast<int>(want));
      if (r > 0) {
        done += static_cast<std::size_t>(r);
        continue;
      }
      const int kind = SSL_get_error(ssl_.get(), r);
      const unsigned long code = ERR_get_error();
      if (kind == SSL_ERROR_WANT_READ) {
        wait_for = POLLIN;
      } else if (kind != SSL_ERROR_WANT_WRITE) {
        return make_error(ErrorCode::kIo, "write: " + tls_failure(kind, code));
      }
    } else {
      const auto n = ::send(fd_.get(), bytes.data() + done, want, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return make_error(ErrorCode::kIo, "write: " + errno_text(errno));
      }
    }
    const auto waited = wait(wait_for, deadline);
    if (waited == Waited::kStopped) return make_error(ErrorCode::kCancelled, "stopping");
    if (waited == Waited::kTimeout) {
      return make_error(ErrorCode::kTimeout, "write: the collector stopped reading");
    }
  }
  return {};
}

Status SyslogConnection::wait_acknowledged(std::size_t bytes, Clock::time_point deadline) {
  auto step = std::chrono::milliseconds(1);
  for (;;) {  // polls the send queue with a growing step until it is empty or the deadline
    int queued = 0;
    if (::ioctl(fd_.get(), SIOCOUTQ, &queued) != 0) {
      return make_error(ErrorCode::kIo, "send queue: " + errno_text(errno));
    }
    if (queued == 0) break;
    if (wakeup_.stopping()) return make_error(ErrorCode::kCancelled, "stopping");
    if (Clock::now() >= deadline) {
      return make_error(ErrorCode::kTimeout, "the collector did not acknowledge " +
                                                 std::to_string(queued) + " of " +
                                                 std::to_string(bytes) + " bytes in time");
    }
    wakeup_.sleep(step, false);
    step = std::min(step * 2, std::chrono::milliseconds(50));
  }
  // An empty queue also follows a reset (the kernel drops what was queued): check the state.
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    return make_error(ErrorCode::kIo, "connection lost: " + errno_text(err));
  }
  tcp_info info{};
  len = sizeof(info);
  if (::getsockopt(fd_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
      info.tcpi_state != TCP_ESTABLISHED && info.tcpi_state != TCP_CLOSE_WAIT) {
    return make_error(ErrorCode::kIo, "connection lost before the collector acknowledged");
  }
  return {};
}

Status SyslogConnection::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  GW_RETURN_IF_ERROR(write_all(bytes, deadline));
  return wait_acknowledged(bytes.size(), deadline);
}

bool SyslogConnection::alive() {
  std::array<char, 4096> scratch{};
  for (int round = 0; round < 8; ++round) {  // discards at most 32 KiB per call
    pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
    const int r = ::poll(&p, 1, 0);
    if (r == 0) return true;
    if (r < 0) return errno == EINTR;
    if (ssl_) {
      ERR_clear_error();
      const int n = SSL_read(ssl_.get(), scratch.data(), static_cast<int>(scratch.size()));
      if (n > 0) continue;  // RFC 5425 collectors send nothing; ignored
      const int kind = SSL_get_error(ssl_.get(), n);
      const unsigned long code = ERR_get_error();
      if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE) {
        if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) return true;  // a ticket
        last_error_ = "the collector closed the connection";
        return false;
      }
      last_error_ = tls_failure(kind, code);
      return false;
    }
    const auto n = ::recv(fd_.get(), scratch.data(), scratch.size(), MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    last_error_ = n == 0 ? "the collector closed the connection" : errno_text(errno);
    return false;
  }
  return true;
}

std::string SyslogConnection::protocol() const {
  return ssl_ ? std::string(SSL_get_version(ssl_.get())) : std::string("tcp");
}

}  // namespace gw::audit
