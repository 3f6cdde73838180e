#pragma once
/// IoPool: the threads that run DICOM associations. One io_context per thread, each run by that
/// thread alone, and every accepted connection is bound to one of them (round-robin) for its
/// whole life: its reads, writes and timers never hop between threads, and no thread wakes
/// another to hand over an association's next step. (A shared io_context run by several threads
/// did exactly that on every PDU: ~12 futex calls and ~7 epoll interrupts per C-STORE.)

#include <asio.hpp>
#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace gw::dicom {

class IoPool {
 public:
  /// `threads` >= 1. Nothing runs until start().
  explicit IoPool(std::size_t threads);
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;
  /// Stops and joins (see stop()).
  ~IoPool();

  void start();
  /// Stops every io_context and joins the threads. Associations still running are cut off
  /// where they are (their frames are destroyed with the io_contexts): call this once the
  /// associations have ended or their grace period is over. Idempotent.
  void stop();

  /// The executor of the next io_context, round-robin.
  asio::any_io_executor next();
  std::size_t size() const { return contexts_.size(); }

 private:
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<Guard> guards_;  ///< emptied by stop()
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace gw::dicom
