#pragma once
/// What the Forwarder's source files share and nothing else includes: one worker's association
/// (Forwarder::Connection), the hop to the worker pool (Forwarder::on_pool) and wall-clock
/// milliseconds for the index. The files: forwarder.cpp (life cycle, workers, leases),
/// forwarder_send.cpp (one worker's send loop on one association, each row's outcome),
/// forwarder_connection.cpp (opening and releasing associations), forwarder_breaker.cpp (circuit
/// breaker and probe); send_batch.h and outbox_writer.h are self-contained helpers.

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>

#include "dicom/scu.h"
#include "queue/forwarder.h"

namespace gw::queue {

/// One worker's association and what it was opened with.
struct Forwarder::Connection {
  std::unique_ptr<dicom::ScuAssociation> assoc;
  std::set<Pair> proposed;
  std::uint64_t settings_generation = 0;
  std::chrono::steady_clock::time_point idle_deadline;
  bool used = false;  ///< carried a whole batch already (may have gone stale while idle)
  std::uint64_t stores = 0;
  std::uint64_t serial = 0;  ///< the association attempt under way (ForwardObserver); 0: none
};

template <class F>
asio::awaitable<std::invoke_result_t<F&>> Forwarder::on_pool(F& work) {
  using R = std::invoke_result_t<F&>;
  // co_spawn needs a default-constructible result; Result<T> is not.
  auto out = co_await asio::co_spawn(
      pool_, [&work]() -> asio::awaitable<std::optional<R>> { co_return work(); },
      asio::use_awaitable);
  co_return std::move(*out);
}

}  // namespace gw::queue
