// One flush for a stored file and its index row (ADR 012): unflushed inserts and the markers
// that let a start after a power loss check the instances whose flush was never confirmed.

#include <algorithm>
#include <set>

#include "index/sqlite/sqlite_index.h"
#include "index/sqlite/sqlite_statement.h"

namespace gw::index {

std::optional<std::filesystem::path> SqliteIndex::local_file() const {
  if (path_.empty()) return std::nullopt;
  return path_;
}

std::vector<Result<InsertResult>> SqliteIndex::insert_instances_unflushed(
    const std::vector<InstanceRecord>& records, DuplicatePolicy policy) {
  if (path_.empty()) return Index::insert_instances_unflushed(records, policy);
  std::vector<PendingInsert> items;
  items.reserve(records.size());
  for (const auto& r : records) items.push_back({&r, policy});
  return write_batch(items, /*flushed=*/false);
}

namespace {

void raise_to(std::atomic<std::int64_t>& value, std::int64_t to) {
  std::int64_t seen = value.load();
  while (seen < to && !value.compare_exchange_weak(seen, to)) {
  }
}

}  // namespace

std::int64_t SqliteIndex::unflushed_watermark() { return unflushed_through_.load(); }

void SqliteIndex::confirm_unflushed(std::int64_t through) {
  raise_to(confirmed_through_, std::min(through, unflushed_through_.load()));
}

Result<std::int64_t> SqliteIndex::clear_confirmed_locked() {
  const std::int64_t confirmed = confirmed_through_.load();
  if (confirmed <= cleared_through_) return cleared_through_;
  GW_ASSIGN_OR_RETURN(auto s, statement_locked("DELETE FROM ingest_unconfirmed WHERE id <= ?"));
  s.bind(1, confirmed);
  GW_RETURN_IF_ERROR(s.run("clear confirmed markers"));
  return confirmed;
}

Result<std::vector<UnconfirmedInstance>> SqliteIndex::list_unconfirmed() {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT u.id, u.instance_pk, i.storage_path, i.size_bytes, i.digest
FROM ingest_unconfirmed u JOIN instances i ON i.id = u.instance_pk
WHERE u.id > ? ORDER BY u.id
)sql"));
  s.bind(1, confirmed_through_.load());
  std::vector<UnconfirmedInstance> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list unconfirmed instances"));
    if (!row) break;
    out.push_back({.marker_id = s.int64(0),
                   .instance_id = s.int64(1),
                   .storage_path = s.text(2),
                   .size_bytes = s.int64(3),
                   .digest = s.text(4)});
  }
  return out;
}

Status SqliteIndex::settle_unconfirmed(std::span<const std::int64_t> broken,
                                       std::int64_t through_marker_id) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  // Each deletion returns the id of the row above it (instance -> series -> study -> patient),
  // which goes too if nothing else refers to it now.
  static constexpr struct {
    const char* sql;
    const char* what;
  } kChain[] = {
      {"DELETE FROM instances WHERE id = ?1 RETURNING series_pk", "delete unconfirmed instance"},
      {R"sql(
DELETE FROM series WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM instances WHERE series_pk = ?1)
RETURNING study_pk
)sql",
       "delete empty series"},
      {R"sql(
DELETE FROM studies WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM series WHERE study_pk = ?1)
RETURNING patient_pk
)sql",
       "delete empty study"},
      {R"sql(
DELETE FROM patients WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM studies WHERE patient_pk = ?1)
RETURNING id
)sql",
       "delete empty patient"},
  };
  std::set<std::int64_t> ids(broken.begin(), broken.end());
  for (const auto& level : kChain) {
    std::set<std::int64_t> parents;
    for (const std::int64_t id : ids) {
      GW_ASSIGN_OR_RETURN(auto s, statement_locked(level.sql));
      s.bind(1, id);
      GW_ASSIGN_OR_RETURN(bool row, s.step(level.what));
      if (row) parents.insert(s.int64(0));
    }
    ids = std::move(parents);
  }
  GW_ASSIGN_OR_RETURN(auto clear, statement_locked("DELETE FROM ingest_unconfirmed WHERE id <= ?"));
  clear.bind(1, through_marker_id);
  GW_RETURN_IF_ERROR(clear.run("clear unconfirmed markers"));
  GW_RETURN_IF_ERROR(tx.commit());
  raise_to(unflushed_through_, through_marker_id);
  raise_to(confirmed_through_, through_marker_id);
  cleared_through_ = std::max(cleared_through_, through_marker_id);
  return core::ok_status();
}

}  // namespace gw::index
