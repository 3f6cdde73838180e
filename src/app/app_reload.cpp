// App: reloading the configuration (SIGHUP, REST), the encryption keys and the DICOM TLS
// certificate.
#include "app/app_reload.h"

#include <nlohmann/json.hpp>

#include "app/api_destinations.h"
#include "app/app.h"
#include "app/encryption.h"
#include "core/log.h"
#include "http/server.h"
#include "queue/routing.h"
#include "tls/context.h"

namespace gw::app {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("app"); }

}  // namespace

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
  // The encryption keys reload (reload_keys_locked); the connection settings do not.
  if (running.database.url != fresh.database.url ||
      running.database.password_file != fresh.database.password_file ||
      running.database.pool_size != fresh.database.pool_size) {
    changed.push_back("database");
  }
  if (running.storage.fsync != fresh.storage.fsync ||
      running.storage.encrypt != fresh.storage.encrypt ||
      running.storage.duplicates != fresh.storage.duplicates ||
      running.storage.min_free_mb != fresh.storage.min_free_mb) {
    changed.push_back("storage");
  }
  const auto& a = running.audit.syslog;
  const auto& b = fresh.audit.syslog;
  // The exporter also keeps the tls: files and profile it falls back on (their contents are
  // read again for each connection; their paths and the profile only at start).
  const auto& t = running.tls;
  const auto& u = fresh.tls;
  const bool tls_fallback_changed =
      a.enabled && a.tls &&
      (t.ca_file != u.ca_file || t.cert_file != u.cert_file || t.key_file != u.key_file ||
       t.profile != u.profile || t.min_version != u.min_version || t.ciphers != u.ciphers);
  if (a.enabled != b.enabled || a.host != b.host || a.port != b.port || a.tls != b.tls ||
      a.ca_file != b.ca_file || a.cert_file != b.cert_file || a.key_file != b.key_file ||
      a.format != b.format || a.audit_source_id != b.audit_source_id ||
      a.enterprise_site_id != b.enterprise_site_id || tls_fallback_changed) {
    changed.push_back("audit");
  }
  if (running.http.enabled != fresh.http.enabled || running.http.bind != fresh.http.bind ||
      running.http.port != fresh.http.port || running.http.tls.enabled != fresh.http.tls.enabled ||
      running.http.cors_origins != fresh.http.cors_origins ||
      running.http.trusted_proxies != fresh.http.trusted_proxies) {
    changed.push_back("http");
  }
  if (running.acme.certbot != fresh.acme.certbot || running.acme.server != fresh.acme.server ||
      running.acme.renew_before_days != fresh.acme.renew_before_days) {
    changed.push_back("acme");
  }
  if (running.logging.level != fresh.logging.level) changed.push_back("logging");
  return changed;
}

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
  // Everything that can fail is tried before anything changes: the certificates and keys of
  // both listeners are loaded into throw-away contexts first, then the encryption keys.
  if (tls_) {
    if (auto probe = tls::make_server_context(fresh->tls); !probe.ok()) {
      log()->error("event=tls_reload_failed reason=\"{}\" action=kept_running_certificate",
                   probe.error().message);
      return refuse("tls", probe.error().message);
    }
  }
  if (http_ && config_.http.tls.enabled && fresh->http.tls.enabled) {
    auto probe = tls::make_server_context(http::https_tls_config(fresh->http.tls));
    if (!probe.ok()) {
      log()->error("event=https_reload_failed reason=\"{}\" action=kept_running_certificate",
                   probe.error().message);
      return refuse("http.tls", probe.error().message);
    }
  }
  if (auto st = reload_keys_locked(*fresh); !st.ok()) {
    log()->error("event=encryption_keys_reload_failed reason=\"{}\" action=kept_running_keys",
                 st.error().message);
    return refuse("database", st.error().message);
  }
  // The installs below repeat what was tried above; they fail only if a file changed between.
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
  if (scp_) {
    // Access rules, bindings and limits hold for associations that start from now on.
    auto policy = scp_policy_from(*fresh);
    policy.ae_title = config_.ae_title;  // restart only (above)
    scp_->set_policy(std::move(policy));
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
  config_.accept = fresh->accept;
  config_.peers = fresh->peers;
  config_.limits = fresh->limits;
  shutdown_grace_s_ = config_.limits.shutdown_grace.count();
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
  // The running storage.encrypt (a restart-only key) decides whether a key is required.
  GW_ASSIGN_OR_RETURN(auto keys, read_keys(fresh.database, config_.storage.encrypt));
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

void App::audit_lifecycle(const std::string& action, const std::string& details) {
  index::AuditEvent e;
  e.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  e.actor = "system";
  e.action = action;
  e.target = config_.node_id.empty() ? "gateway" : "node:" + config_.node_id;
  e.details = details;
  if (auto id = index_->append_audit(e); !id.ok()) {
    log()->error("event=audit_failed action={} reason=\"{}\"", action, id.error().message);
  }
}

http::ReloadOutcome App::reload_config_file() {
  // On the calling (HTTP) thread: it may block, and a busy worker pool must not delay it.
  return apply_reload();
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
