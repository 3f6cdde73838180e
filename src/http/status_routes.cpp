// GET /api/v1/status (JSON for people and the web UI) and GET /api/v1/metrics (Prometheus text
// format 0.0.4 for scrapers): the same snapshot of the running gateway (control.h) plus the
// queue depths from the index. Counters are since the process started.
#include <string_view>

#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

GatewaySnapshot snapshot_of(const ApiContext& ctx) {
  return ctx.control != nullptr ? ctx.control->snapshot() : GatewaySnapshot{};
}

const DestinationSnapshot* find_destination(const GatewaySnapshot& s, const std::string& name) {
  for (const auto& d : s.destinations) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

core::Result<Response> get_status(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  const GatewaySnapshot s = snapshot_of(ctx);
  auto depths = ctx.index.queue_depths();
  if (!depths.ok()) return index_error(depths.error());
  auto instances = ctx.index.count_instances();
  if (!instances.ok()) return index_error(instances.error());
  auto encryption = ctx.index.encryption_status();
  if (!encryption.ok()) return index_error(encryption.error());
  const auto now = ctx.now_ms();

  Json listeners = Json::array();
  for (const auto& l : s.listeners) {
    listeners.push_back({{"name", l.name}, {"bind", l.bind}, {"port", l.port}, {"tls", l.tls}});
  }
  Json tls = nullptr;
  if (s.tls_certificate) {
    const auto& c = *s.tls_certificate;
    tls = {{"subject", c.subject},
           {"serial", c.serial},
           {"not_after", c.not_after},
           {"days_until_expiry", c.days_until_expiry}};
  }
  // Every destination that is configured or still has rows.
  std::map<std::string, Json> queue;
  for (const auto& d : s.destinations) {
    queue[d.name] = {
        {"destination", d.name}, {"pending", 0}, {"in_flight", 0},
        {"delivered", 0},        {"dead", 0},    {"oldest_pending_created_at", nullptr}};
  }
  for (const auto& d : *depths) {
    queue[d.destination] = {
        {"destination", d.destination},
        {"pending", d.pending},
        {"in_flight", d.in_flight},
        {"delivered", d.delivered},
        {"dead", d.dead},
        {"oldest_pending_created_at", time_or_null(d.oldest_pending_created_at_ms)}};
  }
  Json queue_rows = Json::array();
  for (auto& [name, row] : queue) {
    const auto* d = find_destination(s, name);
    row["configured"] = d != nullptr;
    row["paused"] = d != nullptr && d->paused;
    row["pause_reason"] = d != nullptr ? d->pause_reason : "";
    row["consecutive_failures"] = d != nullptr ? d->consecutive_failures : 0;
    row["open_associations"] = d != nullptr ? d->open_associations : 0;
    queue_rows.push_back(std::move(row));
  }
  Json rows_by_version = Json::object();
  for (const auto& [version, rows] : encryption->rows_by_version) {
    rows_by_version[std::to_string(version)] = rows;
  }
  Json pgcrypto = nullptr;
  if (encryption->pgcrypto) pgcrypto = *encryption->pgcrypto;
  Json encryption_json = {{"fields",
                           {{"enabled", encryption->current_key_version != 0},
                            {"key_version", encryption->current_key_version},
                            {"registered_key_versions", encryption->registered_versions},
                            {"rows_by_key_version", rows_by_version},
                            {"pgcrypto", pgcrypto}}},
                          {"files", {{"enabled", s.encryption.files}}},
                          {"volume",
                           {{"device", s.encryption.volume_device},
                            {"dm_crypt", s.encryption.volume_dm_crypt},
                            {"crypt_type", s.encryption.volume_crypt_type}}}};
  return json_response(200,
                       {{"status", s.ingest.stopped         ? "failing"
                                   : s.ingest.below_reserve ? "degraded"
                                                            : "ok"},
                        {"version", s.version},
                        {"ae_title", s.ae_title},
                        {"started_at", time_or_null(s.started_at_ms)},
                        {"uptime_s", s.started_at_ms == 0 ? 0 : (now - s.started_at_ms) / 1000},
                        {"listeners", listeners},
                        {"tls_certificate", tls},
                        {"associations",
                         {{"active", s.scp.active_associations},
                          {"accepted", s.scp.associations_accepted},
                          {"rejected", s.scp.associations_rejected},
                          {"rejected_identity", s.scp.associations_rejected_identity},
                          {"aborted", s.scp.associations_aborted},
                          {"connections_refused", s.scp.connections_refused},
                          {"tls_handshake_failures", s.scp.tls_handshake_failures}}},
                        {"instances",
                         {{"indexed", *instances},
                          {"stored", s.ingest.stored},
                          {"duplicates", s.ingest.duplicates},
                          {"failed", s.ingest.failed},
                          {"bytes_stored", s.ingest.bytes_stored},
                          {"routed", s.ingest.routed}}},
                        {"queue", queue_rows},
                        {"storage",
                         {{"total_bytes", s.storage_total_bytes},
                          {"available_bytes", s.storage_available_bytes},
                          {"flush", s.ingest.shared_flush ? "shared" : "per_file"},
                          {"min_free_bytes", s.ingest.min_free_bytes},
                          {"below_reserve", s.ingest.below_reserve},
                          {"refused_low_space", s.ingest.refused_low_space},
                          {"ingest_stopped", s.ingest.stopped}}},
                        {"encryption", encryption_json}});
}

/// Prometheus text exposition format 0.0.4.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP dicom_gw_" + std::string(name) + " " + std::string(help) + "\n";
    out_ += "# TYPE dicom_gw_" + std::string(name) + " " + std::string(type) + "\n";
  }
  template <class T>
  void sample(std::string_view name, T value,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels = {}) {
    out_ += "dicom_gw_" + std::string(name);
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += std::string(k) + "=\"" + escape(v) + "\"";
      }
      out_ += '}';
    }
    out_ += ' ' + std::to_string(value) + '\n';
  }
  template <class T>
  void one(std::string_view name, std::string_view type, std::string_view help, T value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string take() { return std::move(out_); }

 private:
  static std::string escape(std::string_view v) {
    std::string out;
    for (char c : v) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    return out;
  }
  std::string out_;
};

core::Result<Response> get_metrics(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  const GatewaySnapshot s = snapshot_of(ctx);
  auto depths = ctx.index.queue_depths();
  if (!depths.ok()) return index_error(depths.error());
  Exposition m;
  m.one("start_time_seconds", "gauge", "When the gateway started (Unix seconds).",
        s.started_at_ms / 1000);
  m.one("associations_active", "gauge", "DICOM associations open now.", s.scp.active_associations);
  m.family("associations_total", "counter", "DICOM associations by outcome.");
  m.sample("associations_total", s.scp.associations_accepted, {{"outcome", "accepted"}});
  m.sample("associations_total", s.scp.associations_rejected, {{"outcome", "rejected"}});
  m.sample("associations_total", s.scp.associations_aborted, {{"outcome", "aborted"}});
  m.one("associations_rejected_identity_total", "counter",
        "Associations refused because the certificate does not match the calling AE title.",
        s.scp.associations_rejected_identity);
  m.one("connections_refused_total", "counter",
        "Connections closed at accept: max_associations + max_pending_connections were open.",
        s.scp.connections_refused);
  // Every label, zeros included, so a rate() over a reason that has not happened yet works.
  m.family("associations_rejected_total", "counter",
           "Associations refused (A-ASSOCIATE-RJ), by reason.");
  for (const auto& [reason, count] : s.scp.rejected_by_reason) {
    m.sample("associations_rejected_total", count, {{"reason", reason}});
  }
  m.family("tls_handshake_failures_total", "counter",
           "Failed TLS handshakes on the DICOM TLS listeners, by reason.");
  for (const auto& [reason, count] : s.scp.tls_failures_by_reason) {
    m.sample("tls_handshake_failures_total", count, {{"reason", reason}});
  }
  m.one("echoes_total", "counter", "C-ECHO requests answered.", s.scp.echoes);
  m.family("instances_received_total", "counter", "C-STORE requests by outcome.");
  m.sample("instances_received_total", s.scp.stores_ok, {{"outcome", "stored"}});
  m.sample("instances_received_total", s.scp.stores_failed, {{"outcome", "failed"}});
  m.one("instances_duplicate_total", "counter", "Instances received again (duplicates policy).",
        s.ingest.duplicates);
  m.one("received_bytes_total", "counter", "Data set bytes received.", s.scp.bytes_received);
  m.one("stored_bytes_total", "counter", "Bytes written to storage.", s.ingest.bytes_stored);
  m.one("instances_routed_total", "counter", "Outbox rows queued (instance x destination).",
        s.ingest.routed);

  m.family("instances_forwarded_total", "counter", "Instances delivered, per destination.");
  for (const auto& d : s.destinations) {
    m.sample("instances_forwarded_total", d.forwarded, {{"destination", d.name}});
  }
  m.family("forward_failures_total", "counter", "Failed delivery attempts, per destination.");
  for (const auto& d : s.destinations) {
    m.sample("forward_failures_total", d.failed, {{"destination", d.name}});
  }
  m.family("forward_dead_total", "counter", "Deliveries given up (dead-lettered).");
  for (const auto& d : s.destinations) {
    m.sample("forward_dead_total", d.dead, {{"destination", d.name}});
  }
  m.family("forwarded_bytes_total", "counter", "Bytes delivered, per destination.");
  for (const auto& d : s.destinations) {
    m.sample("forwarded_bytes_total", d.bytes, {{"destination", d.name}});
  }
  m.family("destination_paused", "gauge", "1 while a destination's circuit breaker is open.");
  for (const auto& d : s.destinations) {
    m.sample("destination_paused", d.paused ? 1 : 0, {{"destination", d.name}});
  }
  m.family("queue_depth", "gauge", "Outbox rows per destination and state.");
  for (const auto& d : *depths) {
    m.sample("queue_depth", d.pending, {{"destination", d.destination}, {"state", "pending"}});
    m.sample("queue_depth", d.in_flight, {{"destination", d.destination}, {"state", "in_flight"}});
    m.sample("queue_depth", d.dead, {{"destination", d.destination}, {"state", "dead"}});
  }
  if (s.tls_certificate) {
    m.one("tls_certificate_days_until_expiry", "gauge",
          "Days until the DICOM TLS certificate expires (negative: expired).",
          s.tls_certificate->days_until_expiry);
  }
  m.one("audit_dropped_total", "counter",
        "Audit rows of DICOM activity dropped because the writer's queue was full.",
        s.audit.dropped);
  m.one("audit_write_failures_total", "counter", "Audit rows of DICOM activity the index refused.",
        s.audit.failed);
  m.one("audit_queue_depth", "gauge", "Audit rows waiting for the background writer.",
        s.audit.queued);
  if (s.audit.syslog_enabled) {
    m.one("audit_syslog_connected", "gauge", "1 while connected to the audit.syslog collector.",
          s.audit.syslog_connected ? 1 : 0);
    m.one("audit_syslog_sent_total", "counter",
          "Audit rows the syslog collector acknowledged (TCP).", s.audit.syslog_sent);
    m.one("audit_syslog_connection_failures_total", "counter",
          "Failed connects, TLS handshakes and sends to the syslog collector.",
          s.audit.syslog_connection_failures);
    m.one("audit_syslog_backlog", "gauge", "Audit rows not yet sent to the syslog collector.",
          s.audit.syslog_backlog);
  }
  m.one("ingest_stopped", "gauge",
        "1 while a failed storage flush makes the gateway refuse every instance (restart it).",
        s.ingest.stopped ? 1 : 0);
  if (s.storage_total_bytes > 0) {
    m.one("storage_available_bytes", "gauge", "Free space for the data directory.",
          s.storage_available_bytes);
  }
  m.one("storage_below_reserve", "gauge",
        "1 while the data directory's free space is below storage.min_free_mb: new instances "
        "are refused (0xA700).",
        s.ingest.below_reserve ? 1 : 0);
  m.one("instances_refused_low_space_total", "counter",
        "Instances refused because free space was below storage.min_free_mb.",
        s.ingest.refused_low_space);
  Response r;
  r.status = 200;
  r.body = m.take();
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

}  // namespace

std::vector<Route> status_routes(ApiContext& ctx) {
  return {
      {"GET", "/api/v1/status", index::Role::kViewer, bind_handler(ctx, get_status),
       "Listeners, TLS certificate, counters, queue per destination, storage"},
      {"GET", "/api/v1/metrics", index::Role::kViewer, bind_handler(ctx, get_metrics),
       "Prometheus metrics (text format 0.0.4)"},
  };
}

}  // namespace gw::http
