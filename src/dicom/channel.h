#pragma once
/// A byte stream to one peer (plain TCP now; TLS wraps the same interface), with a deadline.
///
/// Timeouts are a watchdog, not per-operation timers: the association sets a deadline before
/// each read (ARTIM, idle timeout) and a watchdog coroutine on the same strand closes the
/// socket when the deadline passes, which completes any pending operation with an error. One
/// idle or half-open peer therefore never holds anything but its own coroutine.

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace gw::dicom {

using core::Result;
using core::Status;
using Clock = std::chrono::steady_clock;

/// After a deadline expires, how long the association has to send its A-ABORT before the
/// watchdog closes the transport.
inline constexpr auto kAbortGrace = std::chrono::seconds(2);

/// Completion token that returns (error_code, ...) instead of throwing.
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  virtual ~Channel() = default;

  /// Reads exactly buf.size() bytes. Errors: peer closed (kIo), deadline passed (kTimeout),
  /// cancelled by shutdown (kCancelled), TLS failure (kTls).
  virtual asio::awaitable<Status> read_exact(std::span<std::uint8_t> buf) = 0;
  /// Writes every buffer, in order, as one gathered write.
  virtual asio::awaitable<Status> write_all(std::span<const asio::const_buffer> buffers) = 0;
  /// Closes the transport; pending operations complete with an error. Idempotent.
  virtual void close() noexcept = 0;
  /// Cancels pending operations without closing (shutdown wakes an idle reader with it, after
  /// mark_cancelled(); the watchdog uses it at the first deadline expiry).
  virtual void cancel() noexcept = 0;

  virtual std::string peer_address() const = 0;
  virtual bool is_tls() const { return false; }
  virtual asio::any_io_executor executor() = 0;

  /// Starts the watchdog. Must be called once, from the channel's strand, after construction.
  void start_watchdog();
  /// The transport is closed if no operation completes before the deadline.
  void expires_after(Clock::duration d) { set_deadline(Clock::now() + d); }
  void expires_never() { set_deadline(Clock::time_point::max()); }
  bool timed_out() const { return timed_out_; }
  void mark_cancelled() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 protected:
  explicit Channel(asio::any_io_executor ex) : timer_(ex) {}
  /// Maps an Asio error to a Status, taking timeouts and cancellation into account.
  Status error_status(const std::error_code& ec, const char* what) const;

  /// Deadlines mostly move later (one per PDU). The timer is re-armed only when the deadline
  /// moves earlier; a later one is picked up when the timer fires (no timer call per PDU).
  void set_deadline(Clock::time_point deadline) {
    deadline_ = deadline;
    if (!closed_ && deadline < timer_.expiry()) timer_.expires_at(deadline);
  }

  asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::atomic<bool> timed_out_{false};
  std::atomic<bool> cancelled_{false};
  bool closed_ = false;

 private:
  asio::awaitable<void> watchdog();
};

class TcpChannel final : public Channel {
 public:
  /// Takes a connected socket; sets TCP_NODELAY.
  static std::shared_ptr<TcpChannel> create(asio::ip::tcp::socket socket);

  asio::awaitable<Status> read_exact(std::span<std::uint8_t> buf) override;
  asio::awaitable<Status> write_all(std::span<const asio::const_buffer> buffers) override;
  void close() noexcept override;
  void cancel() noexcept override;
  std::string peer_address() const override { return peer_; }
  asio::any_io_executor executor() override { return socket_.get_executor(); }

  explicit TcpChannel(asio::ip::tcp::socket socket);

 private:
  asio::ip::tcp::socket socket_;
  std::string peer_;
};

/// "ip:port" of a socket's remote end, or "unknown".
std::string remote_endpoint_string(const asio::ip::tcp::socket& socket);

/// Connects to host:port (resolving names) within `timeout`. Sets TCP_NODELAY.
asio::awaitable<Result<asio::ip::tcp::socket>> connect_tcp(asio::any_io_executor ex,
                                                           const std::string& host,
                                                           std::uint16_t port,
                                                           Clock::duration timeout);

}  // namespace gw::dicom
