#include "dicom/tls_channel.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>

namespace gw::dicom {

using core::ErrorCode;
using core::make_error;

TlsChannel::TlsChannel(asio::ip::tcp::socket socket, std::shared_ptr<const tls::TlsContext> context)
    : Channel(socket.get_executor()),
      context_(std::move(context)),
      stream_(std::move(socket), context_->asio_context()),
      peer_(remote_endpoint_string(stream_.next_layer())),
      shutdown_timer_(stream_.get_executor()) {
  std::error_code ec;
  stream_.next_layer().set_option(asio::ip::tcp::no_delay(true), ec);
  tls::attach_verify_record(stream_.native_handle(), &verify_);
}

Result<std::shared_ptr<TlsChannel>> TlsChannel::create(
    asio::ip::tcp::socket socket, std::shared_ptr<const tls::TlsContext> context) {
  std::shared_ptr<TlsChannel> channel;
  try {
    channel = std::make_shared<TlsChannel>(std::move(socket), std::move(context));
  } catch (const std::system_error& e) {  // SSL_new failed (out of memory)
    return make_error(ErrorCode::kTls, std::string("cannot create a TLS connection: ") + e.what());
  }
  channel->start_watchdog();
  return channel;
}

Status TlsChannel::handshake_error(const std::error_code& ec,
                                   std::optional<std::uint8_t> first_byte,
                                   const std::string& host) const {
  tls::HandshakeFailure f;
  f.side = context_->side();
  f.error = ec;
  f.verify = verify_;
  f.first_byte = first_byte;
  f.timed_out = timed_out_;
  f.host = host;
  if (timed_out_) return make_error(ErrorCode::kTimeout, tls::diagnose(f));
  if (cancelled_) return make_error(ErrorCode::kCancelled, "TLS handshake cancelled");
  return make_error(ErrorCode::kTls, tls::diagnose(f));
}

asio::awaitable<Status> TlsChannel::handshake_server(Clock::duration timeout) {
  expires_after(timeout);
  std::uint8_t first = 0;
  auto [pec, n] = co_await stream_.next_layer().async_receive(
      asio::buffer(&first, 1), asio::socket_base::message_peek, use_nothrow);
  if (pec || n == 0) {
    if (timed_out_) {
      co_return make_error(ErrorCode::kTimeout, "handshake timed out (the peer sent nothing)");
    }
    if (cancelled_) co_return make_error(ErrorCode::kCancelled, "TLS handshake cancelled");
    co_return make_error(ErrorCode::kIo, "the peer closed the connection before a TLS hello");
  }
  if (auto why = tls::describe_first_byte(first)) co_return make_error(ErrorCode::kTls, *why);
  auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_nothrow);
  if (ec) co_return handshake_error(ec, first, "");
  handshake_done_ = true;
  expires_never();
  co_return Status{};
}

asio::awaitable<Status> TlsChannel::handshake_client(const std::string& host, bool verify_hostname,
                                                     Clock::duration timeout) {
  SSL* ssl = stream_.native_handle();
  std::error_code aec;
  (void)asio::ip::make_address(host, aec);
  const bool is_ip = !aec;
  // SNI carries host names only (RFC 6066 forbids IP literals).
  if (!is_ip && !host.empty()) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (verify_hostname && !context_->no_verify()) {
    if (is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
        co_return make_error(ErrorCode::kInvalidArgument, "cannot verify address " + host);
      }
    } else {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (SSL_set1_host(ssl, host.c_str()) != 1) {
        co_return make_error(ErrorCode::kInvalidArgument, "cannot verify host name " + host);
      }
    }
  }
  expires_after(timeout);
  auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::client, use_nothrow);
  if (ec) co_return handshake_error(ec, std::nullopt, host);
  handshake_done_ = true;
  expires_never();
  co_return Status{};
}

Status TlsChannel::io_error(const std::error_code& ec, const char* what) const {
  if (timed_out_ || cancelled_) return error_status(ec, what);
  if (ec == asio::ssl::error::stream_truncated) {
    return make_error(ErrorCode::kIo, std::string(what) + ": peer closed the connection");
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    // E.g. a TLS 1.3 server refusing our certificate: the alert arrives on the first read.
    tls::HandshakeFailure f;
    f.side = context_->side();
    f.error = ec;
    f.verify = verify_;
    return make_error(ErrorCode::kTls, std::string(what) + ": " + tls::diagnose(f));
  }
  return error_status(ec, what);
}

asio::awaitable<Status> TlsChannel::read_exact(std::span<std::uint8_t> buf) {
  ++pending_;
  auto [ec, n] =
      co_await asio::async_read(stream_, asio::buffer(buf.data(), buf.size()), use_nothrow);
  --pending_;
  if (ec) co_return io_error(ec, "read");
  co_return Status{};
}

asio::awaitable<Status> TlsChannel::write_all(std::span<const asio::const_buffer> buffers) {
  ++pending_;
  auto [ec, n] = co_await asio::async_write(stream_, buffers, use_nothrow);
  --pending_;
  if (ec) co_return io_error(ec, "write");
  co_return Status{};
}

void TlsChannel::close_socket() noexcept {
  std::error_code ec;
  auto& socket = stream_.lowest_layer();
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
  shutdown_timer_.cancel();
}

void TlsChannel::close() noexcept {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  if (handshake_done_ && pending_ == 0 && !timed_out_ && !cancelled_) {
    try {
      asio::co_spawn(
          stream_.get_executor(),
          [self = std::static_pointer_cast<TlsChannel>(shared_from_this())]() {
            return self->graceful_close();
          },
          asio::detached);
      return;
    } catch (...) {  // bad_alloc: fall back to closing at once
    }
  }
  close_socket();
}

asio::awaitable<void> TlsChannel::graceful_close() {
  auto limit = kShutdownLimit;
  if (deadline_ != Clock::time_point::max()) {
    limit = std::clamp<Clock::duration>(deadline_ - Clock::now(), Clock::duration::zero(), limit);
  }
  shutdown_timer_.expires_after(limit);
  shutdown_timer_.async_wait(
      [self = std::static_pointer_cast<TlsChannel>(shared_from_this())](std::error_code ec) {
        if (!ec) self->close_socket();  // the peer did not answer close_notify in time
      });
  auto [ec] = co_await stream_.async_shutdown(use_nothrow);
  (void)ec;  // the peer closing without its own close_notify is normal for DICOM peers
  close_socket();
}

void TlsChannel::cancel() noexcept {
  std::error_code ec;
  stream_.lowest_layer().cancel(ec);
}

std::string TlsChannel::peer_certificate_subject() const {
  return tls::subject_of(SSL_get0_peer_certificate(ssl()));
}

std::string TlsChannel::peer_certificate_sha256() const {
  return tls::sha256_fingerprint(SSL_get0_peer_certificate(ssl()));
}

tls::CertificateIdentity TlsChannel::peer_identity() const {
  return tls::describe_certificate(SSL_get0_peer_certificate(ssl()));
}

std::string TlsChannel::protocol() const { return handshake_done_ ? SSL_get_version(ssl()) : ""; }

std::string TlsChannel::cipher() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl());
  return c != nullptr ? SSL_CIPHER_get_name(c) : "";
}

}  // namespace gw::dicom
