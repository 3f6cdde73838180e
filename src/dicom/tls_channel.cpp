#include "dicom/tls_channel.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <asio/ssl/error.hpp>

namespace gw::dicom {

using core::ErrorCode;
using core::make_error;

namespace {

constexpr std::size_t kRecord = 16 * 1024;    // TLS's largest record (plaintext)
constexpr std::size_t kFlushAt = 256 * 1024;  // ciphertext written per socket write (about)
constexpr std::size_t kPiece = 128 * 1024;    // plaintext encrypted between two checks

}  // namespace

TlsChannel::TlsChannel(asio::ip::tcp::socket socket, std::shared_ptr<const tls::TlsContext> context)
    : Channel(socket.get_executor()),
      context_(std::move(context)),
      socket_(std::move(socket)),
      engine_(context_->asio_context().native_handle()),
      peer_(remote_endpoint_string(socket_)),
      shutdown_timer_(socket_.get_executor()) {
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  tls::attach_verify_record(engine_.ssl(), &verify_);
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
  auto [pec, n] = co_await socket_.async_receive(asio::buffer(&first, 1),
                                                 asio::socket_base::message_peek, use_nothrow);
  if (pec || n == 0) {
    if (timed_out_) {
      co_return make_error(ErrorCode::kTimeout, "handshake timed out (the peer sent nothing)");
    }
    if (cancelled_) co_return make_error(ErrorCode::kCancelled, "TLS handshake cancelled");
    co_return make_error(ErrorCode::kIo, "the peer closed the connection before a TLS hello");
  }
  if (auto why = tls::describe_first_byte(first)) co_return make_error(ErrorCode::kTls, *why);
  engine_.set_server();
  if (auto ec = co_await drive(&TlsEngine::handshake)) co_return handshake_error(ec, first, "");
  handshake_done_ = true;
  expires_never();
  co_return Status{};
}

asio::awaitable<Status> TlsChannel::handshake_client(const std::string& host, bool verify_hostname,
                                                     Clock::duration timeout) {
  if (auto st = tls::expect_server_identity(engine_.ssl(), *context_, host, verify_hostname);
      !st.ok()) {
    co_return st;
  }
  expires_after(timeout);
  engine_.set_client();
  if (auto ec = co_await drive(&TlsEngine::handshake)) {
    co_return handshake_error(ec, std::nullopt, host);
  }
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

asio::awaitable<std::error_code> TlsChannel::flush() {
  if (flushing_) co_return std::error_code{};  // the flush in progress takes this output too
  flushing_ = true;
  std::error_code ec;
  while (engine_.has_output()) {
    const auto out = engine_.begin_flush();
    auto [wec, n] =
        co_await asio::async_write(socket_, asio::buffer(out.data(), out.size()), use_nothrow);
    engine_.end_flush();
    if (wec) {
      ec = wec;
      break;
    }
  }
  flushing_ = false;
  co_return ec;
}

asio::awaitable<std::error_code> TlsChannel::fill() {
  const auto space = engine_.rx_space();
  auto [ec, n] =
      co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
  if (n > 0) engine_.rx_commit(n);
  if (ec == asio::error::eof) co_return engine_.eof_error();
  co_return ec;
}

asio::awaitable<std::error_code> TlsChannel::drive(TlsEngine::Step (TlsEngine::*step)()) {
  for (;;) {  // each round either finishes or waits for the peer (under the deadline)
    const auto s = (engine_.*step)();
    if (engine_.has_output()) {
      // On an error this sends the alert that tells the peer why, as far as it gets.
      auto ec = co_await flush();
      if (ec && s.want != TlsEngine::Want::kError) co_return ec;
    }
    switch (s.want) {
      case TlsEngine::Want::kDone:
        co_return std::error_code{};
      case TlsEngine::Want::kInput:
        if (auto ec = co_await fill()) co_return ec;
        break;
      case TlsEngine::Want::kClosed:
      case TlsEngine::Want::kError:
        co_return s.error;
    }
  }
}

asio::awaitable<Status> TlsChannel::read_exact(std::span<std::uint8_t> buf) {
  ++pending_;
  std::size_t got = 0;
  std::error_code ec;
  while (got < buf.size()) {
    const auto s = engine_.read(buf.subspan(got));
    // A read can produce output of its own (the answer to a KeyUpdate, an alert).
    if (engine_.has_output()) ec = co_await flush();
    if (s.want == TlsEngine::Want::kError || s.want == TlsEngine::Want::kClosed) {
      ec = s.error;  // what went wrong in TLS, even if sending the alert failed too
      break;
    }
    if (ec) break;
    if (s.want == TlsEngine::Want::kInput) {
      ec = co_await fill();
      if (ec) break;
    } else {
      got += s.bytes;  // kDone
    }
  }
  --pending_;
  if (ec) co_return io_error(ec, "read");
  co_return Status{};
}

std::error_code TlsChannel::encrypt_stage() {
  if (stage_.empty()) return {};
  const auto ec = engine_.write(stage_).error;  // write() is kDone or an error
  stage_.clear();
  return ec;
}

std::error_code TlsChannel::encrypt(std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    std::size_t n = 0;
    if (stage_.empty() && data.size() >= kRecord) {
      n = data.size() - data.size() % kRecord;  // whole records straight from the caller
      if (auto ec = engine_.write(data.first(n)).error) return ec;
    } else {
      n = std::min(kRecord - stage_.size(), data.size());
      stage_.insert(stage_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
      if (stage_.size() == kRecord) {
        if (auto ec = encrypt_stage()) return ec;
      }
    }
    data = data.subspan(n);
  }
  return {};
}

asio::awaitable<Status> TlsChannel::write_all(std::span<const asio::const_buffer> buffers) {
  ++pending_;
  std::error_code ec;
  for (const auto& b : buffers) {
    std::span<const std::uint8_t> data(static_cast<const std::uint8_t*>(b.data()), b.size());
    while (!ec && !data.empty()) {
      const auto piece = data.first(std::min(data.size(), kPiece));
      data = data.subspan(piece.size());
      ec = encrypt(piece);
      if (!ec && engine_.output_size() >= kFlushAt) ec = co_await flush();
    }
    if (ec) break;
  }
  if (!ec) ec = encrypt_stage();
  if (!ec) ec = co_await flush();
  stage_.clear();
  --pending_;
  if (ec) co_return io_error(ec, "write");
  co_return Status{};
}

void TlsChannel::close_socket() noexcept {
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  shutdown_timer_.cancel();
}

void TlsChannel::close() noexcept {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  if (handshake_done_ && pending_ == 0 && !timed_out_ && !cancelled_) {
    try {
      asio::co_spawn(
          socket_.get_executor(),
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
  auto ec = co_await drive(&TlsEngine::shutdown);
  (void)ec;  // the peer closing without its own close_notify is normal for DICOM peers
  close_socket();
}

void TlsChannel::cancel() noexcept {
  std::error_code ec;
  socket_.cancel(ec);
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
