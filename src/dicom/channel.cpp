#include "dicom/channel.h"

#include <asio/experimental/awaitable_operators.hpp>

namespace gw::dicom {

using core::ErrorCode;
using core::make_error;

void Channel::start_watchdog() {
  asio::co_spawn(
      timer_.get_executor(), [self = shared_from_this()]() { return self->watchdog(); },
      asio::detached);
}

asio::awaitable<void> Channel::watchdog() {
  timer_.expires_at(deadline_);
  while (!closed_) {
    auto [ec] = co_await timer_.async_wait(use_nothrow);
    if (closed_) break;
    if (deadline_ <= Clock::now()) {
      if (!timed_out_) {
        // First expiry: fail the pending operation with kTimeout but keep the transport, so the
        // association can still say why (A-ABORT). If it does not finish in time, close.
        timed_out_ = true;
        cancel();
        set_deadline(Clock::now() + kAbortGrace);
        continue;
      }
      close();
      break;
    }
    // The deadline moved on since the timer was armed: wait for the current one.
    (void)ec;
    timer_.expires_at(deadline_);
  }
}

Status Channel::error_status(const std::error_code& ec, const char* what) const {
  if (timed_out_) return make_error(ErrorCode::kTimeout, std::string(what) + ": timed out");
  if (cancelled_) return make_error(ErrorCode::kCancelled, std::string(what) + ": cancelled");
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe) {
    return make_error(ErrorCode::kIo, std::string(what) + ": peer closed the connection");
  }
  return make_error(ErrorCode::kIo, std::string(what) + ": " + ec.message());
}

std::string remote_endpoint_string(const asio::ip::tcp::socket& socket) {
  std::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  auto addr = ep.address();
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

TcpChannel::TcpChannel(asio::ip::tcp::socket socket)
    : Channel(socket.get_executor()),
      socket_(std::move(socket)),
      peer_(remote_endpoint_string(socket_)) {
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

std::shared_ptr<TcpChannel> TcpChannel::create(asio::ip::tcp::socket socket) {
  auto channel = std::make_shared<TcpChannel>(std::move(socket));
  channel->start_watchdog();
  return channel;
}

asio::awaitable<Status> TcpChannel::read_exact(std::span<std::uint8_t> buf) {
  auto [ec, n] =
      co_await asio::async_read(socket_, asio::buffer(buf.data(), buf.size()), use_nothrow);
  if (ec) co_return error_status(ec, "read");
  co_return Status{};
}

asio::awaitable<Status> TcpChannel::write_all(std::span<const asio::const_buffer> buffers) {
  auto [ec, n] = co_await asio::async_write(socket_, buffers, use_nothrow);
  if (ec) co_return error_status(ec, "write");
  co_return Status{};
}

void TcpChannel::close() noexcept {
  if (closed_) return;
  closed_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  timer_.cancel();
}

void TcpChannel::cancel() noexcept {
  std::error_code ec;
  socket_.cancel(ec);
}

asio::awaitable<Result<asio::ip::tcp::socket>> connect_tcp(asio::any_io_executor ex,
                                                           const std::string& host,
                                                           std::uint16_t port,
                                                           Clock::duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), use_nothrow);
  if (rec) {
    co_return make_error(ErrorCode::kIo, "cannot resolve " + host + ": " + rec.message());
  }
  asio::ip::tcp::socket socket(ex);
  asio::steady_timer timer(ex);
  timer.expires_after(timeout);
  auto outcome =
      co_await (asio::async_connect(socket, results, use_nothrow) || timer.async_wait(use_nothrow));
  if (outcome.index() == 1) {
    co_return make_error(ErrorCode::kTimeout,
                         "connect to " + host + ":" + std::to_string(port) + " timed out");
  }
  auto [cec, ep] = std::get<0>(outcome);
  if (cec) {
    co_return make_error(ErrorCode::kIo,
                         "connect to " + host + ":" + std::to_string(port) + ": " + cec.message());
  }
  std::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  co_return std::move(socket);
}

}  // namespace gw::dicom
