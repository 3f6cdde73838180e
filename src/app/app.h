#pragma once
/// The composition root of `dicom-gw serve`: builds every component from a Config in dependency
/// order (store, index, ingest, DICOM listeners), runs the I/O threads and the worker pool, and
/// on SIGTERM/SIGINT stops in reverse: no new associations, in-flight instances finish (up to
/// limits.shutdown_grace), then the process exits 0.

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "app/activity_audit.h"
#include "app/ingest.h"
#include "audit/syslog_export.h"
#include "audit/writer.h"
#include "config/config.h"
#include "crypto/keyring.h"
#include "dicom/io_pool.h"
#include "dicom/scp.h"
#include "http/control.h"
#include "http/service.h"
#include "index/index.h"
#include "queue/forwarding_service.h"
#include "storage/store.h"

namespace gw::app {

/// Also what the REST API sees of the running gateway (http::GatewayControl).
class App final : public http::GatewayControl {
 public:
  static core::Result<std::unique_ptr<App>> create(config::Config config);
  ~App();

  /// Serves until a stop signal or stop(); returns the process exit code.
  int run();
  /// Starts the graceful shutdown (thread-safe).
  void stop();

  const std::vector<std::unique_ptr<dicom::Listener>>& listeners() const { return listeners_; }

  // http::GatewayControl
  http::GatewaySnapshot snapshot() const override;
  bool ingest_stopped() const override { return ingest_ && ingest_->flush_failed(); }
  void queue_changed(const std::string& destination) override;
  std::vector<http::DestinationConfigSnapshot> destinations() const override;
  http::ReloadOutcome reload_config_file() override;
  std::optional<http::EchoOutcome> echo_destination(const std::string& destination,
                                                    std::chrono::milliseconds timeout) override;
  http::DestinationEditOutcome edit_destination(const http::DestinationEdit& edit) override;
  std::optional<http::TlsCertificateFiles> tls_certificate_files() const override;
  core::Status reload_tls_certificate() override;

 private:
  explicit App(config::Config config);
  core::Status start();
  /// Before the listeners open: checks the instances whose flush was never confirmed and, after
  /// an unclean previous run, removes stored files that no index row references
  /// (app/ingest_recovery.h).
  core::Status startup_checks();
  asio::awaitable<void> shutdown_sequence();
  /// Every 30 s, on the worker pool: Store::checkpoint(), so that the recovery after a crash
  /// looks at the files of the last interval only, not at everything since the start.
  asio::awaitable<void> checkpoint_loop();
  /// SIGHUP: reads the config file again and applies it atomically or not at all (TLS
  /// context, routes, destinations); keys that need a restart (listeners, data_dir, database,
  /// storage, limits) are reported and keep their running values.
  void reload_config();
  /// The reload itself (blocking: files, DCMTK dictionary), shared by SIGHUP (on the worker
  /// pool) and POST /api/v1/config/reload (on the HTTP thread): every issue when nothing was
  /// applied, else what now runs.
  http::ReloadOutcome apply_reload();
  /// Runs `merged` (the file's config plus the API destinations `api`, ADR 005): routing
  /// table, forwarders, and the API destinations' running state. Call with reload_mu_ held.
  core::Status apply_destinations_locked(const config::Config& merged,
                                         std::vector<index::ApiDestination> api);
  http::DestinationEditOutcome edit_destination_locked(const http::DestinationEdit& edit);
  core::Result<std::unique_ptr<storage::ContentReader>> open_stored_file(
      const std::string& relative_path, const std::string& digest) override;
  std::shared_ptr<const crypto::Keyring> keyring() const;
  /// Re-reads the key files/variables of `fresh` and, when they changed, registers them with
  /// the index and hands them to the store. Call with reload_mu_ held.
  core::Status reload_keys_locked(const config::Config& fresh);
  /// The audit row of a reload ("system" for SIGHUP).
  void audit_reload(const http::ReloadOutcome& outcome, const std::string& actor);
  /// "gateway.started" / "gateway.stopped" (an ATNA Application Activity).
  void audit_lifecycle(const std::string& action, const std::string& details);

  // Declaration order is destruction order, reversed, and it matters: coroutine frames still
  // pending when the I/O context is destroyed reference the ScpContext, the ingest service, the
  // store and the index, so those are declared (and live) before io_ and workers_; the I/O
  // objects bound to io_ (listeners, signals) are declared after it and die first.
  config::Config config_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<index::Index> index_;
  /// The master keys for encryption at rest with their versions (ADR 010); empty when none is
  /// configured. Replaced by a reload under reload_mu_.
  std::shared_ptr<const crypto::Keyring> keyring_;
  mutable std::mutex keyring_mu_;  ///< guards keyring_ (readers copy the pointer)
  /// audit.syslog: every audit row to the collector (null when disabled). Before the writer,
  /// whose thread wakes it, so it outlives that thread.
  std::unique_ptr<audit::SyslogExporter> syslog_;
  /// The audit trail of DICOM activity (ADR 006): rows queued by the I/O threads, written by
  /// the writer's thread. Both outlive everything that reports to them (listeners, forwarders).
  std::unique_ptr<audit::AuditWriter> audit_writer_;
  std::unique_ptr<ActivityAudit> activity_audit_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<dicom::ScpContext> scp_;
  std::shared_ptr<tls::TlsContextHolder> tls_;  ///< shared by the TLS listeners; null: none
  /// Stopped (awaited) in the shutdown sequence; pending frames refer to it, so it outlives io_.
  std::unique_ptr<queue::ForwardingService> forwarding_;
  /// The REST API (null when http.enabled is false). Stopped in run() once the I/O threads
  /// are done, so it keeps answering (status, queue) while the shutdown drains associations.
  std::unique_ptr<http::HttpService> http_;
  std::int64_t started_at_ms_ = 0;
  asio::thread_pool workers_;
  asio::io_context io_;
  /// The threads that run DICOM associations (after io_ in this list: destroyed first, while
  /// everything their coroutine frames refer to still exists).
  std::unique_ptr<dicom::IoPool> association_threads_;
  std::vector<std::unique_ptr<dicom::Listener>> listeners_;
  asio::signal_set signals_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex reload_mu_;  // one reload at a time; guards config_'s reloadable parts
  /// limits.shutdown_grace in seconds, as last loaded (read by the shutdown on the I/O thread).
  std::atomic<std::int64_t> shutdown_grace_s_{30};
  /// Destinations created through the API as stored, sorted by name, and as they run (config
  /// form, same order). Guarded by reload_mu_.
  std::vector<index::ApiDestination> api_destinations_;
  std::vector<config::Destination> api_running_;
};

/// Policy for the SCP from the config.
dicom::ScpPolicy scp_policy_from(const config::Config& config);

}  // namespace gw::app
