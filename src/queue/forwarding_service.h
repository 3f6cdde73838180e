#pragma once
/// ForwardingService: one Forwarder per configured destination, kept in step with the
/// configuration. Ingest calls notify() after each commit; the REST API and /metrics read
/// status(); SIGHUP / POST /config/reload call reload(); shutdown awaits stop().
///
/// Lease owners: each forwarder claims as "<owner_id>/<destination>". owner_id names this node
/// (stable across restarts, unique among nodes sharing an index): a restarted node then takes
/// back at once the rows its previous run held, instead of waiting for their leases to expire.
///
/// Deleted API destinations (ADR 005): an instance routed before a delete was applied (ingest's
/// routing snapshot), or by another node that still runs the destination until its next
/// reload, queues a row after the delete dead-lettered or counted the queued ones; no forwarder
/// would ever claim it. A sweep dead-letters such rows ("destination deleted", as a forced
/// delete): those of destinations deleted here (destination_deleted()) or that this node saw
/// in the index's api_destinations and that are gone from it, as long as no forwarder here
/// runs that name and the index has no API destination of that name (another node may have
/// created it and not be reloaded yet). A file destination is never swept: another node's
/// file may still name it. The sweep runs at start, after a reload, after a removed forwarder
/// has given its leases back, when notify() names a destination that does not run here, and
/// every minute; it reads api_destinations (a few rows) and writes only when there is a name
/// to sweep. Names are forgotten once sweeps have found nothing for 10 minutes (late rows come
/// within seconds of a delete), so the minute's write does not go on for ever.

#include <asio.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "dicom/strand_signal.h"
#include "index/index.h"
#include "queue/forwarder.h"

namespace gw::queue {

class ForwardingService {
 public:
  /// Nothing runs until start(). `io` runs the forwarders' coroutines (their network I/O);
  /// `worker_pool` their index calls and file reads. `observer` (may be null, not owned, must
  /// outlive the service) hears of every forwarder's associations and rows (audit trail).
  ForwardingService(asio::io_context& io, asio::any_io_executor worker_pool, index::Index& index,
                    std::filesystem::path data_dir, std::string owner_id,
                    const config::Config& config, ForwardObserver* observer = nullptr,
                    dicom::SourceOpener open_file = {});
  ForwardingService(const ForwardingService&) = delete;
  ForwardingService& operator=(const ForwardingService&) = delete;
  /// Call stop() (and let it finish) first, or destroy after the io_context is gone.
  ~ForwardingService();

  /// Starts a forwarder per destination. Thread-safe; once.
  void start();
  /// Rows for these destinations were committed: wake their idle workers. Thread-safe, cheap
  /// (one post per destination); a name that does not run here asks for a sweep.
  void notify(const std::vector<std::string>& destinations);
  /// The API destination `name` was deleted from the index (and a reload has stopped it): its
  /// rows queued from now on are dead-lettered by the sweep. Thread-safe.
  void destination_deleted(const std::string& name);
  /// Applies a new configuration: new destinations start; removed ones stop after their
  /// in-flight item (and give their leases back); kept ones keep running and use the new
  /// settings (TLS files re-read) from their next association. Thread-safe. kCancelled after
  /// stop().
  core::Status reload(const config::Config& config);
  /// Stops every forwarder (in-flight items finish, leases are released); returns when all
  /// have. Await it from any executor.
  asio::awaitable<void> stop();
  /// The same, blocking: for a thread that does not run `io` (tests, a main thread), while
  /// other threads run it.
  void stop_and_wait();

  /// One entry per configured destination, sorted by name. Thread-safe.
  std::vector<DestinationStatus> status() const;
  std::optional<DestinationStatus> status(const std::string& destination) const;
  /// Whether the destination's circuit breaker is open (false for an unknown name).
  bool paused(const std::string& destination) const;

 private:
  /// Shared with retire() coroutines, which may finish after the service is gone.
  struct State {
    explicit State(asio::io_context& io) : sweep_strand(asio::make_strand(io)) {}
    std::mutex mu;  // guards everything below up to sweep_strand
    std::map<std::string, std::shared_ptr<Forwarder>> forwarders;
    std::vector<std::shared_ptr<Forwarder>> retiring;  ///< removed, still stopping
    bool started = false;
    bool stopped = false;
    /// Names read from the index's api_destinations since start, and the deleted ones whose
    /// rows the sweep dead-letters.
    std::set<std::string> api_seen;
    std::set<std::string> deleted;
    /// Since when the sweeps have dead-lettered nothing and no name was added.
    std::chrono::steady_clock::time_point quiet_since{};
    bool sweeping = false;  ///< sweep_loop() runs: from start() until it ends after stop()

    asio::any_io_executor sweep_strand;
    // Sweep strand only.
    dicom::StrandSignal sweep_wake;  ///< a sweep is wanted now; stop
    dicom::StrandSignal sweep_done;  ///< sweep_loop() ended
  };

  std::shared_ptr<Forwarder> make_forwarder(const config::Config& config,
                                            const config::Destination& destination) const;
  /// Stops a removed forwarder, then starts its successor of the same name if one was added
  /// meanwhile: two forwarders never hold the same lease owner at once.
  static asio::awaitable<void> retire(std::shared_ptr<State> state,
                                      std::shared_ptr<Forwarder> forwarder);
  /// Asks the sweep loop for a sweep now (after a running one). Any thread; a no-op unless
  /// started and not stopped (the caller holds state.mu).
  static void request_sweep_locked(const std::shared_ptr<State>& state);
  /// Sweep strand: sweeps now, then whenever asked or a minute has passed, until stop().
  asio::awaitable<void> sweep_loop();
  /// Worker pool: one sweep (see the class comment).
  void sweep();

  asio::io_context& io_;
  asio::any_io_executor worker_pool_;
  index::Index& index_;
  std::filesystem::path data_dir_;
  std::string owner_id_;
  ForwardObserver* observer_;
  dicom::SourceOpener open_file_;  ///< how forwarders read stored files (see Forwarder)
  std::shared_ptr<State> state_;
};

}  // namespace gw::queue
