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

void SqliteIndex::add_unconfirmed(const std::vector<std::int64_t>& markers) {
  std::lock_guard lock(marks_mu_);
  for (const std::int64_t m : markers) {
    unconfirmed_.insert(m);
    last_marker_ = std::max(last_marker_, m);
  }
}

void SqliteIndex::confirm_unflushed(std::int64_t marker) {
  std::lock_guard lock(marks_mu_);
  unconfirmed_.erase(marker);
}

std::int64_t SqliteIndex::confirmed_through() {
  std::lock_guard lock(marks_mu_);
  return unconfirmed_.empty() ? last_marker_ : *unconfirmed_.begin() - 1;
}

Result<bool> SqliteIndex::has_unconfirmed_marker_locked(std::int64_t instance_pk) {
  {  // Every kept duplicate asks (both flush paths): without markers, no query.
    std::lock_guard lock(marks_mu_);
    if (unconfirmed_.empty() && batch_markers_.empty()) return false;
  }
  GW_ASSIGN_OR_RETURN(auto s,
                      statement_locked("SELECT id FROM ingest_unconfirmed WHERE instance_pk = ?"));
  s.bind(1, instance_pk);
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("find markers of an instance"));
    if (!row) return false;
    const std::int64_t marker = s.int64(0);
    // A marker of this very group (not committed yet) is unconfirmed too.
    if (std::find(batch_markers_.begin(), batch_markers_.end(), marker) != batch_markers_.end()) {
      return true;
    }
    std::lock_guard lock(marks_mu_);
    if (unconfirmed_.contains(marker)) return true;
  }
}

Status SqliteIndex::delete_markers_locked(std::int64_t through) {
  GW_ASSIGN_OR_RETURN(auto s, statement_locked("DELETE FROM ingest_unconfirmed WHERE id <= ?"));
  s.bind(1, through);
  return s.run("delete confirmed markers");
}

Result<std::int64_t> SqliteIndex::clear_confirmed_locked() {
  const std::int64_t confirmed = confirmed_through();
  if (confirmed <= cleared_through_) return cleared_through_;
  GW_RETURN_IF_ERROR(delete_markers_locked(confirmed));
  return confirmed;
}

Result<std::vector<UnconfirmedInstance>> SqliteIndex::list_unconfirmed() {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT u.id, u.instance_pk, i.storage_path, i.size_bytes, i.digest
FROM ingest_unconfirmed u JOIN instances i ON i.id = u.instance_pk
WHERE u.id > ? ORDER BY u.id
)sql"));
  s.bind(1, confirmed_through());
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
  GW_RETURN_IF_ERROR(delete_markers_locked(through_marker_id));
  GW_RETURN_IF_ERROR(tx.commit());
  {
    std::lock_guard marks(marks_mu_);
    unconfirmed_.erase(unconfirmed_.begin(), unconfirmed_.upper_bound(through_marker_id));
    last_marker_ = std::max(last_marker_, through_marker_id);
  }
  cleared_through_ = std::max(cleared_through_, through_marker_id);
  return core::ok_status();
}

}  // namespace gw::index
