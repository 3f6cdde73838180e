// API destinations of PostgresIndex (schema: migration 2 in migrations.cpp). Every write is one
// transaction holding the change, its outbox consequences and its audit row.
#include <optional>
#include <string>
#include <vector>

#include "index/postgres/pg_connection.h"
#include "index/postgres/pg_pool.h"
#include "index/postgres/postgres_index.h"
#include "index/validation.h"

namespace gw::index {

using core::ErrorCode;
using core::make_error;
using pg::Params;
using pg::Rows;

namespace {

// Columns of ApiDestination, in the order read_destination() expects.
constexpr const char* kColumns =
    "name, ae_title, host, port, calling_ae_title, tls_enabled, tls_cert_path, tls_key_path, "
    "tls_ca_path, verify_hostname, max_associations, tls_profile, retry_max_attempts, "
    "retry_max_age_s, retry_initial_backoff_s, retry_max_backoff_s, match, created_at_ms, "
    "created_by, updated_at_ms, updated_by, max_async_operations";

std::optional<std::int64_t> optional_int(const Rows& rows, int row, int col) {
  if (rows.is_null(row, col)) return std::nullopt;
  return rows.int64(row, col);
}

ApiDestination read_destination(const Rows& rows, int row) {
  ApiDestination d;
  int c = 0;
  d.name = rows.text(row, c++);
  d.ae_title = rows.text(row, c++);
  d.host = rows.text(row, c++);
  d.port = rows.int64(row, c++);
  d.calling_ae_title = rows.text(row, c++);
  d.tls_enabled = rows.boolean(row, c++);
  d.tls_cert_path = rows.text(row, c++);
  d.tls_key_path = rows.text(row, c++);
  d.tls_ca_path = rows.text(row, c++);
  d.verify_hostname = rows.boolean(row, c++);
  d.max_associations = rows.int64(row, c++);
  d.tls_profile = rows.text(row, c++);
  d.retry_max_attempts = optional_int(rows, row, c++);
  d.retry_max_age_s = optional_int(rows, row, c++);
  d.retry_initial_backoff_s = optional_int(rows, row, c++);
  d.retry_max_backoff_s = optional_int(rows, row, c++);
  d.match = rows.text(row, c++);
  d.created_at_ms = rows.int64(row, c++);
  d.created_by = rows.text(row, c++);
  d.updated_at_ms = rows.int64(row, c++);
  d.updated_by = rows.text(row, c++);
  d.max_async_operations = rows.int64(row, c++);
  return d;
}

/// The fields both INSERT and UPDATE write, as $1 (name) … $17 (match) and $18
/// (max_async_operations).
Params fields(const ApiDestination& d) {
  Params p;
  p.add(d.name).add(d.ae_title).add(d.host).add(d.port).add(d.calling_ae_title);
  p.add(d.tls_enabled).add(d.tls_cert_path).add(d.tls_key_path).add(d.tls_ca_path);
  p.add(d.verify_hostname).add(d.max_associations).add(d.tls_profile);
  p.add(d.retry_max_attempts).add(d.retry_max_age_s).add(d.retry_initial_backoff_s);
  p.add(d.retry_max_backoff_s).add(d.match).add(d.max_async_operations);
  return p;
}

}  // namespace

Result<std::int64_t> PostgresIndex::create_destination(const ApiDestination& d,
                                                       const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_destination(d));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  Params params = fields(d);
  params.add(d.created_at_ms).add(d.created_by).add(d.updated_at_ms).add(d.updated_by);
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
INSERT INTO api_destinations (name, ae_title, host, port, calling_ae_title, tls_enabled,
  tls_cert_path, tls_key_path, tls_ca_path, verify_hostname, max_associations, tls_profile,
  retry_max_attempts, retry_max_age_s, retry_initial_backoff_s, retry_max_backoff_s, match,
  max_async_operations, created_at_ms, created_by, updated_at_ms, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::bigint, $14::bigint,
        $15::bigint, $16::bigint, $17, $18, $19, $20, $21, $22)
ON CONFLICT ((lower(name))) DO NOTHING
RETURNING id
)sql",
                                            params));
  if (rows.empty()) {
    return make_error(ErrorCode::kAlreadyExists, "destination `" + d.name + "` already exists");
  }
  const std::int64_t id = rows.int64(0, 0);
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return id;
}

Status PostgresIndex::update_destination(const ApiDestination& d, const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_destination(d));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  Params params = fields(d);
  params.add(d.updated_at_ms).add(d.updated_by);
  // The name is the key (compared without regard to case); its stored spelling stays.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
UPDATE api_destinations SET ae_title = $2, host = $3, port = $4, calling_ae_title = $5,
  tls_enabled = $6, tls_cert_path = $7, tls_key_path = $8, tls_ca_path = $9,
  verify_hostname = $10, max_associations = $11, tls_profile = $12,
  retry_max_attempts = $13::bigint, retry_max_age_s = $14::bigint,
  retry_initial_backoff_s = $15::bigint, retry_max_backoff_s = $16::bigint, match = $17,
  max_async_operations = $18, updated_at_ms = $19, updated_by = $20
WHERE lower(name) = lower($1)
)sql",
                                            params));
  if (rows.affected() != 1) {
    return make_error(ErrorCode::kNotFound, "no API destination `" + d.name + "`");
  }
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  return tx.commit();
}

Result<std::int64_t> PostgresIndex::delete_destination(const std::string& name, bool force,
                                                       std::int64_t now_ms,
                                                       const AuditEvent* audit) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  std::string stored_name;  // outbox rows carry the exact spelling
  {
    GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT name FROM api_destinations WHERE "
                                              "lower(name) = lower($1) FOR UPDATE",
                                              Params().add(name)));
    if (rows.empty()) return make_error(ErrorCode::kNotFound, "no API destination `" + name + "`");
    stored_name = rows.text(0, 0);
  }
  std::int64_t queued = 0;
  {
    GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
SELECT count(*) FROM outbox WHERE destination = $1 AND state IN ('pending', 'in_flight')
)sql",
                                              Params().add(stored_name)));
    queued = rows.int64(0, 0);
  }
  GW_RETURN_IF_ERROR(check_destination_deletable(stored_name, queued, force));
  if (queued > 0) {
    // An in-flight row's forwarder then finds its lease gone (kConflict) and moves on.
    GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
UPDATE outbox SET state = 'dead', last_error = 'destination deleted', updated_at_ms = $2,
                  lease_owner = '', lease_expires_at_ms = 0
WHERE destination = $1 AND state IN ('pending', 'in_flight')
)sql",
                                              Params().add(stored_name).add(now_ms)));
    queued = rows.affected();
  }
  GW_RETURN_IF_ERROR(
      conn->exec("DELETE FROM api_destinations WHERE name = $1", Params().add(stored_name)));
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return queued;
}

Result<std::optional<ApiDestination>> PostgresIndex::find_destination(const std::string& name) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string("SELECT ") + kColumns +
                                                " FROM api_destinations WHERE lower(name) = "
                                                "lower($1)",
                                            Params().add(name)));
  if (rows.empty()) return std::optional<ApiDestination>();
  return std::optional<ApiDestination>(read_destination(rows, 0));
}

Result<std::vector<ApiDestination>> PostgresIndex::list_destinations() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string("SELECT ") + kColumns +
                                            " FROM api_destinations ORDER BY lower(name) "
                                            "COLLATE \"C\", id"));
  std::vector<ApiDestination> out;
  for (int row = 0; row < rows.size(); ++row) out.push_back(read_destination(rows, row));
  return out;
}

}  // namespace gw::index
