#pragma once
/// ForwardingService: one Forwarder per configured destination, kept in step with the
/// configuration. Ingest calls notify() after each commit; the REST API and /metrics read
/// status(); SIGHUP / POST /config/reload call reload(); shutdown awaits stop().
///
/// Lease owners: each forwarder claims as "<owner_id>/<destination>". owner_id names this node
/// (stable across restarts, unique among nodes sharing an index): a restarted node then takes
/// back at once the rows its previous run held, instead of waiting for their leases to expire.

#include <asio.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
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
  /// (one post per destination); unknown names are ignored.
  void notify(const std::vector<std::string>& destinations);
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
    std::mutex mu;  // guards everything below
    std::map<std::string, std::shared_ptr<Forwarder>> forwarders;
    std::vector<std::shared_ptr<Forwarder>> retiring;  ///< removed, still stopping
    bool started = false;
    bool stopped = false;
  };

  std::shared_ptr<Forwarder> make_forwarder(const config::Config& config,
                                            const config::Destination& destination) const;
  /// Stops a removed forwarder, then starts its successor of the same name if one was added
  /// meanwhile: two forwarders never hold the same lease owner at once.
  static asio::awaitable<void> retire(std::shared_ptr<State> state,
                                      std::shared_ptr<Forwarder> forwarder);

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
