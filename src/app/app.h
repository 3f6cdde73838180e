#pragma once
/// The composition root of `dicom-gw serve`: builds every component from a Config in dependency
/// order (store, index, ingest, DICOM listeners), runs the I/O threads and the worker pool, and
/// on SIGTERM/SIGINT stops in reverse: no new associations, in-flight instances finish (up to
/// limits.shutdown_grace), then the process exits 0.

#include <asio.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "app/ingest.h"
#include "config/config.h"
#include "dicom/scp.h"
#include "index/index.h"
#include "storage/store.h"

namespace gw::app {

class App {
 public:
  static core::Result<std::unique_ptr<App>> create(config::Config config);
  ~App();

  /// Serves until a stop signal or stop(); returns the process exit code.
  int run();
  /// Starts the graceful shutdown (thread-safe).
  void stop();

  const std::vector<std::unique_ptr<dicom::Listener>>& listeners() const { return listeners_; }

 private:
  explicit App(config::Config config);
  core::Status start();
  /// After an unclean previous run: removes stored files that no index row references.
  core::Status recover_after_crash();
  asio::awaitable<void> shutdown_sequence();
  /// SIGHUP: rebuilds the TLS context from the same files; on failure the old one stays.
  void reload_tls();

  config::Config config_;
  asio::io_context io_;
  asio::thread_pool workers_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<index::Index> index_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<dicom::ScpContext> scp_;
  std::vector<std::unique_ptr<dicom::Listener>> listeners_;
  std::shared_ptr<tls::TlsContextHolder> tls_;  ///< shared by the TLS listeners; null: none
  asio::signal_set signals_;
  std::atomic<bool> stopping_{false};
};

/// Policy for the SCP from the config.
dicom::ScpPolicy scp_policy_from(const config::Config& config);

}  // namespace gw::app
