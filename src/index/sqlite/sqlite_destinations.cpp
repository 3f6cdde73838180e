// API destinations of SqliteIndex (the schema is migration 6 in migrations.cpp). Every public
// method holds mu_ throughout, like the rest of the class. Every write is one BEGIN IMMEDIATE
// transaction holding the change, its outbox consequences and its audit row.
#include <optional>
#include <string>
#include <vector>

#include "index/sqlite/sqlite_index.h"
#include "index/sqlite/sqlite_statement.h"
#include "index/validation.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

// Columns of ApiDestination, in the order read_destination() expects.
constexpr const char* kColumns =
    "name, ae_title, host, port, calling_ae_title, tls_enabled, tls_cert_path, tls_key_path, "
    "tls_ca_path, verify_hostname, max_associations, tls_profile, retry_max_attempts, "
    "retry_max_age_s, retry_initial_backoff_s, retry_max_backoff_s, match, created_at_ms, "
    "created_by, updated_at_ms, updated_by, max_async_operations";

std::optional<std::int64_t> optional_int(const auto& s, int column) {
  if (s.is_null(column)) return std::nullopt;
  return s.int64(column);
}

ApiDestination read_destination(const auto& s) {
  ApiDestination d;
  int c = 0;
  d.name = s.text(c++);
  d.ae_title = s.text(c++);
  d.host = s.text(c++);
  d.port = s.int64(c++);
  d.calling_ae_title = s.text(c++);
  d.tls_enabled = s.int64(c++) != 0;
  d.tls_cert_path = s.text(c++);
  d.tls_key_path = s.text(c++);
  d.tls_ca_path = s.text(c++);
  d.verify_hostname = s.int64(c++) != 0;
  d.max_associations = s.int64(c++);
  d.tls_profile = s.text(c++);
  d.retry_max_attempts = optional_int(s, c++);
  d.retry_max_age_s = optional_int(s, c++);
  d.retry_initial_backoff_s = optional_int(s, c++);
  d.retry_max_backoff_s = optional_int(s, c++);
  d.match = s.text(c++);
  d.created_at_ms = s.int64(c++);
  d.created_by = s.text(c++);
  d.updated_at_ms = s.int64(c++);
  d.updated_by = s.text(c++);
  d.max_async_operations = s.int64(c++);
  return d;
}

/// Binds the fields both INSERT and UPDATE write, as ?1 (name) … ?17 (match) and ?18
/// (max_async_operations); unbound optional values stay NULL.
void bind_fields(auto& s, const ApiDestination& d) {
  s.bind(1, d.name).bind(2, d.ae_title).bind(3, d.host).bind(4, d.port);
  s.bind(5, d.calling_ae_title).bind(6, std::int64_t{d.tls_enabled ? 1 : 0});
  s.bind(7, d.tls_cert_path).bind(8, d.tls_key_path).bind(9, d.tls_ca_path);
  s.bind(10, std::int64_t{d.verify_hostname ? 1 : 0}).bind(11, d.max_associations);
  s.bind(12, d.tls_profile);
  if (d.retry_max_attempts) s.bind(13, *d.retry_max_attempts);
  if (d.retry_max_age_s) s.bind(14, *d.retry_max_age_s);
  if (d.retry_initial_backoff_s) s.bind(15, *d.retry_initial_backoff_s);
  if (d.retry_max_backoff_s) s.bind(16, *d.retry_max_backoff_s);
  s.bind(17, d.match).bind(18, d.max_async_operations);
}

}  // namespace

Result<std::int64_t> SqliteIndex::create_destination(const ApiDestination& d,
                                                     const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_destination(d));
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::int64_t id = 0;
  {
    // DO NOTHING + changes(): a taken name without parsing SQLite's error text.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO api_destinations (name, ae_title, host, port, calling_ae_title, tls_enabled,
  tls_cert_path, tls_key_path, tls_ca_path, verify_hostname, max_associations, tls_profile,
  retry_max_attempts, retry_max_age_s, retry_initial_backoff_s, retry_max_backoff_s, match,
  max_async_operations, created_at_ms, created_by, updated_at_ms, updated_by)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20, ?21, ?22)
ON CONFLICT (name) DO NOTHING
)sql"));
    bind_fields(s, d);
    s.bind(19, d.created_at_ms).bind(20, d.created_by).bind(21, d.updated_at_ms);
    s.bind(22, d.updated_by);
    GW_RETURN_IF_ERROR(s.run("create destination"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kAlreadyExists, "destination `" + d.name + "` already exists");
    }
    id = s.last_insert_rowid();
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return id;
}

Status SqliteIndex::update_destination(const ApiDestination& d, const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_destination(d));
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    // The name is the key (compared without regard to case); its stored spelling stays.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE api_destinations SET ae_title = ?2, host = ?3, port = ?4, calling_ae_title = ?5,
  tls_enabled = ?6, tls_cert_path = ?7, tls_key_path = ?8, tls_ca_path = ?9,
  verify_hostname = ?10, max_associations = ?11, tls_profile = ?12, retry_max_attempts = ?13,
  retry_max_age_s = ?14, retry_initial_backoff_s = ?15, retry_max_backoff_s = ?16, match = ?17,
  max_async_operations = ?18, updated_at_ms = ?19, updated_by = ?20
WHERE name = ?1
)sql"));
    bind_fields(s, d);
    s.bind(19, d.updated_at_ms).bind(20, d.updated_by);
    GW_RETURN_IF_ERROR(s.run("update destination"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kNotFound, "no API destination `" + d.name + "`");
    }
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  return tx.commit();
}

Result<std::int64_t> SqliteIndex::delete_destination(const std::string& name, bool force,
                                                     std::int64_t now_ms, const AuditEvent* audit) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::string stored_name;  // outbox rows carry the exact spelling
  {
    GW_ASSIGN_OR_RETURN(auto s,
                        statement_locked("SELECT name FROM api_destinations WHERE name = ?1"));
    s.bind(1, name);
    GW_ASSIGN_OR_RETURN(bool row, s.step("find destination"));
    if (!row) return make_error(ErrorCode::kNotFound, "no API destination `" + name + "`");
    stored_name = s.text(0);
  }
  std::int64_t queued = 0;
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT count(*) FROM outbox WHERE destination = ?1 AND state IN ('pending', 'in_flight')
)sql"));
    s.bind(1, stored_name);
    GW_ASSIGN_OR_RETURN(bool row, s.step("count queued rows"));
    if (row) queued = s.int64(0);
  }
  GW_RETURN_IF_ERROR(check_destination_deletable(stored_name, queued, force));
  if (queued > 0) {
    // An in-flight row's forwarder then finds its lease gone (kConflict) and moves on.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = 'dead', last_error = 'destination deleted', updated_at_ms = ?2,
                  lease_owner = '', lease_expires_at_ms = 0
WHERE destination = ?1 AND state IN ('pending', 'in_flight')
)sql"));
    s.bind(1, stored_name).bind(2, now_ms);
    GW_RETURN_IF_ERROR(s.run("dead-letter queued rows"));
    queued = s.changes();
  }
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked("DELETE FROM api_destinations WHERE name = ?1"));
    s.bind(1, stored_name);
    GW_RETURN_IF_ERROR(s.run("delete destination"));
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return queued;
}

Result<std::optional<ApiDestination>> SqliteIndex::find_destination(const std::string& name) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kColumns +
                                               " FROM api_destinations WHERE name = ?1"));
  s.bind(1, name);
  GW_ASSIGN_OR_RETURN(bool row, s.step("find destination"));
  if (!row) return std::optional<ApiDestination>();
  return std::optional<ApiDestination>(read_destination(s));
}

Result<std::vector<ApiDestination>> SqliteIndex::list_destinations() {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kColumns +
                                               " FROM api_destinations ORDER BY name"));
  std::vector<ApiDestination> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list destinations"));
    if (!row) break;
    out.push_back(read_destination(s));
  }
  return out;
}

}  // namespace gw::index
