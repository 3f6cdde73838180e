// Outbox operations of PostgresIndex (schema: migration 1 in migrations.cpp). Several nodes may
// share the table: a claim locks the due rows it takes with FOR UPDATE SKIP LOCKED (another
// node's concurrent claim skips them instead of waiting or taking them too) and leases them in
// the same statement; every later update names the lease owner, so a node whose lease expired
// and was taken over changes nothing.
#include <algorithm>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "index/postgres/pg_connection.h"
#include "index/postgres/pg_pool.h"
#include "index/postgres/pg_sql.h"
#include "index/postgres/postgres_index.h"
#include "index/validation.h"

namespace gw::index {

using core::ErrorCode;
using core::make_error;
using pg::Params;
using pg::PgConnection;
using pg::Rows;

namespace {

// Columns of OutboxItem, in the order read_item() expects, from an outbox row `o` joined with
// its instance (an overwritten instance is forwarded from its current file).
constexpr const char* kItemColumns = R"sql(
       o.id, o.destination, i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid,
       st.study_instance_uid, i.storage_path, i.size_bytes, i.digest, o.state, o.attempts,
       o.created_at_ms, o.retried_at_ms, o.next_attempt_at_ms, o.updated_at_ms, o.lease_owner,
       o.lease_expires_at_ms, o.last_status, o.last_error, o.warning
)sql";
constexpr const char* kItemJoins = R"sql(
JOIN instances i ON i.id = o.instance_pk
JOIN series se ON se.id = i.series_pk
JOIN studies st ON st.id = se.study_pk
)sql";

Result<OutboxItem> read_item(const Rows& rows, int row) {
  OutboxItem item;
  int c = 0;
  item.id = rows.int64(row, c++);
  item.destination = rows.text(row, c++);
  item.sop_instance_uid = rows.text(row, c++);
  item.sop_class_uid = rows.text(row, c++);
  item.transfer_syntax_uid = rows.text(row, c++);
  item.study_instance_uid = rows.text(row, c++);
  item.storage_path = rows.text(row, c++);
  item.size_bytes = rows.int64(row, c++);
  item.digest = rows.text(row, c++);
  GW_ASSIGN_OR_RETURN(item.state, stored_outbox_state(item.id, rows.text(row, c++)));
  item.attempts = static_cast<int>(rows.int64(row, c++));
  item.created_at_ms = rows.int64(row, c++);
  item.retried_at_ms = rows.int64(row, c++);
  item.next_attempt_at_ms = rows.int64(row, c++);
  item.updated_at_ms = rows.int64(row, c++);
  item.lease_owner = rows.text(row, c++);
  item.lease_expires_at_ms = rows.int64(row, c++);
  item.last_status = static_cast<int>(rows.int64(row, c++));
  item.last_error = rows.text(row, c++);
  item.warning = rows.boolean(row, c++);
  return item;
}

Result<std::vector<OutboxItem>> read_items(const Rows& rows) {
  std::vector<OutboxItem> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int row = 0; row < rows.size(); ++row) {
    GW_ASSIGN_OR_RETURN(auto item, read_item(rows, row));
    out.push_back(std::move(item));
  }
  return out;
}

constexpr const char* kRetrySet =
    "UPDATE outbox SET state = 'pending', next_attempt_at_ms = $2, attempts = 0, "
    "updated_at_ms = $2, retried_at_ms = $2 ";

/// retry_outbox's row: not in flight, or in flight under a lease that has expired (nobody is
/// sending it: a crash left it, and its destination may be gone, so no forwarder ever claims
/// it again). Its lease goes with it: a late result of the old owner is refused.
constexpr const char* kRetryWhere =
    ", lease_owner = '', lease_expires_at_ms = 0 "
    "WHERE id = $1 AND (state <> 'in_flight' OR lease_expires_at_ms <= $2)";

/// A bigint[] literal of the ids ("{1,2,3}"): one parameter for any number of ids.
std::string array_of(std::span<const std::int64_t> ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "}";
}

}  // namespace

Status PostgresIndex::enqueue_outbox(PgConnection& conn, std::int64_t instance_pk,
                                     const InstanceRecord& r, bool replaced_file) {
  for (const auto& destination : r.destinations) {
    GW_RETURN_IF_ERROR(check_outbox_destination(destination));
    // NOT EXISTS also drops a destination named twice in one record. An in-flight row holds
    // back a new one unless the instance's file was just replaced ($4): that row is sending
    // the old version.
    GW_RETURN_IF_ERROR(conn.exec(
        R"sql(
INSERT INTO outbox (instance_pk, destination, state, created_at_ms, next_attempt_at_ms,
                    updated_at_ms)
SELECT $1::bigint, $2::text, 'pending', $3::bigint, $3::bigint, $3::bigint
WHERE NOT EXISTS (SELECT 1 FROM outbox
                  WHERE instance_pk = $1::bigint AND destination = $2::text
                    AND (state = 'pending' OR (state = 'in_flight' AND NOT $4::boolean)))
)sql",
        Params().add(instance_pk).add(destination).add(r.received_at_ms).add(replaced_file)));
  }
  return core::ok_status();
}

Result<std::vector<OutboxItem>> PostgresIndex::claim_outbox(const std::string& destination,
                                                            std::size_t max_items,
                                                            const std::string& owner,
                                                            std::int64_t now_ms,
                                                            std::int64_t lease_ms) {
  GW_RETURN_IF_ERROR(check_lease(owner, lease_ms, "claim outbox"));
  if (max_items == 0) return std::vector<OutboxItem>{};
  const auto limit = static_cast<std::int64_t>(
      std::min<std::size_t>(max_items, std::numeric_limits<std::int64_t>::max()));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // One statement, so one transaction: lock up to `limit` due rows of each kind (pending and
  // due; in flight with an expired lease), skipping rows another claim holds, keep the oldest
  // `limit` of them, lease them, and return them joined with their instances. A row another
  // node claimed and committed meanwhile is re-checked by the lock and no longer matches.
  // MATERIALIZED: each locking scan runs exactly once.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string(R"sql(
WITH pending AS MATERIALIZED (
  SELECT id FROM outbox
  WHERE destination = $1 AND state = 'pending' AND next_attempt_at_ms <= $2
  ORDER BY id LIMIT $5
  FOR UPDATE SKIP LOCKED
), expired AS MATERIALIZED (
  SELECT id FROM outbox
  WHERE destination = $1 AND state = 'in_flight' AND lease_expires_at_ms <= $2
  ORDER BY id LIMIT $5
  FOR UPDATE SKIP LOCKED
), picked AS (
  SELECT id FROM pending UNION ALL SELECT id FROM expired ORDER BY id LIMIT $5
), o AS (
  UPDATE outbox SET state = 'in_flight', attempts = outbox.attempts + 1, lease_owner = $3,
                    lease_expires_at_ms = $4, updated_at_ms = $2
  FROM picked WHERE outbox.id = picked.id
  RETURNING outbox.*
)
SELECT )sql") + kItemColumns + " FROM o" + kItemJoins +
                                                " ORDER BY o.id",
                                            Params()
                                                .add(destination)
                                                .add(now_ms)
                                                .add(owner)
                                                .add(pg::saturating_add(now_ms, lease_ms))
                                                .add(limit)));
  return read_items(rows);
}

Status PostgresIndex::renew_outbox_leases(const std::string& owner,
                                          std::span<const std::int64_t> ids, std::int64_t now_ms,
                                          std::int64_t lease_ms) {
  GW_RETURN_IF_ERROR(check_lease(owner, lease_ms, "renew outbox leases"));
  if (ids.empty()) return core::ok_status();
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // A primary-key lookup per id.
  GW_RETURN_IF_ERROR(
      conn->exec(R"sql(
UPDATE outbox SET lease_expires_at_ms = $2
WHERE id = ANY($3::bigint[]) AND state = 'in_flight' AND lease_owner = $1
)sql",
                 Params().add(owner).add(pg::saturating_add(now_ms, lease_ms)).add(array_of(ids))));
  return core::ok_status();
}

Status PostgresIndex::finish_outbox(std::int64_t id, const std::string& owner, OutboxState to,
                                    std::optional<std::int64_t> next_attempt_at_ms,
                                    const OutboxResult& result, std::int64_t now_ms) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  return finish_outbox_on(*conn, id, owner, to, next_attempt_at_ms, result, now_ms);
}

Status PostgresIndex::finish_outbox_on(PgConnection& conn, std::int64_t id,
                                       const std::string& owner, OutboxState to,
                                       std::optional<std::int64_t> next_attempt_at_ms,
                                       const OutboxResult& result, std::int64_t now_ms) {
  // $4 NULL: the row keeps its next_attempt_at_ms.
  GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
UPDATE outbox SET state = $3, next_attempt_at_ms = coalesce($4::bigint, next_attempt_at_ms),
                  last_status = $5, last_error = $6, warning = $7, updated_at_ms = $8,
                  lease_owner = '', lease_expires_at_ms = 0
WHERE id = $1 AND state = 'in_flight' AND lease_owner = $2
)sql",
                                           Params()
                                               .add(id)
                                               .add(owner)
                                               .add(to_string(to))
                                               .add(next_attempt_at_ms)
                                               .add(result.status)
                                               .add(result.comment)
                                               .add(result.warning)
                                               .add(now_ms)));
  if (rows.affected() == 1) return core::ok_status();
  return outbox_unchanged(conn, id, "lease lost: no longer held by " + owner);
}

std::vector<Status> PostgresIndex::finish_outbox_rows(std::span<const OutboxFinish> rows,
                                                      const std::string& owner,
                                                      std::int64_t now_ms) {
  auto conn = pool_->acquire();
  if (!conn.ok()) return std::vector<Status>(rows.size(), Status(conn.error()));
  pg::Transaction tx(**conn);
  auto begun = tx.begin();
  return finish_each_in_transaction(
      rows, std::move(begun),
      [&](const OutboxFinish& r) -> Status {
        auto st =
            finish_outbox_on(**conn, r.id, owner, r.to, r.next_attempt_at_ms, r.result, now_ms);
        // A failed statement (a deadlock is kConflict too) aborted the whole transaction: not
        // one row's answer but the batch's, whatever its code (kDatabase ends the batch).
        if (!st.ok() && (*conn)->transaction_failed()) {
          return make_error(ErrorCode::kDatabase,
                            st.error().message + "; the batch's transaction was aborted");
        }
        return st;
      },
      [&] { return tx.commit(); });
}

Status PostgresIndex::complete_outbox(std::int64_t id, const std::string& owner,
                                      const OutboxResult& result, std::int64_t now_ms) {
  return finish_outbox(id, owner, OutboxState::kDelivered, std::nullopt, result, now_ms);
}

Status PostgresIndex::reschedule_outbox(std::int64_t id, const std::string& owner,
                                        std::int64_t next_attempt_at_ms, const OutboxResult& result,
                                        std::int64_t now_ms) {
  return finish_outbox(id, owner, OutboxState::kPending, next_attempt_at_ms, result, now_ms);
}

Status PostgresIndex::fail_outbox(std::int64_t id, const std::string& owner,
                                  const OutboxResult& result, std::int64_t now_ms) {
  return finish_outbox(id, owner, OutboxState::kDead, std::nullopt, result, now_ms);
}

Status PostgresIndex::release_outbox_leases(const std::string& owner, std::int64_t now_ms) {
  GW_RETURN_IF_ERROR(check_lease_owner(owner, "release outbox leases"));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_RETURN_IF_ERROR(conn->exec(R"sql(
UPDATE outbox SET state = 'pending', next_attempt_at_ms = $2,
                  attempts = greatest(attempts - 1, 0),
                  lease_owner = '', lease_expires_at_ms = 0, updated_at_ms = $2
WHERE state = 'in_flight' AND lease_owner = $1
)sql",
                                Params().add(owner).add(now_ms)));
  return core::ok_status();
}

Status PostgresIndex::retry_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  GW_ASSIGN_OR_RETURN(
      auto rows, conn->exec(std::string(kRetrySet) + kRetryWhere, Params().add(id).add(now_ms)));
  if (rows.affected() != 1) {
    return outbox_unchanged(*conn, id, "in flight: an attempt is under way");
  }
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  return tx.commit();
}

Result<std::int64_t> PostgresIndex::retry_dead_outbox(const std::string& destination,
                                                      std::int64_t now_ms,
                                                      const AuditEvent* audit) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  // Two statements rather than "$1 = '' OR destination = $1", which no index serves.
  GW_ASSIGN_OR_RETURN(
      auto rows,
      destination.empty()
          // Without a destination, rows dead because theirs was deleted stay dead: nobody
          // would send them (retry them by destination, after creating it again).
          ? conn->exec(std::string(kRetrySet) +
                           "WHERE state = 'dead' AND $1::text = '' AND last_error IS DISTINCT "
                           "FROM 'destination deleted'",
                       Params().add("").add(now_ms))
          : conn->exec(std::string(kRetrySet) + "WHERE destination = $1 AND state = 'dead'",
                       Params().add(destination).add(now_ms)));
  const std::int64_t retried = rows.affected();
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return retried;
}

Status PostgresIndex::delete_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  // An in-flight row whose lease expired is sent by nobody (see retry_outbox).
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec("DELETE FROM outbox WHERE id = $1 AND (state <> "
                                            "'in_flight' OR lease_expires_at_ms <= $2)",
                                            Params().add(id).add(now_ms)));
  if (rows.affected() != 1) {
    return outbox_unchanged(*conn, id, "in flight: an attempt is under way");
  }
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  return tx.commit();
}

core::Error PostgresIndex::outbox_unchanged(PgConnection& conn, std::int64_t id,
                                            const std::string& conflict) {
  auto found = conn.exec("SELECT 1 FROM outbox WHERE id = $1", Params().add(id));
  if (!found.ok()) return found.error();
  return outbox_unchanged_error(id, !found->empty(), conflict);
}

Result<std::optional<OutboxItem>> PostgresIndex::find_outbox(std::int64_t id) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string("SELECT ") + kItemColumns +
                                                " FROM outbox o" + kItemJoins + "WHERE o.id = $1",
                                            Params().add(id)));
  if (rows.empty()) return std::optional<OutboxItem>();
  GW_ASSIGN_OR_RETURN(auto item, read_item(rows, 0));
  return std::optional<OutboxItem>(std::move(item));
}

Result<std::vector<OutboxItem>> PostgresIndex::list_outbox(const OutboxQuery& q) {
  GW_RETURN_IF_ERROR(check_page(q.limit, q.offset, "list outbox"));
  Params params;
  std::string sql =
      std::string("SELECT ") + kItemColumns + " FROM outbox o" + kItemJoins + "WHERE true";
  if (!q.destination.empty()) sql += " AND o.destination = " + params.placeholder(q.destination);
  if (q.state) sql += " AND o.state = " + params.placeholder(to_string(*q.state));
  sql += " ORDER BY o.id LIMIT " + params.placeholder(q.limit);
  sql += " OFFSET " + params.placeholder(q.offset);
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(sql, params));
  return read_items(rows);
}

Result<std::vector<QueueDepth>> PostgresIndex::queue_depths() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // created_at_ms is read for the first row of each group only, which (ids growing with time)
  // is the oldest.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
SELECT g.destination, g.state, g.n, (SELECT created_at_ms FROM outbox WHERE id = g.first_id)
FROM (SELECT destination, state, count(*) AS n, min(id) AS first_id
      FROM outbox GROUP BY destination, state) g
ORDER BY g.destination
)sql"));
  std::vector<QueueDepth> out;
  std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
  for (int row = 0; row < rows.size(); ++row) {
    std::string destination = rows.text(row, 0);
    if (out.empty() || out.back().destination != destination) {
      out.emplace_back().destination = std::move(destination);
      oldest = std::numeric_limits<std::int64_t>::max();
    }
    QueueDepth& d = out.back();
    const std::int64_t n = rows.int64(row, 2);
    const std::int64_t first_created = rows.int64(row, 3);
    const auto state = outbox_state_from_string(rows.text(row, 1));
    if (!state) return make_error(ErrorCode::kDatabase, "queue depths: unknown state");
    switch (*state) {
      case OutboxState::kPending:
        d.pending = n;
        break;
      case OutboxState::kInFlight:
        d.in_flight = n;
        break;
      case OutboxState::kDelivered:
        d.delivered = n;
        continue;
      case OutboxState::kDead:
        d.dead = n;
        continue;
    }
    oldest = std::min(oldest, first_created);
    d.oldest_pending_created_at_ms = oldest;
  }
  return out;
}

Result<std::optional<std::int64_t>> PostgresIndex::newer_outbox_row(std::int64_t id) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // outbox_instance serves the later rows of the same instance and destination.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
SELECT max(n.id) FROM outbox o
JOIN outbox n ON n.instance_pk = o.instance_pk AND n.destination = o.destination AND n.id > o.id
  AND n.created_at_ms >= greatest(o.created_at_ms, o.retried_at_ms)
WHERE o.id = $1
)sql",
                                            Params().add(id)));
  if (rows.empty() || rows.is_null(0, 0)) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(rows.int64(0, 0));
}

Result<std::int64_t> PostgresIndex::dead_letter_deleted_outbox(
    std::span<const std::string> destinations, std::int64_t now_ms) {
  if (destinations.empty()) return std::int64_t{0};
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  std::int64_t changed = 0;
  for (const auto& destination : destinations) {
    // The words of a forced delete_destination (postgres_destinations.cpp); outbox_queue serves
    // (destination, state). Not when the name exists again (re-created here or by another node
    // since the caller looked): its rows are sent.
    GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
UPDATE outbox SET state = 'dead', last_error = 'destination deleted', updated_at_ms = $2,
                  lease_owner = '', lease_expires_at_ms = 0
WHERE destination = $1 AND state IN ('pending', 'in_flight')
  AND (state = 'pending' OR lease_expires_at_ms <= $2)
  AND NOT EXISTS (SELECT 1 FROM api_destinations WHERE lower(name) = lower($1))
)sql",
                                              Params().add(destination).add(now_ms)));
    changed += rows.affected();
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return changed;
}

Result<std::int64_t> PostgresIndex::dead_letter_expired_outbox(const std::string& destination,
                                                               std::int64_t queued_before_ms,
                                                               std::int64_t max_rows,
                                                               const std::string& reason,
                                                               std::int64_t now_ms) {
  if (max_rows <= 0) return std::int64_t{0};
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // outbox_queue serves the inner walk (destination, state, by id); it stops at max_rows
  // expired rows (rows an operator retried recently are passed over, not counted).
  GW_ASSIGN_OR_RETURN(
      auto rows,
      conn->exec(
          R"sql(
UPDATE outbox SET state = 'dead', last_error = $3, updated_at_ms = $4
WHERE id IN (SELECT id FROM outbox
             WHERE destination = $1 AND state = 'pending'
               AND greatest(created_at_ms, retried_at_ms) <= $2
             ORDER BY id LIMIT $5)
  AND state = 'pending'
)sql",
          Params().add(destination).add(queued_before_ms).add(reason).add(now_ms).add(max_rows)));
  return static_cast<std::int64_t>(rows.affected());
}

Result<std::optional<std::int64_t>> PostgresIndex::next_outbox_due(const std::string& destination) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
SELECT least((SELECT min(next_attempt_at_ms) FROM outbox
              WHERE destination = $1 AND state = 'pending'),
             (SELECT min(lease_expires_at_ms) FROM outbox
              WHERE destination = $1 AND state = 'in_flight'))
)sql",
                                            Params().add(destination)));
  if (rows.empty() || rows.is_null(0, 0)) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(rows.int64(0, 0));
}

}  // namespace gw::index
