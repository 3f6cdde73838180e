#include "app/app.h"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <future>
#include <nlohmann/json.hpp>

#include "app/admin_index.h"
#include "app/api_destinations.h"
#include "app/content_source.h"
#include "app/encryption.h"
#include "certs/x509_info.h"
#include "core/log.h"
#include "dicom/dimse.h"
#include "dicom/scu.h"
#include "dicom/uids.h"
#include "queue/destination_scu.h"
#include "queue/routing.h"
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
  storage::StoreOptions store_options;
  store_options.data_dir = config_.data_dir;
  store_options.fsync = config_.storage.fsync;
  store_options.encrypt = config_.storage.encrypt;  // keys: set_keyring below
  store_options.node_id = config_.node_id;
  GW_ASSIGN_OR_RETURN(store_, storage::Store::create(store_options));
  GW_ASSIGN_OR_RETURN(index_, index::open_index(index_options(config_)));
  GW_ASSIGN_OR_RETURN(keyring_, load_keys(config_, *index_));
  if (config_.storage.encrypt && keyring_->empty()) {
    return core::make_error(core::ErrorCode::kConfig,
                            "storage.encrypt needs an encryption key: set " +
                                config_.database.encryption_key_env +
                                " or database.encryption_key_file");
  }
  store_->set_keyring(keyring_);
  log()->info("event=encryption fields={} key_version={} previous_key_version={} files={}",
              keyring_->empty() ? "off" : "on", keyring_->current ? keyring_->current->version : 0,
              keyring_->previous ? keyring_->previous->version : 0,
              config_.storage.encrypt ? "on" : "off");
  GW_RETURN_IF_ERROR(recover_after_crash());
  audit_writer_ = std::make_unique<audit::AuditWriter>(*index_);
  activity_audit_ = std::make_unique<ActivityAudit>(*audit_writer_);
  ingest_ = std::make_unique<IngestService>(*store_, *index_, config_.storage.duplicates,
                                            workers_.get_executor());
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
  const auto& i = ingest_->counters();
  s.ingest.stored = i.stored.load();
  s.ingest.duplicates = i.duplicates.load();
  s.ingest.failed = i.failed.load();
  s.ingest.bytes_stored = i.bytes_stored.load();
  s.ingest.routed = i.routed.load();
  for (const auto& d : forwarding_->status()) {
    s.destinations.push_back({d.name, d.paused, d.pause_reason, d.consecutive_failures,
                              d.open_associations, d.counts.forwarded, d.counts.warnings,
                              d.counts.failed, d.counts.retried, d.counts.dead, d.counts.bytes,
                              d.counts.associations_opened});
  }
  struct statvfs fs {};
  if (::statvfs(config_.data_dir.c_str(), &fs) == 0) {
    s.storage_total_bytes = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
    s.storage_available_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  return s;
}

void App::queue_changed(const std::string& destination) { forwarding_->notify({destination}); }

namespace {

http::DestinationConfigSnapshot destination_snapshot(const config::Destination& d) {
  http::DestinationConfigSnapshot s;
  s.name = d.name;
  s.ae_title = d.ae_title;
  s.calling_ae_title = d.calling_ae_title;
  s.host = d.host;
  s.port = d.port;
  s.tls_enabled = d.tls_enabled;
  s.verify_hostname = d.verify_hostname;
  s.max_associations = d.max_associations;
  s.tls_profile = std::string(config::to_string(d.tls_profile));
  s.tls_cert_path = d.tls_cert_path.string();
  s.tls_key_path = d.tls_key_path.string();
  s.tls_ca_path = d.tls_ca_path.string();
  return s;
}

http::DestinationConfigSnapshot api_snapshot(const config::Destination& running,
                                             const index::ApiDestination& stored) {
  auto s = destination_snapshot(running);
  s.source = "api";
  s.match = stored.match;
  const auto body = to_body(stored);
  if (body.contains("retry")) s.retry = body["retry"].dump();
  s.created_at_ms = stored.created_at_ms;
  s.created_by = stored.created_by;
  s.updated_at_ms = stored.updated_at_ms;
  s.updated_by = stored.updated_by;
  return s;
}

}  // namespace

std::vector<http::DestinationConfigSnapshot> App::destinations() const {
  std::vector<http::DestinationConfigSnapshot> out;
  {
    std::lock_guard lock(reload_mu_);
    for (const auto& d : config_.destinations) out.push_back(destination_snapshot(d));
    for (std::size_t i = 0; i < api_running_.size(); ++i) {
      out.push_back(api_snapshot(api_running_[i], api_destinations_[i]));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

namespace {

using SteadyClock = std::chrono::steady_clock;

std::int64_t ms_since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();
}

/// One association, one C-ECHO, release. Parameters by value: the frame owns what it uses.
asio::awaitable<http::EchoOutcome> echo_once(asio::any_io_executor ex, dicom::ScuOptions options,
                                             SteadyClock::time_point t0) {
  http::EchoOutcome out;
  std::vector<dicom::PresentationContextRq> contexts{
      {1,
       std::string(dicom::kVerificationSopClass),
       {std::string(dicom::kImplicitVrLittleEndian)}}};
  auto assoc = co_await dicom::ScuAssociation::open(ex, options, std::move(contexts));
  if (!assoc.ok()) {
    out.reason = assoc.error().message;
  } else {
    auto status = co_await (*assoc)->echo();
    if (!status.ok()) {
      out.reason = status.error().message;
      co_await (*assoc)->abort();
    } else {
      out.status = *status;
      out.ok = *status == dicom::status::kSuccess;
      if (!out.ok) out.reason = fmt::format("C-ECHO answered with status 0x{:04X}", *status);
      (void)co_await (*assoc)->release();
    }
  }
  out.elapsed_ms = ms_since(t0);
  co_return out;
}

}  // namespace

std::optional<http::EchoOutcome> App::echo_destination(const std::string& destination,
                                                       std::chrono::milliseconds timeout) {
  std::optional<config::Destination> d;
  std::string gateway_ae;
  {
    std::lock_guard lock(reload_mu_);
    for (const auto& c : config_.destinations) {
      if (c.name == destination) d = c;
    }
    for (const auto& c : api_running_) {
      if (c.name == destination) d = c;
    }
    gateway_ae = config_.ae_title;
  }
  if (!d) return std::nullopt;
  const auto t0 = SteadyClock::now();
  // Shared with the work below, which may outlive this call when the peer is slower than
  // `timeout` (its own socket timeouts end it soon after).
  auto done = std::make_shared<std::promise<http::EchoOutcome>>();
  auto answer = done->get_future();
  // The same settings as the forwarder's associations (scu_options()), with short timeouts.
  dicom::ScuOptions o = queue::destination_scu_options(*d, gateway_ae);
  o.connect_timeout = o.association_timeout = o.response_timeout = timeout;
  // Reading certificate and key files is blocking: the worker pool builds the context, the
  // I/O context runs the association.
  asio::post(workers_, [this, d = *d, o, done, t0]() mutable {
    if (d.tls_enabled) {
      dicom::ScuTlsOptions t = queue::destination_tls_options(d);
      auto context = t.make_context();
      if (!context.ok()) {
        done->set_value({false, -1, ms_since(t0),
                         "TLS settings of destination " + d.name + ": " + context.error().message});
        return;
      }
      t.context = std::move(context).value();
      o.tls = std::move(t);
    }
    auto strand = asio::make_strand(io_);
    asio::co_spawn(strand, echo_once(strand, std::move(o), t0),
                   [done](std::exception_ptr e, http::EchoOutcome out) {
                     if (e) out = {false, -1, 0, "internal error during C-ECHO"};
                     done->set_value(std::move(out));
                   });
  });
  if (answer.wait_for(timeout) != std::future_status::ready) {
    return http::EchoOutcome{false, -1, ms_since(t0),
                             fmt::format("no answer within {} ms", timeout.count())};
  }
  return answer.get();
}

core::Status App::apply_destinations_locked(const config::Config& merged,
                                            std::vector<index::ApiDestination> api) {
  GW_ASSIGN_OR_RETURN(auto routing, queue::RoutingTable::compile(merged));
  ingest_->set_routing(std::make_shared<const queue::RoutingTable>(std::move(routing)));
  if (auto st = forwarding_->reload(merged); !st.ok()) {
    log()->warn("event=forwarding_reload_skipped reason=\"{}\"", st.error().message);
  }
  api_running_.assign(merged.destinations.begin() + config_.destinations.size(),
                      merged.destinations.end());
  api_destinations_ = std::move(api);
  return core::ok_status();
}

http::DestinationEditOutcome App::edit_destination(const http::DestinationEdit& edit) {
  // Under the reload lock: a config reload never sees half of an edit, and the name checks
  // against the file's destinations hold until the edit is applied.
  std::lock_guard lock(reload_mu_);
  return edit_destination_locked(edit);
}

http::DestinationEditOutcome App::edit_destination_locked(const http::DestinationEdit& edit) {
  using Kind = http::DestinationEdit::Kind;
  http::DestinationEditOutcome out;
  auto fail = [&](core::ErrorCode code, std::string message) {
    out.error = core::make_error(code, std::move(message));
    return out;
  };
  auto fail_issues = [&](const std::vector<config::ConfigIssue>& issues) {
    for (const auto& i : issues) out.issues.push_back({i.path, i.message});
    out.error = core::make_error(core::ErrorCode::kConfig,
                                 fmt::format("the destination was not saved ({} issue{})",
                                             issues.size(), issues.size() == 1 ? "" : "s"));
    return out;
  };
  nlohmann::json body = nlohmann::json::object();
  if (edit.kind != Kind::kDelete) {
    body = nlohmann::json::parse(edit.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object()) return fail(core::ErrorCode::kInvalidArgument, "expected a JSON object");
  }
  std::string name = edit.name;
  if (edit.kind == Kind::kCreate) {
    if (const auto n = body.find("name"); n != body.end() && n->is_string()) name = *n;
  }
  for (const auto& d : config_.destinations) {
    if (name.empty() || !same_destination_name(d.name, name)) continue;
    return fail(core::ErrorCode::kConflict,
                fmt::format("destination `{}` is defined in the config file ({}); change it "
                            "there and reload",
                            d.name, config_.source_path.string()));
  }
  GW_CHECK(index_ != nullptr);
  auto listed = index_->list_destinations();
  if (!listed.ok()) return fail(core::ErrorCode::kInternal, listed.error().message);
  std::vector<index::ApiDestination> api = std::move(listed).value();
  auto existing = std::find_if(api.begin(), api.end(), [&](const index::ApiDestination& d) {
    return same_destination_name(d.name, name);
  });
  if (edit.kind != Kind::kCreate && existing == api.end()) {
    return fail(core::ErrorCode::kNotFound, fmt::format("no destination `{}`", name));
  }

  // The new set, merged and checked before anything is written: a write that is not applied
  // at once would run only after the next restart.
  std::optional<index::ApiDestination> stored;
  if (edit.kind == Kind::kDelete) {
    name = existing->name;
    api.erase(existing);
  } else {
    std::vector<config::ConfigIssue> issues;
    if (edit.kind == Kind::kUpdate) {
      // The URL names it; a body's name may only repeat it (no renames: outbox rows keep names).
      if (const auto n = body.find("name"); n != body.end() && !n->is_null()) {
        if (!n->is_string() || !same_destination_name(n->get<std::string>(), existing->name)) {
          issues.push_back({"name", "must be the name in the URL (`" + existing->name +
                                        "`): a destination cannot be renamed"});
        }
      }
      body["name"] = existing->name;
    }
    std::vector<config::ConfigIssue> checked_issues;
    auto checked = check_api_destination(body, config_, "", &checked_issues);
    issues.insert(issues.end(), checked_issues.begin(), checked_issues.end());
    if (!checked.ok() || !issues.empty()) return fail_issues(issues);
    stored = to_stored(body, *checked);
    stored->updated_at_ms = edit.audit.at_ms;
    stored->updated_by = edit.audit.actor;
    if (edit.kind == Kind::kCreate) {
      if (existing != api.end()) {
        return fail(core::ErrorCode::kAlreadyExists,
                    fmt::format("destination `{}` already exists", existing->name));
      }
      stored->created_at_ms = edit.audit.at_ms;
      stored->created_by = edit.audit.actor;
      api.push_back(*stored);
    } else {
      stored->created_at_ms = existing->created_at_ms;
      stored->created_by = existing->created_by;
      *existing = *stored;
    }
    name = stored->name;
    std::sort(api.begin(), api.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  std::vector<config::ConfigIssue> issues;
  auto merged = merge_api_destinations(config_, api, &issues);
  if (!merged.ok()) return fail_issues(issues);

  // The write and its audit row: one transaction.
  core::Status written;
  if (edit.kind == Kind::kDelete) {
    auto dead = index_->delete_destination(name, edit.force, edit.audit.at_ms, &edit.audit);
    if (dead.ok()) out.dead_lettered = *dead;
    if (!dead.ok()) written = dead.error();
  } else if (edit.kind == Kind::kCreate) {
    auto id = index_->create_destination(*stored, &edit.audit);
    if (!id.ok()) written = id.error();
  } else {
    written = index_->update_destination(*stored, &edit.audit);
  }
  if (!written.ok()) {
    out.error = written.error();
    return out;
  }
  if (auto st = apply_destinations_locked(*merged, std::move(api)); !st.ok()) {
    out.error = st.error();
    return out;
  }
  log()->info("event=api_destination_{} destination={} dead_lettered={}",
              edit.kind == Kind::kCreate   ? "created"
              : edit.kind == Kind::kUpdate ? "updated"
                                           : "deleted",
              name, out.dead_lettered);
  if (edit.kind != Kind::kDelete) {
    for (std::size_t i = 0; i < api_running_.size(); ++i) {
      if (!same_destination_name(api_running_[i].name, name)) continue;
      out.destination = api_snapshot(api_running_[i], api_destinations_[i]);
    }
  }
  return out;
}

void App::reload_config() {
  // Reading files and compiling rules is blocking work: the worker pool, not an I/O thread.
  asio::post(workers_, [this]() {
    const auto outcome = apply_reload();
    for (const auto& issue : outcome.issues) {
      log()->error(
          "event=reload_failed path=\"{}\" reason=\"{}\" action=kept_running_configuration",
          issue.path, issue.message);
    }
    audit_reload(outcome, "system");
  });
}

namespace {

/// Top-level parts of the configuration that only a restart applies.
std::vector<std::string> restart_only_changes(const config::Config& running,
                                              const config::Config& fresh) {
  std::vector<std::string> changed;
  auto listeners_differ = [&]() {
    if (running.listeners.size() != fresh.listeners.size()) return true;
    for (std::size_t i = 0; i < running.listeners.size(); ++i) {
      const auto& a = running.listeners[i];
      const auto& b = fresh.listeners[i];
      if (a.name != b.name || a.bind != b.bind || a.port != b.port || a.tls != b.tls) return true;
    }
    return false;
  };
  if (running.ae_title != fresh.ae_title) changed.push_back("ae_title");
  if (running.data_dir != fresh.data_dir) changed.push_back("data_dir");
  if (running.node_id != fresh.node_id) changed.push_back("node_id");
  if (listeners_differ()) changed.push_back("listeners");
  if (running.database.url != fresh.database.url) changed.push_back("database");
  if (running.storage.fsync != fresh.storage.fsync ||
      running.storage.encrypt != fresh.storage.encrypt ||
      running.storage.duplicates != fresh.storage.duplicates) {
    changed.push_back("storage");
  }
  if (running.http.enabled != fresh.http.enabled || running.http.bind != fresh.http.bind ||
      running.http.port != fresh.http.port || running.http.tls.enabled != fresh.http.tls.enabled ||
      running.http.cors_origins != fresh.http.cors_origins) {
    changed.push_back("http");
  }
  return changed;
}

}  // namespace

http::ReloadOutcome App::apply_reload() {
  std::lock_guard lock(reload_mu_);
  http::ReloadOutcome outcome;
  // Nothing changes unless every check passes: the API answers with every issue at once.
  auto refuse = [&](const std::string& path, const std::string& message) {
    outcome.issues.push_back({path, message});
    return outcome;
  };
  std::vector<config::ConfigIssue> issues;
  auto fresh = config::load_config(config_.source_path, &issues);
  std::optional<queue::RoutingTable> routing;
  // The API's destinations stay (ADR 005): the new file must not reuse one of their names.
  auto api = index_->list_destinations();
  config::Config running;
  if (fresh.ok() && !api.ok()) {
    issues.push_back({"api_destinations", api.error().message});
  } else if (fresh.ok()) {
    auto merged = merge_api_destinations(*fresh, *api, &issues);
    if (merged.ok()) running = std::move(merged).value();
  }
  if (fresh.ok() && issues.empty()) {
    auto compiled = queue::RoutingTable::compile(running, &issues);
    if (compiled.ok()) {
      routing = std::move(compiled).value();
    } else if (issues.empty()) {
      issues.push_back({"routes", compiled.error().message});
    }
  } else if (issues.empty()) {
    issues.push_back({"", fresh.error().message});
  }
  if (!fresh.ok() || !routing) {
    for (const auto& i : issues) outcome.issues.push_back({i.path, i.message});
    return outcome;
  }
  outcome.needs_restart = restart_only_changes(config_, *fresh);
  for (const auto& key : outcome.needs_restart) {
    log()->warn("event=reload_needs_restart key={} action=kept_running_value", key);
  }
  if (auto st = reload_keys_locked(*fresh); !st.ok()) {
    log()->error("event=encryption_keys_reload_failed reason=\"{}\" action=kept_running_keys",
                 st.error().message);
    return refuse("database", st.error().message);
  }
  // The steps that can still fail come first. The HTTPS certificate goes before the DICOM one:
  // when it is refused nothing has changed yet.
  if (http_ && config_.http.tls.enabled && fresh->http.tls.enabled) {
    if (auto st = http_->reload_tls(fresh->http.tls); !st.ok()) {
      log()->error("event=https_reload_failed reason=\"{}\" action=kept_running_certificate",
                   st.error().message);
      return refuse("http.tls", st.error().message);
    }
    config_.http.tls.cert_file = fresh->http.tls.cert_file;
    config_.http.tls.key_file = fresh->http.tls.key_file;
  }
  if (tls_) {
    if (auto st = tls_->reload(fresh->tls); !st.ok()) {
      const auto kept = tls_->current();
      log()->error("event=tls_reload_failed reason=\"{}\" kept_subject=\"{}\" kept_serial={}",
                   st.error().message, kept->certificate_subject(), kept->certificate_serial());
      return refuse("tls", st.error().message);
    }
    const auto snapshot = tls_->current();
    log()->info("event=tls_reloaded subject=\"{}\" serial={}", snapshot->certificate_subject(),
                snapshot->certificate_serial());
    for (const auto& w : snapshot->warnings()) log()->warn("event=tls_warning reason=\"{}\"", w);
  }
  ingest_->set_routing(std::make_shared<const queue::RoutingTable>(std::move(*routing)));
  if (auto st = forwarding_->reload(running); !st.ok()) {
    // Only after stop(): the gateway is shutting down.
    log()->warn("event=forwarding_reload_skipped reason=\"{}\"", st.error().message);
  }
  api_running_.assign(running.destinations.begin() + fresh->destinations.size(),
                      running.destinations.end());
  api_destinations_ = std::move(api).value();
  config_.tls = fresh->tls;
  config_.destinations = fresh->destinations;
  config_.routes = fresh->routes;
  config_.retry = fresh->retry;
  config_.forwarding = fresh->forwarding;
  log()->info("event=config_reloaded routes={} destinations={}", config_.routes.size(),
              config_.destinations.size());
  outcome.applied = true;
  outcome.destinations = config_.destinations.size() + api_running_.size();
  outcome.routes = config_.routes.size();
  return outcome;
}

core::Status App::reload_keys_locked(const config::Config& fresh) {
  GW_ASSIGN_OR_RETURN(auto keys, crypto::load_keyring(key_sources(fresh.database)));
  auto same = [](const std::optional<crypto::MasterKey>& a,
                 const std::optional<crypto::MasterKey>& b) {
    return a.has_value() == b.has_value() && (!a || a->check_value() == b->check_value());
  };
  const auto running = keyring();
  if (same(keys.current, running->current) && same(keys.previous, running->previous)) {
    return core::ok_status();
  }
  GW_ASSIGN_OR_RETURN(auto ring, index_->use_keyring(std::move(keys)));
  log()->info("event=encryption_keys_reloaded key_version={} previous_key_version={}",
              ring->current ? ring->current->version : 0,
              ring->previous ? ring->previous->version : 0);
  store_->set_keyring(ring);
  std::lock_guard lock(keyring_mu_);
  keyring_ = std::move(ring);
  return core::ok_status();
}

std::shared_ptr<const crypto::Keyring> App::keyring() const {
  std::lock_guard lock(keyring_mu_);
  return keyring_;
}

core::Result<std::unique_ptr<storage::ContentReader>> App::open_stored_file(
    const std::string& relative_path) {
  const auto keys = keyring();
  return storage::open_content(store_->absolute(relative_path), keys.get());
}

void App::audit_reload(const http::ReloadOutcome& outcome, const std::string& actor) {
  index::AuditEvent e;
  e.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  e.actor = actor;
  e.action = "config.reload";
  e.target = "config";
  e.outcome = outcome.applied ? "ok" : "failed";
  // Counts and key paths only: issue messages may quote values from the file.
  e.details = nlohmann::json{{"issues", outcome.issues.size()},
                             {"destinations", outcome.destinations},
                             {"routes", outcome.routes},
                             {"needs_restart", outcome.needs_restart}}
                  .dump();
  if (auto id = index_->append_audit(e); !id.ok()) {
    log()->error("event=audit_failed action=config.reload reason=\"{}\"", id.error().message);
  }
}

http::ReloadOutcome App::reload_config_file() {
  // On the calling (HTTP) thread: it may block, and a busy worker pool must not delay it.
  return apply_reload();
}

core::Status App::recover_after_crash() {
  // Runs before any listener opens: nothing else writes to storage/ now.
  GW_ASSIGN_OR_RETURN(auto candidates, store_->recovery_candidates());
  std::size_t removed = 0;
  for (const auto& path : candidates) {
    GW_ASSIGN_OR_RETURN(bool referenced, index_->references_file(path));
    if (referenced) continue;
    // Renamed into storage/ but never committed: its sender never heard "success".
    GW_RETURN_IF_ERROR(store_->remove(path));
    ++removed;
  }
  if (!candidates.empty()) {
    log()->info("event=crash_recovery files_checked={} unreferenced_removed={}", candidates.size(),
                removed);
  }
  return {};
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
  const auto deadline = std::chrono::steady_clock::now() + config_.limits.shutdown_grace;
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
  // Before the DICOM listeners: once a test (or systemd) sees the DICOM port, the API answers.
  if (http_) http_->start();
  for (auto& l : listeners_) {
    l->start();
    log()->info("event=listening listener={} port={} ae_title={}", l->name(), l->port(),
                config_.ae_title);
  }
  std::vector<std::jthread> threads;
  const auto n = io_threads();
  for (std::size_t i = 1; i < n; ++i) threads.emplace_back([this]() { io_.run(); });
  io_.run();
  threads.clear();  // joins
  // After the drain, so /status and /queue answered during it; before the workers, whose
  // index calls it shares.
  if (http_) http_->stop();
  workers_.join();
  // Summaries of associations the shutdown cut off, then every queued audit row.
  activity_audit_->flush_all();
  audit_writer_->stop();
  const auto& c = scp_->counters();
  log()->info("event=stopped associations={} stored={} failed={}", c.associations_accepted.load(),
              ingest_->counters().stored.load(), ingest_->counters().failed.load());
  return 0;
}

std::optional<http::TlsCertificateFiles> App::tls_certificate_files() const {
  if (!tls_) return std::nullopt;  // no TLS listener: nothing serves these files
  std::lock_guard lock(reload_mu_);
  return http::TlsCertificateFiles{config_.tls.cert_file.string(), config_.tls.key_file.string(),
                                   config_.tls.ca_file.string(), config_.acme.renew_before_days};
}

core::Status App::reload_tls_certificate() {
  if (!tls_) return core::make_error(core::ErrorCode::kNotFound, "no DICOM listener uses TLS");
  // Under the reload lock: a SIGHUP or API reload does not interleave with ours.
  std::lock_guard lock(reload_mu_);
  // HTTPS first when it serves the same files: if it refuses them, nothing has changed yet.
  auto same_file = [](const std::filesystem::path& a, const std::filesystem::path& b) {
    std::error_code ec;
    return a == b || std::filesystem::equivalent(a, b, ec);
  };
  if (http_ && config_.http.tls.enabled &&
      same_file(config_.http.tls.cert_file, config_.tls.cert_file)) {
    if (auto st = http_->reload_tls(config_.http.tls); !st.ok()) {
      log()->error("event=https_reload_failed reason=\"{}\" action=kept_running_certificate",
                   st.error().message);
      return st.error();
    }
  }
  if (auto st = tls_->reload(config_.tls); !st.ok()) {
    const auto kept = tls_->current();
    log()->error("event=tls_reload_failed reason=\"{}\" kept_subject=\"{}\" kept_serial={}",
                 st.error().message, kept->certificate_subject(), kept->certificate_serial());
    return st.error();
  }
  const auto snapshot = tls_->current();
  log()->info("event=tls_reloaded subject=\"{}\" serial={} cause=certificate_upload",
              snapshot->certificate_subject(), snapshot->certificate_serial());
  for (const auto& w : snapshot->warnings()) log()->warn("event=tls_warning reason=\"{}\"", w);
  return core::ok_status();
}

}  // namespace gw::app
