#include "app/app.h"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <nlohmann/json.hpp>

#include "app/admin_index.h"
#include "app/api_destinations.h"
#include "app/content_source.h"
#include "app/encryption.h"
#include "app/ingest_recovery.h"
#include "certs/x509_info.h"
#include "core/log.h"
#include "dicom/dimse.h"
#include "dicom/uids.h"
#include "queue/routing.h"
#include "queue/send_batch.h"
#include "storage/stored_path.h"
#include "storage/volume_info.h"

namespace gw::app {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("app"); }

std::size_t io_threads() { return std::max<std::size_t>(2, std::thread::hardware_concurrency()); }
/// This node's name in outbox leases: stable across restarts (a restarted node takes its rows
/// back at once) and, on one shared database, different for every node: the configured node_id,
/// else the host name (one gateway per host).
std::string lease_owner_id(const config::Config& config) {
  if (!config.node_id.empty()) return config.node_id;
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "dicom-gw";
  return name;
}

/// Every association, stored file being written or forwarded, and database connection holds a
/// descriptor; the soft limit (often 1024) is raised to the hard one, as servers do.
void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    log()->info("event=open_file_limit_raised from={} to={}", before, limit.rlim_cur);
  }
}

std::size_t worker_threads() {
  return std::max<std::size_t>(4, 2 * std::thread::hardware_concurrency());
}

}  // namespace

dicom::ScpPolicy scp_policy_from(const config::Config& config) {
  dicom::ScpPolicy p;
  p.ae_title = config.ae_title;
  p.calling_ae_titles = config.accept.calling_ae_titles;
  p.called_ae_titles = config.accept.called_ae_titles;
  p.require_tls_for = config.accept.require_tls_for;
  p.peers = config.peers;
  p.max_associations = config.limits.max_associations;
  p.max_pending_connections = config.limits.max_pending_connections;
  p.max_async_operations = config.limits.max_async_operations;
  p.limits.max_pdu_length = config.limits.max_pdu_length;
  p.limits.max_associate_rq_length = config.limits.max_associate_rq_length;
  p.limits.artim = config.limits.artim_timeout;
  p.limits.idle = config.limits.idle_timeout;
  return p;
}

App::App(config::Config config)
    : config_(std::move(config)), workers_(worker_threads()), signals_(io_) {
  // Registered before anything listens: a SIGTERM that arrives while the gateway is still
  // starting is queued by the signal_set and handled by run() (graceful), instead of killing the
  // process with the default action.
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGHUP);
  std::signal(SIGPIPE, SIG_IGN);
}

App::~App() {
  io_.stop();
  workers_.join();
}

core::Result<std::unique_ptr<App>> App::create(config::Config config) {
  std::unique_ptr<App> app(new App(std::move(config)));
  GW_RETURN_IF_ERROR(app->start());
  return app;
}

core::Status App::start() {
  raise_open_file_limit();
  shutdown_grace_s_ = config_.limits.shutdown_grace.count();
  storage::StoreOptions store_options;
  store_options.data_dir = config_.data_dir;
  store_options.fsync = config_.storage.fsync;
  store_options.encrypt = config_.storage.encrypt;  // keys: set_keyring below
  store_options.node_id = config_.node_id;
  GW_ASSIGN_OR_RETURN(store_, storage::Store::create(store_options));
  GW_ASSIGN_OR_RETURN(index_, index::open_index(index_options(config_)));
  GW_ASSIGN_OR_RETURN(auto keys, read_keys(config_.database, config_.storage.encrypt));
  GW_ASSIGN_OR_RETURN(keyring_, index_->use_keyring(std::move(keys)));
  store_->set_keyring(keyring_);
  log()->info("event=encryption fields={} key_version={} previous_key_version={} files={}",
              keyring_->empty() ? "off" : "on", keyring_->current ? keyring_->current->version : 0,
              keyring_->previous ? keyring_->previous->version : 0,
              config_.storage.encrypt ? "on" : "off");
  GW_RETURN_IF_ERROR(startup_checks());
  audit_writer_ = std::make_unique<audit::AuditWriter>(*index_);
  if (config_.audit.syslog.enabled) {
    GW_ASSIGN_OR_RETURN(syslog_, audit::SyslogExporter::create(
                                     *index_, audit::SyslogExportOptions::from_config(config_)));
    audit_writer_->on_written([exporter = syslog_.get()] { exporter->notify(); });
  }
  activity_audit_ = std::make_unique<ActivityAudit>(*audit_writer_);
  ingest_ = std::make_unique<IngestService>(*store_, *index_, config_.storage.duplicates,
                                            config_.storage.min_free_mb * 1024 * 1024);
  // The API's destinations run with the file's (ADR 005); a name in both, or one that no
  // longer checks against the file, stops the start like a bad config file.
  GW_ASSIGN_OR_RETURN(auto api, index_->list_destinations());
  GW_ASSIGN_OR_RETURN(auto running, merge_api_destinations(config_, api, nullptr));
  forwarding_ = std::make_unique<queue::ForwardingService>(
      io_, workers_.get_executor(), *index_, config_.data_dir, lease_owner_id(config_), running,
      activity_audit_.get(), stored_file_opener(*store_));
  {
    std::lock_guard lock(reload_mu_);
    GW_RETURN_IF_ERROR(apply_destinations_locked(running, std::move(api)));
  }
  ingest_->on_enqueued(
      [this](const std::vector<std::string>& destinations) { forwarding_->notify(destinations); });
  scp_ = std::make_unique<dicom::ScpContext>(scp_policy_from(config_), *ingest_,
                                             workers_.get_executor());
  scp_->set_observer(activity_audit_.get());
  association_threads_ = std::make_unique<dicom::IoPool>(io_threads());
  for (const auto& l : config_.listeners) {
    if (l.tls && !tls_) {
      GW_ASSIGN_OR_RETURN(tls_, tls::TlsContextHolder::create(config_.tls));
      const auto snapshot = tls_->current();
      log()->info(
          "event=tls_context_loaded profile={} peer_certificate={} subject=\"{}\" serial={}",
          config::to_string(config_.tls.profile), config::to_string(config_.tls.peer_certificate),
          snapshot->certificate_subject(), snapshot->certificate_serial());
      for (const auto& w : snapshot->warnings()) log()->warn("event=tls_warning reason=\"{}\"", w);
    }
    GW_ASSIGN_OR_RETURN(auto listener, dicom::Listener::create(io_, l.name, l.bind, l.port, *scp_,
                                                               l.tls ? tls_ : nullptr));
    listener->set_io_pool(association_threads_.get());
    listeners_.push_back(std::move(listener));
  }
  if (config_.http.enabled) {
    // Bound now, so a port in use fails the start like a DICOM listener's would.
    GW_ASSIGN_OR_RETURN(http_, http::HttpService::create(config_.http, *index_, this));
  }
  return {};
}

http::GatewaySnapshot App::snapshot() const {
  http::GatewaySnapshot s;
  s.encryption.files = config_.storage.encrypt;
  const auto volume = storage::volume_info(config_.data_dir);
  s.encryption.volume_device = volume.device;
  s.encryption.volume_dm_crypt = volume.dm_crypt;
  s.encryption.volume_crypt_type = volume.crypt_type;
  s.version = "0.1.0";
  s.ae_title = config_.ae_title;  // restart-only: never changed by a reload
  s.started_at_ms = started_at_ms_;
  for (std::size_t i = 0; i < listeners_.size() && i < config_.listeners.size(); ++i) {
    const auto& l = config_.listeners[i];
    s.listeners.push_back({l.name, l.bind, listeners_[i]->port(), l.tls});
  }
  if (tls_) {
    // The certificate peers are served now (the live snapshot, not the file on disk).
    const auto current = tls_->current();
    if (X509* cert = SSL_CTX_get0_certificate(current->native())) {
      const auto info = certs::describe_certificate(cert);
      s.tls_certificate = http::CertificateSnapshot{info.subject, info.serial_hex, info.not_after,
                                                    info.days_until_expiry};
    }
  }
  const auto& c = scp_->counters();
  s.scp.active_associations = scp_->active();
  s.scp.associations_accepted = c.associations_accepted.load();
  s.scp.associations_rejected = c.associations_rejected.load();
  s.scp.associations_rejected_identity = c.associations_rejected_identity.load();
  s.scp.associations_aborted = c.associations_aborted.load();
  s.scp.connections_refused = c.connections_refused.load();
  s.scp.echoes = c.echoes.load();
  s.scp.stores_ok = c.stores_ok.load();
  s.scp.stores_failed = c.stores_failed.load();
  s.scp.bytes_received = c.bytes_received.load();
  s.scp.tls_handshake_failures = c.tls_handshake_failures.load();
  for (const auto category : dicom::kRejectCategories) {
    s.scp.rejected_by_reason.emplace_back(
        dicom::to_string(category), c.rejected_by_category[static_cast<std::size_t>(category)]);
  }
  for (const auto reason : tls::kHandshakeReasons) {
    s.scp.tls_failures_by_reason.emplace_back(
        tls::to_string(reason), c.tls_failures_by_reason[static_cast<std::size_t>(reason)]);
  }
  const auto audit = audit_writer_->counts();
  s.audit.written = audit.written;
  s.audit.dropped = audit.dropped;
  s.audit.failed = audit.failed;
  s.audit.queued = audit.queued;
  if (syslog_) {
    const auto sys = syslog_->counts();
    s.audit.syslog_enabled = true;
    s.audit.syslog_connected = sys.connected;
    s.audit.syslog_sent = sys.sent;
    s.audit.syslog_connection_failures = sys.connection_failures;
    s.audit.syslog_backlog = sys.backlog;
  }
  const auto& i = ingest_->counters();
  s.ingest.shared_flush = ingest_->shared_flush();
  s.ingest.stopped = ingest_->flush_failed();
  s.ingest.stored = i.stored.load();
  s.ingest.duplicates = i.duplicates.load();
  s.ingest.failed = i.failed.load();
  s.ingest.bytes_stored = i.bytes_stored.load();
  s.ingest.routed = i.routed.load();
  s.ingest.min_free_bytes = config_.storage.min_free_mb * 1024 * 1024;
  s.ingest.below_reserve = ingest_->below_reserve();
  s.ingest.refused_low_space = i.refused_low_space.load();
  for (const auto& d : forwarding_->status()) {
    s.destinations.push_back({d.name, d.paused, d.pause_reason, d.consecutive_failures,
                              d.open_associations, d.counts.forwarded, d.counts.warnings,
                              d.counts.failed, d.counts.retried, d.counts.dead, d.counts.bytes,
                              d.counts.associations_opened, d.counts.claimed_ahead});
  }
  struct statvfs fs {};
  if (::statvfs(config_.data_dir.c_str(), &fs) == 0) {
    s.storage_total_bytes = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
    s.storage_available_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    // Now, not as of the last instance: freed space (or a disk filled by others) shows at once.
    s.ingest.below_reserve =
        s.ingest.min_free_bytes > 0 && s.storage_available_bytes < s.ingest.min_free_bytes;
  }
  return s;
}

void App::queue_changed(const std::string& destination) { forwarding_->notify({destination}); }

std::shared_ptr<const crypto::Keyring> App::keyring() const {
  std::lock_guard lock(keyring_mu_);
  return keyring_;
}

core::Result<std::unique_ptr<storage::ContentReader>> App::open_stored_file(
    const std::string& relative_path, const std::string& digest) {
  GW_ASSIGN_OR_RETURN(const auto path,
                      storage::stored_file_path(store_->data_dir(), relative_path));
  const auto keys = keyring();
  GW_ASSIGN_OR_RETURN(auto reader, storage::open_content(path, keys.get()));
  // The forwarder's check (queue/send_batch.h), through the DICOM layer's byte source.
  return std::unique_ptr<storage::ContentReader>(std::make_unique<SourceContent>(
      queue::check_digest(std::make_unique<ContentByteSource>(std::move(reader)), digest)));
}

core::Status App::startup_checks() {
  // Runs before any listener opens: nothing else writes to storage/ now.
  GW_RETURN_IF_ERROR(recover_unconfirmed(*store_, *index_));
  GW_RETURN_IF_ERROR(remove_unreferenced_files(*store_, *index_));
  store_->mark_recovered();
  return core::ok_status();
}

void App::stop() {
  asio::post(io_, [this]() {
    if (stopping_.exchange(true)) return;
    asio::co_spawn(io_, shutdown_sequence(), asio::detached);
  });
}

asio::awaitable<void> App::shutdown_sequence() {
  log()->info("event=shutdown_started active_associations={}", scp_->active());
  for (auto& l : listeners_) l->stop();
  scp_->begin_shutdown();
  asio::steady_timer timer(io_);
  // Not config_.limits: a reload may be writing it (under reload_mu_, which the I/O thread
  // must not wait for).
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(shutdown_grace_s_.load());
  while (scp_->active() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(dicom::use_nothrow);
  }
  if (scp_->active() > 0) {
    log()->warn("event=shutdown_grace_expired active_associations={}", scp_->active());
  }
  // Forwarders finish the instance they are sending and give their leases back.
  co_await forwarding_->stop();
  signals_.cancel();
  io_.stop();
}

asio::awaitable<void> App::checkpoint_loop() {
  asio::steady_timer timer(io_);
  while (!stopping_) {
    timer.expires_after(std::chrono::seconds(30));
    co_await timer.async_wait(dicom::use_nothrow);
    if (stopping_) break;
    asio::post(workers_, [this]() {
      if (auto st = store_->checkpoint(); !st.ok()) {
        log()->warn("event=storage_checkpoint_failed error={}", st.error().message);
      }
    });
  }
}

int App::run() {
  std::function<void(const std::error_code&, int)> on_signal;
  on_signal = [this, &on_signal](const std::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log()->info("event=sighup action=config_reload");
      reload_config();
      signals_.async_wait(on_signal);
      return;
    }
    log()->info("event=signal signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    stop();
  };
  signals_.async_wait(on_signal);

  started_at_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  forwarding_->start();
  if (syslog_) syslog_->start();
  // Before the DICOM listeners: once a test (or systemd) sees the DICOM port, the API answers.
  if (http_) http_->start();
  for (auto& l : listeners_) {
    l->start();
    log()->info("event=listening listener={} port={} ae_title={}", l->name(), l->port(),
                config_.ae_title);
  }
  association_threads_->start();
  if (const auto min = config_.storage.min_free_mb * 1024 * 1024; min > 0) {
    if (const auto free = store_->free_bytes(); free.ok() && *free < min) {
      log()->warn(
          "event=storage_below_reserve_at_start free_mb={} min_free_mb={} "
          "action=instances_refused_until_space_is_freed",
          *free / (1024 * 1024), config_.storage.min_free_mb);
    }
  }
  {
    nlohmann::json listening = nlohmann::json::array();
    for (const auto& l : listeners_)
      listening.push_back({{"name", l->name()}, {"port", l->port()}});
    audit_lifecycle(
        "gateway.started",
        nlohmann::json{{"ae_title", config_.ae_title}, {"listeners", listening}}.dump());
  }
  asio::co_spawn(io_, checkpoint_loop(), asio::detached);
  std::vector<std::jthread> threads;
  const auto n = io_threads();
  for (std::size_t i = 1; i < n; ++i) threads.emplace_back([this]() { io_.run(); });
  io_.run();
  threads.clear();  // joins
  association_threads_->stop();
  // After the drain, so /status and /queue answered during it; before the workers, whose
  // index calls it shares.
  if (http_) http_->stop();
  workers_.join();
  // Summaries of associations the shutdown cut off, then every queued audit row.
  activity_audit_->flush_all();
  audit_writer_->stop();
  audit_lifecycle("gateway.stopped",
                  nlohmann::json{{"associations", scp_->counters().associations_accepted.load()},
                                 {"stored", ingest_->counters().stored.load()},
                                 {"failed", ingest_->counters().failed.load()}}
                      .dump());
  if (syslog_) syslog_->stop();  // what it has not sent goes out after the next start
  const auto& c = scp_->counters();
  log()->info("event=stopped associations={} stored={} failed={}", c.associations_accepted.load(),
              ingest_->counters().stored.load(), ingest_->counters().failed.load());
  return 0;
}

}  // namespace gw::app
