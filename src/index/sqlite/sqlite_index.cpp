#include "index/sqlite/sqlite_index.h"

#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "index/sqlite/migrations.h"
#include "index/sqlite/sqlite_statement.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

constexpr int kBusyTimeoutMs = 5000;

/// The id from the RETURNING row of an upsert whose DO UPDATE has a WHERE; when the WHERE left
/// an unchanged row alone there is no such row, and `find()` (a statement bound to the same
/// key, prepared only then) reads the id.
template <class Stmt, class Find>
Result<std::int64_t> upserted_id(Stmt& upsert, const char* what, Find find) {
  GW_ASSIGN_OR_RETURN(bool row, upsert.step(what));
  if (row) {
    const std::int64_t id = upsert.int64(0);
    GW_RETURN_IF_ERROR(upsert.run(what));
    return id;
  }
  GW_ASSIGN_OR_RETURN(auto lookup, find());
  GW_ASSIGN_OR_RETURN(bool found, lookup.step(what));
  if (!found) return make_error(ErrorCode::kDatabase, std::string(what) + ": no id returned");
  const std::int64_t id = lookup.int64(0);
  GW_RETURN_IF_ERROR(lookup.run(what));
  return id;
}

}  // namespace

void SqliteIndex::DbDeleter::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void SqliteIndex::StmtDeleter::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

SqliteIndex::SqliteIndex(DbPtr db, std::filesystem::path path, bool synchronous)
    : path_(std::move(path)),
      synchronous_(synchronous),
      batcher_([this](const std::vector<Batcher::Slot*>& batch) {
        std::vector<PendingInsert> items;
        items.reserve(batch.size());
        for (const auto* slot : batch) items.push_back(slot->request);
        auto results = write_batch(items);
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->response = std::move(results[i]);
      }),
      db_(std::move(db)),
      codec_(std::make_shared<const PhiCodec>(CipherFormat::kAesGcm, nullptr)) {}

SqliteIndex::~SqliteIndex() {
  std::lock_guard lock(mu_);
  statements_.clear();  // finalize before the connection closes
}

Result<std::unique_ptr<SqliteIndex>> SqliteIndex::open(const std::filesystem::path& path,
                                                       bool synchronous) {
  const bool in_memory = path == ":memory:";
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);  // owned at once: sqlite3_open_v2 allocates a handle even when it fails
  if (rc != SQLITE_OK) {
    std::string message =
        "open index " + path.string() + ": " + (db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc));
    return make_error(ErrorCode::kDatabase, std::move(message));
  }
  sqlite3_extended_result_codes(db.get(), 1);

  std::unique_ptr<SqliteIndex> index(
      new SqliteIndex(std::move(db), in_memory ? std::filesystem::path() : path, synchronous));
  std::lock_guard lock(index->mu_);
  GW_RETURN_IF_ERROR(index->configure_locked(in_memory));
  GW_RETURN_IF_ERROR(index->migrate_locked());
  GW_ASSIGN_OR_RETURN(int version, index->user_version_locked());
  core::logger("index")->info("index opened backend=sqlite path={} schema_version={}",
                              path.string(), version);
  return index;
}

Status SqliteIndex::configure_locked(bool in_memory) {
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
  GW_RETURN_IF_ERROR(exec_locked("PRAGMA foreign_keys = ON"));
  // The savepoint per record of a group commit journals every page it touches; on a temp file
  // that is hundreds of write() calls per commit, in memory none (bounded by the batch size).
  GW_RETURN_IF_ERROR(exec_locked("PRAGMA temp_store = MEMORY"));
  GW_ASSIGN_OR_RETURN(auto stmt, statement_locked("PRAGMA journal_mode = WAL"));
  GW_ASSIGN_OR_RETURN(bool row, stmt.step("set journal_mode"));
  std::string mode = row ? stmt.text(0) : std::string();
  if (!in_memory && mode != "wal") {
    core::logger("index")->warn("index journal_mode={} wanted=wal", mode);
  }
  // After journal_mode: synchronous=FULL fsyncs the WAL on every commit (but an unflushed one's,
  // see Transaction). NORMAL (storage.fsync: false) keeps the database consistent but may lose
  // the last commits on power loss.
  GW_RETURN_IF_ERROR(
      exec_locked(synchronous_ ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"));
  return core::ok_status();
}

Result<int> SqliteIndex::user_version_locked() {
  GW_ASSIGN_OR_RETURN(auto stmt, statement_locked("PRAGMA user_version"));
  GW_ASSIGN_OR_RETURN(bool row, stmt.step("read user_version"));
  if (!row) return make_error(ErrorCode::kDatabase, "read user_version: no row");
  return static_cast<int>(stmt.int64(0));
}

Status SqliteIndex::migrate_locked() {
  const auto& migrations = sqlite_migrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  GW_ASSIGN_OR_RETURN(int current, user_version_locked());
  if (current > latest) {
    return make_error(ErrorCode::kDatabase, "index schema version " + std::to_string(current) +
                                                " is newer than this build supports (" +
                                                std::to_string(latest) + ")");
  }
  for (const auto& migration : migrations) {
    if (migration.version <= current) continue;
    Transaction tx(*this);
    GW_RETURN_IF_ERROR(tx.begin());
    // Another process may have migrated while we waited for the write lock.
    GW_ASSIGN_OR_RETURN(current, user_version_locked());
    if (migration.version <= current) continue;
    GW_RETURN_IF_ERROR(exec_locked(migration.sql));
    // PRAGMA takes no bound parameters; the version is our own integer.
    const std::string set_version = "PRAGMA user_version = " + std::to_string(migration.version);
    GW_RETURN_IF_ERROR(exec_locked(set_version.c_str()));
    GW_RETURN_IF_ERROR(tx.commit());
    current = migration.version;
    core::logger("index")->info("index migration applied version={}", migration.version);
  }
  return core::ok_status();
}

Status SqliteIndex::exec_locked(const char* sql) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error_locked(rc, "exec");
  return core::ok_status();
}

Result<SqliteIndex::Statement> SqliteIndex::statement_locked(const std::string& sql) {
  if (synchronous_restore_failed_ && sqlite3_get_autocommit(db_.get()) != 0) {
    GW_RETURN_IF_ERROR(exec_locked("PRAGMA synchronous = FULL"));
    synchronous_restore_failed_ = false;
  }
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size() + 1),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return error_locked(rc, "prepare");
    it = statements_.emplace(sql, std::move(stmt)).first;
  }
  return Statement(db_.get(), it->second.get());
}

core::Error SqliteIndex::error_locked(int rc, const char* what) const {
  return Statement(db_.get(), nullptr).error(rc, what);
}

Result<InsertResult> SqliteIndex::insert_instance(const InstanceRecord& r, DuplicatePolicy policy) {
  // Group commit: concurrent callers share one transaction (one WAL fsync).
  return batcher_.run(PendingInsert{&r, policy});
}

std::vector<Result<InsertResult>> SqliteIndex::insert_instances(
    const std::vector<InstanceRecord>& records, DuplicatePolicy policy) {
  std::vector<PendingInsert> items;
  items.reserve(records.size());
  for (const auto& r : records) items.push_back({&r, policy});
  return write_batch(items);
}

std::vector<Result<InsertResult>> SqliteIndex::write_batch(const std::vector<PendingInsert>& items,
                                                           bool flushed) {
  std::vector<Result<InsertResult>> results;
  results.reserve(items.size());
  std::lock_guard lock(mu_);
  Transaction tx(*this, flushed);
  auto cleared_through = [&]() -> Result<std::int64_t> {
    GW_RETURN_IF_ERROR(tx.begin());
    return clear_confirmed_locked();
  }();
  if (!cleared_through.ok()) {
    for (std::size_t i = 0; i < items.size(); ++i) results.emplace_back(cleared_through.error());
    return results;
  }
  std::vector<std::int64_t>& markers = batch_markers_;
  markers.clear();
  for (const auto& item : items) {
    if (sqlite3_get_autocommit(db_.get()) != 0) {
      // SQLite rolled the whole transaction back on its own (an I/O error, a full disk, no
      // memory): the records before this one are gone too, and nothing may commit one by one.
      const auto gone = make_error(ErrorCode::kIo,
                                   "the index transaction was rolled back by SQLite after an "
                                   "error; nothing of this group was stored");
      for (auto& r : results) r = gone;
      results.resize(items.size(), gone);
      markers.clear();
      return results;
    }
    const InstanceRecord& r = *item.record;
    if (r.sop_instance_uid.empty() || r.series_instance_uid.empty() ||
        r.study_instance_uid.empty() || r.storage_path.empty()) {
      results.emplace_back(
          make_error(ErrorCode::kInvalidArgument,
                     "insert instance: SOP/series/study UID and storage path are required"));
      continue;
    }
    if (!flushed && item.policy == DuplicatePolicy::kOverwrite) {
      results.emplace_back(make_error(ErrorCode::kInvalidArgument,
                                      "an unflushed insert cannot overwrite (ADR 012)"));
      continue;
    }
    // A savepoint per record: one record's failure (a rejected duplicate, a constraint) leaves
    // the others of the batch intact.
    if (auto st = exec_locked("SAVEPOINT one"); !st.ok()) {
      results.emplace_back(st.error());
      continue;
    }
    results.push_back(insert_one_locked(r, item.policy, /*mark=*/!flushed));
    if (!results.back().ok()) {
      (void)exec_locked("ROLLBACK TO one");
    } else if (results.back()->marker != 0) {
      markers.push_back(results.back()->marker);
    }
    (void)exec_locked("RELEASE one");
  }
  if (auto st = tx.commit(); !st.ok()) {
    // An I/O error at COMMIT (a failed WAL fsync) may come after the commit's frames were
    // written: a later start can find these rows in the WAL. So their files must stay until
    // that start's checks (the caller keeps them). A full disk or a lock never got that far.
    const bool unknown = (sqlite3_extended_errcode(db_.get()) & 0xff) == SQLITE_IOERR;
    const auto error = unknown ? core::make_error(ErrorCode::kOutcomeUnknown,
                                                  "commit outcome unknown: " + st.error().message)
                               : st.error();
    for (auto& r : results) r = error;
    markers.clear();
    return results;
  }
  cleared_through_ = *cleared_through;
  add_unconfirmed(markers);
  markers.clear();
  return results;
}

Result<InsertResult> SqliteIndex::insert_one_locked(const InstanceRecord& r, DuplicatePolicy policy,
                                                    bool mark) {
  std::optional<std::int64_t> existing_id;
  std::string existing_path;
  {
    GW_ASSIGN_OR_RETURN(
        auto s,
        statement_locked("SELECT id, storage_path FROM instances WHERE sop_instance_uid = ?"));
    s.bind(1, r.sop_instance_uid);
    GW_ASSIGN_OR_RETURN(bool row, s.step("find existing instance"));
    if (row) {
      existing_id = s.int64(0);
      existing_path = s.text(1);
    }
  }
  if (existing_id) {
    // An empty path tells the caller there is no file to remove (it would be the row's own).
    const bool same_file = existing_path == r.storage_path;
    if (policy == DuplicatePolicy::kKeepFirst) {
      // Flushed or not, this success would rest on the kept row's flush, which is not done.
      GW_ASSIGN_OR_RETURN(bool unconfirmed, has_unconfirmed_marker_locked(*existing_id));
      if (unconfirmed) {
        return make_error(ErrorCode::kConflict,
                          "the same SOP instance is being stored on another association: "
                          "send it again");
      }
      // A resend forwards again: the kept row's file goes to this record's destinations.
      GW_RETURN_IF_ERROR(enqueue_outbox_locked(*existing_id, r));
      return InsertResult{InsertOutcome::kDuplicateKept, same_file ? "" : r.storage_path};
    }
    if (policy == DuplicatePolicy::kReject) {
      // "Already stored" would tell the sender it is safe; it is not until the kept row's flush.
      GW_ASSIGN_OR_RETURN(bool unconfirmed, has_unconfirmed_marker_locked(*existing_id));
      if (unconfirmed) {
        return make_error(ErrorCode::kConflict,
                          "the same SOP instance is being stored on another association: "
                          "send it again");
      }
      return make_error(ErrorCode::kAlreadyExists,
                        "instance already stored: sop_instance_uid=" + r.sop_instance_uid);
    }
  }

  const bool replacing = existing_id.has_value();
  // The patient, study and series upserts rewrite their row only when a value in it changes or
  // its updated_at_ms moves on by at least a second (then they read the id back): most instances
  // of a series leave those pages alone, 3-4 fewer WAL pages per commit. A study's
  // last_received_at (its updated_at_ms) may therefore lag by under a second.
  std::int64_t instance_pk = 0;
  std::int64_t patient_pk = 0;
  if (codec_->encrypting()) {
    GW_ASSIGN_OR_RETURN(patient_pk, upsert_sealed_patient_locked(r));
  } else {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO patients (patient_id, patient_name, birth_date, sex, created_at_ms, updated_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?5)
ON CONFLICT (patient_id, patient_name) DO UPDATE SET
  birth_date = coalesce(nullif(excluded.birth_date, ''), birth_date),
  sex = coalesce(nullif(excluded.sex, ''), sex),
  updated_at_ms = max(updated_at_ms, excluded.updated_at_ms)
WHERE (excluded.birth_date <> '' AND excluded.birth_date IS NOT birth_date)
   OR (excluded.sex <> '' AND excluded.sex IS NOT sex)
   OR excluded.updated_at_ms >= updated_at_ms + 1000
RETURNING id
)sql"));
    s.bind(1, r.patient_id).bind(2, r.patient_name).bind(3, r.patient_birth_date);
    s.bind(4, r.patient_sex).bind(5, r.received_at_ms);
    GW_ASSIGN_OR_RETURN(
        patient_pk, upserted_id(s, "upsert patient", [&]() -> Result<Statement> {
          GW_ASSIGN_OR_RETURN(
              auto q, statement_locked(
                          "SELECT id FROM patients WHERE patient_id = ?1 AND patient_name = ?2"));
          q.bind(1, r.patient_id).bind(2, r.patient_name);
          return q;
        }));
  }

  std::int64_t study_pk = 0;
  if (codec_->encrypting()) {
    GW_ASSIGN_OR_RETURN(study_pk, upsert_sealed_study_locked(r, patient_pk));
  } else {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO studies (study_instance_uid, patient_pk, study_date, study_time, study_description,
                     accession_number, study_id, referring_physician, created_at_ms,
                     updated_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
ON CONFLICT (study_instance_uid) DO UPDATE SET
  patient_pk = excluded.patient_pk,
  study_date = coalesce(nullif(excluded.study_date, ''), study_date),
  study_time = coalesce(nullif(excluded.study_time, ''), study_time),
  study_description = coalesce(nullif(excluded.study_description, ''), study_description),
  accession_number = coalesce(nullif(excluded.accession_number, ''), accession_number),
  study_id = coalesce(nullif(excluded.study_id, ''), study_id),
  referring_physician = coalesce(nullif(excluded.referring_physician, ''), referring_physician),
  updated_at_ms = max(updated_at_ms, excluded.updated_at_ms)
WHERE patient_pk IS NOT excluded.patient_pk
   OR (excluded.study_date <> '' AND excluded.study_date IS NOT study_date)
   OR (excluded.study_time <> '' AND excluded.study_time IS NOT study_time)
   OR (excluded.study_description <> '' AND excluded.study_description IS NOT study_description)
   OR (excluded.accession_number <> '' AND excluded.accession_number IS NOT accession_number)
   OR (excluded.study_id <> '' AND excluded.study_id IS NOT study_id)
   OR (excluded.referring_physician <> '' AND excluded.referring_physician IS NOT referring_physician)
   OR excluded.updated_at_ms >= updated_at_ms + 1000
RETURNING id
)sql"));
    s.bind(1, r.study_instance_uid).bind(2, patient_pk).bind(3, r.study_date);
    s.bind(4, r.study_time).bind(5, r.study_description).bind(6, r.accession_number);
    s.bind(7, r.study_id).bind(8, r.referring_physician).bind(9, r.received_at_ms);
    GW_ASSIGN_OR_RETURN(
        study_pk, upserted_id(s, "upsert study", [&]() -> Result<Statement> {
          GW_ASSIGN_OR_RETURN(
              auto q, statement_locked("SELECT id FROM studies WHERE study_instance_uid = ?1"));
          q.bind(1, r.study_instance_uid);
          return q;
        }));
  }

  std::int64_t series_pk = 0;
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO series (series_instance_uid, study_pk, modality, series_description, series_number,
                    body_part_examined, created_at_ms, updated_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
ON CONFLICT (series_instance_uid) DO UPDATE SET
  study_pk = excluded.study_pk,
  modality = coalesce(nullif(excluded.modality, ''), modality),
  series_description = coalesce(nullif(excluded.series_description, ''), series_description),
  series_number = coalesce(nullif(excluded.series_number, ''), series_number),
  body_part_examined = coalesce(nullif(excluded.body_part_examined, ''), body_part_examined),
  updated_at_ms = max(updated_at_ms, excluded.updated_at_ms)
WHERE study_pk IS NOT excluded.study_pk
   OR (excluded.modality <> '' AND excluded.modality IS NOT modality)
   OR (excluded.series_description <> '' AND excluded.series_description IS NOT series_description)
   OR (excluded.series_number <> '' AND excluded.series_number IS NOT series_number)
   OR (excluded.body_part_examined <> '' AND excluded.body_part_examined IS NOT body_part_examined)
   OR excluded.updated_at_ms >= updated_at_ms + 1000
RETURNING id
)sql"));
    s.bind(1, r.series_instance_uid).bind(2, study_pk).bind(3, r.modality);
    s.bind(4, r.series_description).bind(5, r.series_number).bind(6, r.body_part_examined);
    s.bind(7, r.received_at_ms);
    GW_ASSIGN_OR_RETURN(
        series_pk, upserted_id(s, "upsert series", [&]() -> Result<Statement> {
          GW_ASSIGN_OR_RETURN(
              auto q, statement_locked("SELECT id FROM series WHERE series_instance_uid = ?1"));
          q.bind(1, r.series_instance_uid);
          return q;
        }));
  }

  {
    // ?1..?14 are the instance columns; ?15 the row id on update.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(replacing ? R"sql(
UPDATE instances SET
  sop_instance_uid = ?1, series_pk = ?2, sop_class_uid = ?3, transfer_syntax_uid = ?4,
  instance_number = ?5, size_bytes = ?6, storage_path = ?7, digest = ?8, received_at_ms = ?9,
  calling_ae = ?10, called_ae = ?11, peer_address = ?12, station_name = ?13,
  institution_name = ?14
WHERE id = ?15
)sql"
                                                           : R"sql(
INSERT INTO instances (sop_instance_uid, series_pk, sop_class_uid, transfer_syntax_uid,
                       instance_number, size_bytes, storage_path, digest, received_at_ms,
                       calling_ae, called_ae, peer_address, station_name, institution_name)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
)sql"));
    s.bind(1, r.sop_instance_uid).bind(2, series_pk).bind(3, r.sop_class_uid);
    s.bind(4, r.transfer_syntax_uid).bind(5, r.instance_number).bind(6, r.size_bytes);
    s.bind(7, r.storage_path).bind(8, r.digest).bind(9, r.received_at_ms);
    s.bind(10, r.calling_ae).bind(11, r.called_ae).bind(12, r.peer_address);
    s.bind(13, r.station_name).bind(14, r.institution_name);
    if (replacing) s.bind(15, *existing_id);
    GW_RETURN_IF_ERROR(s.run(replacing ? "update instance" : "insert instance"));
    // Overwrite updates the row in place (same id), so its outbox rows follow it to the new file.
    instance_pk = replacing ? *existing_id : s.last_insert_rowid();
  }
  GW_RETURN_IF_ERROR(
      enqueue_outbox_locked(instance_pk, r, replacing && existing_path != r.storage_path));
  if (replacing) {
    return InsertResult{InsertOutcome::kReplaced,
                        existing_path == r.storage_path ? "" : existing_path};
  }
  InsertResult inserted{InsertOutcome::kInserted, ""};
  if (mark) {
    GW_ASSIGN_OR_RETURN(
        auto s, statement_locked("INSERT INTO ingest_unconfirmed (instance_pk) VALUES (?)"));
    s.bind(1, instance_pk);
    GW_RETURN_IF_ERROR(s.run("mark instance unconfirmed"));
    inserted.marker = s.last_insert_rowid();
  }
  return inserted;
}

Result<bool> SqliteIndex::references_file(const std::string& storage_path) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s,
                      statement_locked("SELECT 1 FROM instances WHERE storage_path = ? LIMIT 1"));
  s.bind(1, storage_path);
  return s.step("find instance by storage path");
}

Result<std::int64_t> SqliteIndex::count_instances() {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked("SELECT count(*) FROM instances"));
  GW_ASSIGN_OR_RETURN(bool row, s.step("count instances"));
  if (!row) return make_error(ErrorCode::kDatabase, "count instances: no row");
  return s.int64(0);
}

Result<int> SqliteIndex::schema_version() {
  std::lock_guard lock(mu_);
  return user_version_locked();
}

}  // namespace gw::index
