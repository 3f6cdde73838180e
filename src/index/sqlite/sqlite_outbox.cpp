// Outbox operations of SqliteIndex (the schema is migration 3 in migrations.cpp). Every public
// method holds mu_ throughout, like the rest of the class; a claim is one BEGIN IMMEDIATE
// transaction, every other write is a single statement (its own transaction).
#include <algorithm>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "index/sqlite/sqlite_index.h"
#include "index/sqlite/sqlite_statement.h"
#include "index/validation.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

// Columns of OutboxItem, in the order read_item() expects. The instance fields are joined from
// the instance row, so an overwritten instance is forwarded from its current file.
constexpr const char* kItemSelect = R"sql(
SELECT o.id, o.destination, i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid,
       st.study_instance_uid, i.storage_path, i.size_bytes, i.digest, o.state, o.attempts,
       o.created_at_ms, o.retried_at_ms, o.next_attempt_at_ms, o.updated_at_ms, o.lease_owner,
       o.lease_expires_at_ms, o.last_status, o.last_error, o.warning
FROM outbox o
JOIN instances i ON i.id = o.instance_pk
JOIN series se ON se.id = i.series_pk
JOIN studies st ON st.id = se.study_pk
)sql";

Result<OutboxItem> read_item(const auto& s) {
  OutboxItem item;
  int c = 0;
  item.id = s.int64(c++);
  item.destination = s.text(c++);
  item.sop_instance_uid = s.text(c++);
  item.sop_class_uid = s.text(c++);
  item.transfer_syntax_uid = s.text(c++);
  item.study_instance_uid = s.text(c++);
  item.storage_path = s.text(c++);
  item.size_bytes = s.int64(c++);
  item.digest = s.text(c++);
  GW_ASSIGN_OR_RETURN(item.state, stored_outbox_state(item.id, s.text(c++)));
  item.attempts = static_cast<int>(s.int64(c++));
  item.created_at_ms = s.int64(c++);
  item.retried_at_ms = s.int64(c++);
  item.next_attempt_at_ms = s.int64(c++);
  item.updated_at_ms = s.int64(c++);
  item.lease_owner = s.text(c++);
  item.lease_expires_at_ms = s.int64(c++);
  item.last_status = static_cast<int>(s.int64(c++));
  item.last_error = s.text(c++);
  item.warning = s.int64(c++) != 0;
  return item;
}

/// a + b without signed overflow (a lease of "forever" must not wrap into the past).
std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  if (b > 0 && a > std::numeric_limits<std::int64_t>::max() - b) {
    return std::numeric_limits<std::int64_t>::max();
  }
  return a + b;
}

/// A JSON array of the ids ("[1,2,3]"), for json_each(): one statement for any number of ids.
std::string json_ids(std::span<const std::int64_t> ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

}  // namespace

Status SqliteIndex::enqueue_outbox_locked(std::int64_t instance_pk, const InstanceRecord& r,
                                          bool replaced_file) {
  for (const auto& destination : r.destinations) {
    GW_RETURN_IF_ERROR(check_outbox_destination(destination));
    // NOT EXISTS also drops a destination named twice in one record. An in-flight row holds
    // back a new one unless the instance's file was just replaced (?4): that row is sending
    // the old version.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO outbox (instance_pk, destination, state, created_at_ms, next_attempt_at_ms,
                    updated_at_ms)
SELECT ?1, ?2, 'pending', ?3, ?3, ?3
WHERE NOT EXISTS (SELECT 1 FROM outbox
                  WHERE instance_pk = ?1 AND destination = ?2
                    AND (state = 'pending' OR (state = 'in_flight' AND ?4 = 0)))
)sql"));
    s.bind(1, instance_pk).bind(2, destination).bind(3, r.received_at_ms);
    s.bind(4, std::int64_t{replaced_file ? 1 : 0});
    GW_RETURN_IF_ERROR(s.run("enqueue outbox row"));
  }
  return core::ok_status();
}

Result<std::vector<OutboxItem>> SqliteIndex::claim_outbox(const std::string& destination,
                                                          std::size_t max_items,
                                                          const std::string& owner,
                                                          std::int64_t now_ms,
                                                          std::int64_t lease_ms) {
  GW_RETURN_IF_ERROR(check_lease(owner, lease_ms, "claim outbox"));
  std::vector<OutboxItem> items;
  if (max_items == 0) return items;
  const auto limit = static_cast<std::int64_t>(
      std::min<std::size_t>(max_items, std::numeric_limits<std::int64_t>::max()));

  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::vector<std::int64_t> ids;
  {
    // Each branch walks outbox_queue in id order and stops after `limit` due rows, so a backlog
    // of any size costs O(limit), not a sort of every due row.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, lease_owner = ?3,
                  lease_expires_at_ms = ?4, updated_at_ms = ?2
WHERE id IN (
  SELECT id FROM (SELECT id FROM outbox
                  WHERE destination = ?1 AND state = 'pending' AND next_attempt_at_ms <= ?2
                  ORDER BY id LIMIT ?5)
  UNION ALL
  SELECT id FROM (SELECT id FROM outbox
                  WHERE destination = ?1 AND state = 'in_flight' AND lease_expires_at_ms <= ?2
                  ORDER BY id LIMIT ?5)
  ORDER BY id LIMIT ?5)
RETURNING id
)sql"));
    s.bind(1, destination).bind(2, now_ms).bind(3, owner);
    s.bind(4, saturating_add(now_ms, lease_ms)).bind(5, limit);
    for (;;) {
      GW_ASSIGN_OR_RETURN(bool row, s.step("claim outbox"));
      if (!row) break;
      ids.push_back(s.int64(0));
    }
  }
  std::sort(ids.begin(), ids.end());  // RETURNING has no defined order
  items.reserve(ids.size());
  for (auto id : ids) {
    GW_ASSIGN_OR_RETURN(auto item, find_outbox_locked(id));
    if (!item) return make_error(ErrorCode::kDatabase, "claim outbox: claimed row vanished");
    items.push_back(std::move(*item));
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return items;
}

Status SqliteIndex::renew_outbox_leases(const std::string& owner, std::span<const std::int64_t> ids,
                                        std::int64_t now_ms, std::int64_t lease_ms) {
  GW_RETURN_IF_ERROR(check_lease(owner, lease_ms, "renew outbox leases"));
  if (ids.empty()) return core::ok_status();
  std::lock_guard lock(mu_);
  // A rowid lookup per id (the planner turns the IN list into an ephemeral table).
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET lease_expires_at_ms = ?2
WHERE id IN (SELECT value FROM json_each(?3)) AND state = 'in_flight' AND lease_owner = ?1
)sql"));
  s.bind(1, owner).bind(2, saturating_add(now_ms, lease_ms)).bind(3, json_ids(ids));
  return s.run("renew outbox leases");
}

Status SqliteIndex::finish_outbox_locked(std::int64_t id, const std::string& owner, OutboxState to,
                                         std::optional<std::int64_t> next_attempt_at_ms,
                                         const OutboxResult& result, std::int64_t now_ms) {
  {
    // ?4 unbound is NULL: the row keeps its next_attempt_at_ms.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = ?3, next_attempt_at_ms = coalesce(?4, next_attempt_at_ms),
                  last_status = ?5, last_error = ?6, warning = ?7, updated_at_ms = ?8,
                  lease_owner = '', lease_expires_at_ms = 0
WHERE id = ?1 AND state = 'in_flight' AND lease_owner = ?2
)sql"));
    s.bind(1, id).bind(2, owner).bind(3, to_string(to));
    if (next_attempt_at_ms) s.bind(4, *next_attempt_at_ms);
    s.bind(5, std::int64_t{result.status}).bind(6, result.comment);
    s.bind(7, std::int64_t{result.warning ? 1 : 0}).bind(8, now_ms);
    GW_RETURN_IF_ERROR(s.run("finish outbox row"));
    if (s.changes() == 1) return core::ok_status();
  }
  return outbox_unchanged_locked(id, "lease lost: no longer held by " + owner);
}

Status SqliteIndex::complete_outbox(std::int64_t id, const std::string& owner,
                                    const OutboxResult& result, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  return finish_outbox_locked(id, owner, OutboxState::kDelivered, std::nullopt, result, now_ms);
}

Status SqliteIndex::reschedule_outbox(std::int64_t id, const std::string& owner,
                                      std::int64_t next_attempt_at_ms, const OutboxResult& result,
                                      std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  return finish_outbox_locked(id, owner, OutboxState::kPending, next_attempt_at_ms, result, now_ms);
}

Status SqliteIndex::fail_outbox(std::int64_t id, const std::string& owner,
                                const OutboxResult& result, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  return finish_outbox_locked(id, owner, OutboxState::kDead, std::nullopt, result, now_ms);
}

std::vector<Status> SqliteIndex::finish_outbox_rows(std::span<const OutboxFinish> rows,
                                                    const std::string& owner, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  auto begun = tx.begin();
  return finish_each_in_transaction(
      rows, std::move(begun),
      [&](const OutboxFinish& r) {
        return finish_outbox_locked(r.id, owner, r.to, r.next_attempt_at_ms, r.result, now_ms);
      },
      [&] { return tx.commit(); });
}

Status SqliteIndex::release_outbox_leases(const std::string& owner, std::int64_t now_ms) {
  GW_RETURN_IF_ERROR(check_lease_owner(owner, "release outbox leases"));
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = 'pending', next_attempt_at_ms = ?2, attempts = max(attempts - 1, 0),
                  lease_owner = '', lease_expires_at_ms = 0, updated_at_ms = ?2
WHERE state = 'in_flight' AND lease_owner = ?1
)sql"));
  s.bind(1, owner).bind(2, now_ms);
  return s.run("release outbox leases");
}

// The operator's writes: the change and its audit row in one transaction (sqlite_auth.cpp has
// the audit helpers); a refused change (not found, in flight) rolls its row back with it.

Status SqliteIndex::retry_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = 'pending', next_attempt_at_ms = ?2, attempts = 0, updated_at_ms = ?2,
                  retried_at_ms = ?2, lease_owner = '', lease_expires_at_ms = 0
WHERE id = ?1 AND (state <> 'in_flight' OR lease_expires_at_ms <= ?2)
)sql"));
    // An in-flight row whose lease has expired is sent by nobody (a crash left it, and its
    // destination may be gone, so no forwarder ever claims it again): it can be retried. Its
    // lease goes with it, so a late result of the old owner is refused.
    s.bind(1, id).bind(2, now_ms);
    GW_RETURN_IF_ERROR(s.run("retry outbox row"));
    if (s.changes() != 1) return outbox_unchanged_locked(id, "in flight: an attempt is under way");
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  return tx.commit();
}

Result<std::int64_t> SqliteIndex::retry_dead_outbox(const std::string& destination,
                                                    std::int64_t now_ms, const AuditEvent* audit) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  // Two statements rather than "?1 = '' OR destination = ?1", which no index serves. Without a
  // destination, rows dead because theirs was deleted stay dead: nobody would send them (retry
  // them by destination, after creating it again).
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(destination.empty() ? R"sql(
UPDATE outbox SET state = 'pending', next_attempt_at_ms = ?2, attempts = 0, updated_at_ms = ?2,
                  retried_at_ms = ?2
WHERE state = 'dead' AND last_error IS NOT 'destination deleted'
)sql"
                                                                   : R"sql(
UPDATE outbox SET state = 'pending', next_attempt_at_ms = ?2, attempts = 0, updated_at_ms = ?2,
                  retried_at_ms = ?2
WHERE destination = ?1 AND state = 'dead'
)sql"));
  if (!destination.empty()) s.bind(1, destination);
  s.bind(2, now_ms);
  GW_RETURN_IF_ERROR(s.run("retry dead outbox rows"));
  const std::int64_t retried = s.changes();
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return retried;
}

Status SqliteIndex::delete_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    // An in-flight row whose lease expired is sent by nobody (see retry_outbox).
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
DELETE FROM outbox WHERE id = ?1 AND (state <> 'in_flight' OR lease_expires_at_ms <= ?2)
)sql"));
    s.bind(1, id).bind(2, now_ms);
    GW_RETURN_IF_ERROR(s.run("delete outbox row"));
    if (s.changes() != 1) return outbox_unchanged_locked(id, "in flight: an attempt is under way");
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  return tx.commit();
}

core::Error SqliteIndex::outbox_unchanged_locked(std::int64_t id, const std::string& conflict) {
  auto s = statement_locked("SELECT 1 FROM outbox WHERE id = ?");
  if (!s.ok()) return s.error();
  s->bind(1, id);
  auto found = s->step("find outbox row");
  if (!found.ok()) return found.error();
  return outbox_unchanged_error(id, *found, conflict);
}

Result<std::optional<OutboxItem>> SqliteIndex::find_outbox_locked(std::int64_t id) {
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string(kItemSelect) + "WHERE o.id = ?"));
  s.bind(1, id);
  GW_ASSIGN_OR_RETURN(bool row, s.step("find outbox row"));
  if (!row) return std::optional<OutboxItem>();
  GW_ASSIGN_OR_RETURN(auto item, read_item(s));
  return std::optional<OutboxItem>(std::move(item));
}

Result<std::optional<OutboxItem>> SqliteIndex::find_outbox(std::int64_t id) {
  std::lock_guard lock(mu_);
  return find_outbox_locked(id);
}

Result<std::vector<OutboxItem>> SqliteIndex::list_outbox(const OutboxQuery& q) {
  GW_RETURN_IF_ERROR(check_page(q.limit, q.offset, "list outbox"));
  // At most four distinct statements, each cached.
  std::string sql = std::string(kItemSelect) + "WHERE 1 = 1";
  if (!q.destination.empty()) sql += " AND o.destination = ?1";
  if (q.state) sql += " AND o.state = ?2";
  sql += " ORDER BY o.id LIMIT ?3 OFFSET ?4";
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(sql));
  if (!q.destination.empty()) s.bind(1, q.destination);
  if (q.state) s.bind(2, to_string(*q.state));
  s.bind(3, q.limit).bind(4, q.offset);
  std::vector<OutboxItem> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list outbox"));
    if (!row) break;
    GW_ASSIGN_OR_RETURN(auto item, read_item(s));
    out.push_back(std::move(item));
  }
  return out;
}

Result<std::vector<QueueDepth>> SqliteIndex::queue_depths() {
  std::lock_guard lock(mu_);
  // Counted from outbox_queue alone; created_at_ms is read for the first row of each group
  // only, which (ids growing with time) is the oldest.
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT g.destination, g.state, g.n, (SELECT created_at_ms FROM outbox WHERE id = g.first_id)
FROM (SELECT destination, state, count(*) AS n, min(id) AS first_id
      FROM outbox GROUP BY destination, state) g
ORDER BY g.destination
)sql"));
  std::vector<QueueDepth> out;
  // Of out.back()'s pending and in-flight rows (an optional trips GCC's maybe-uninitialized).
  std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("queue depths"));
    if (!row) break;
    std::string destination = s.text(0);
    if (out.empty() || out.back().destination != destination) {
      out.emplace_back().destination = std::move(destination);
      oldest = std::numeric_limits<std::int64_t>::max();
    }
    QueueDepth& d = out.back();
    const std::int64_t n = s.int64(2);
    const std::int64_t first_created = s.int64(3);
    const auto state = outbox_state_from_string(s.text(1));
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

Result<std::optional<std::int64_t>> SqliteIndex::newer_outbox_row(std::int64_t id) {
  std::lock_guard lock(mu_);
  // outbox_instance serves the later rows of the same instance and destination.
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT max(n.id) FROM outbox o
JOIN outbox n ON n.instance_pk = o.instance_pk AND n.destination = o.destination AND n.id > o.id
  AND n.created_at_ms >= max(o.created_at_ms, o.retried_at_ms)
WHERE o.id = ?1
)sql"));
  s.bind(1, id);
  GW_ASSIGN_OR_RETURN(bool row, s.step("newer outbox row"));
  if (!row || s.is_null(0)) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(s.int64(0));
}

Result<std::int64_t> SqliteIndex::dead_letter_deleted_outbox(
    std::span<const std::string> destinations, std::int64_t now_ms) {
  if (destinations.empty()) return std::int64_t{0};
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::int64_t changed = 0;
  for (const auto& destination : destinations) {
    // The words of a forced delete_destination (sqlite_destinations.cpp); outbox_queue serves
    // (destination, state). Not when the name exists again (re-created here or by another node
    // since the caller looked): its rows are sent.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = 'dead', last_error = 'destination deleted', updated_at_ms = ?2,
                  lease_owner = '', lease_expires_at_ms = 0
WHERE destination = ?1 AND state IN ('pending', 'in_flight')
  AND (state = 'pending' OR lease_expires_at_ms <= ?2)
  AND NOT EXISTS (SELECT 1 FROM api_destinations WHERE lower(name) = lower(?1))
)sql"));
    s.bind(1, destination).bind(2, now_ms);
    GW_RETURN_IF_ERROR(s.run("dead-letter rows of a deleted destination"));
    changed += s.changes();
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return changed;
}

Result<std::int64_t> SqliteIndex::dead_letter_expired_outbox(const std::string& destination,
                                                             std::int64_t queued_before_ms,
                                                             std::int64_t max_rows,
                                                             const std::string& reason,
                                                             std::int64_t now_ms) {
  if (max_rows <= 0) return std::int64_t{0};
  std::lock_guard lock(mu_);
  // outbox_queue serves the inner walk (destination, state, by id); it stops at max_rows
  // expired rows (rows an operator retried recently are passed over, not counted).
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE outbox SET state = 'dead', last_error = ?3, updated_at_ms = ?4
WHERE id IN (SELECT id FROM outbox
             WHERE destination = ?1 AND state = 'pending'
               AND max(created_at_ms, retried_at_ms) <= ?2
             ORDER BY id LIMIT ?5)
)sql"));
  s.bind(1, destination).bind(2, queued_before_ms).bind(3, reason).bind(4, now_ms);
  s.bind(5, max_rows);
  GW_RETURN_IF_ERROR(s.run("dead-letter expired rows of a paused destination"));
  return static_cast<std::int64_t>(s.changes());
}

Result<std::optional<std::int64_t>> SqliteIndex::next_outbox_due(const std::string& destination) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT (SELECT min(next_attempt_at_ms) FROM outbox
        WHERE destination = ?1 AND state = 'pending'),
       (SELECT min(lease_expires_at_ms) FROM outbox
        WHERE destination = ?1 AND state = 'in_flight')
)sql"));
  s.bind(1, destination);
  GW_ASSIGN_OR_RETURN(bool row, s.step("next outbox due"));
  std::optional<std::int64_t> due;
  if (!row) return due;
  for (int c = 0; c < 2; ++c) {
    if (s.is_null(c)) continue;
    due = due ? std::min(*due, s.int64(c)) : s.int64(c);
  }
  return due;
}

}  // namespace gw::index
