#include "index/sqlite/sqlite_index.h"

#include <sqlite3.h>

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

/// The smallest string greater than every string starting with `prefix` (byte order, which is
/// SQLite's BINARY collation), or nullopt when there is none. `col >= prefix AND col < upper`
/// is a prefix match that can use an index, with no LIKE escaping.
std::optional<std::string> prefix_upper_bound(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::nullopt;
}

// Columns of InstanceRecord, in the order read_instance() expects.
constexpr const char* kInstanceSelect = R"sql(
SELECT i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid, i.instance_number,
       i.size_bytes, i.storage_path, i.digest, i.received_at_ms, i.calling_ae, i.called_ae,
       i.peer_address, i.station_name, i.institution_name,
       se.series_instance_uid, se.modality, se.series_description, se.series_number,
       se.body_part_examined,
       st.study_instance_uid, st.study_date, st.study_time, st.study_description,
       st.accession_number, st.study_id, st.referring_physician,
       p.patient_id, p.patient_name, p.birth_date, p.sex,
       p.key_version, p.patient_id_enc, p.patient_name_enc, p.birth_date_enc, p.sex_enc,
       st.key_version, st.accession_number_enc, st.referring_physician_enc
FROM instances i
JOIN series se ON se.id = i.series_pk
JOIN studies st ON st.id = se.study_pk
JOIN patients p ON p.id = st.patient_pk
)sql";

}  // namespace

/// Appends a text filter: exact, or a prefix match when `value` ends with '*'. Empty = no filter.
Status SqliteIndex::add_text_filter_locked(const char* column, const std::string& value,
                                           bool sealed, std::string& where,
                                           std::vector<std::string>& args) const {
  if (value.empty()) return core::ok_status();
  if (sealed && codec_->encrypting()) {
    if (value.back() == '*') {
      if (value.size() == 1) return core::ok_status();  // "*" matches everything
      std::string_view name(column);
      name.remove_prefix(name.find('.') + 1);  // "p.patient_id" -> "patient_id"
      return make_error(ErrorCode::kInvalidArgument,
                        std::string(name) +
                            ": prefix search is not available on an encrypted field; search "
                            "the exact value");
    }
    const auto values = codec_->match_values(value);
    where.append(" AND ").append(column).append(" IN (");
    for (std::size_t i = 0; i < values.size(); ++i) {
      where.append(i == 0 ? "?" : ", ?");
      args.push_back(values[i]);
    }
    where.append(")");
    return core::ok_status();
  }
  if (value.back() != '*') {
    where.append(" AND ").append(column).append(" = ?");
    args.push_back(value);
    return core::ok_status();
  }
  std::string prefix = value.substr(0, value.size() - 1);
  if (prefix.empty()) return core::ok_status();  // "*" matches everything
  where.append(" AND ").append(column).append(" >= ?");
  args.push_back(prefix);
  if (auto upper = prefix_upper_bound(prefix)) {
    where.append(" AND ").append(column).append(" < ?");
    args.push_back(std::move(*upper));
  }
  return core::ok_status();
}

void SqliteIndex::DbDeleter::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void SqliteIndex::StmtDeleter::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

SqliteIndex::SqliteIndex(DbPtr db, bool synchronous)
    : synchronous_(synchronous),
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

  std::unique_ptr<SqliteIndex> index(new SqliteIndex(std::move(db), synchronous));
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
  // After journal_mode: synchronous=FULL fsyncs the WAL on every commit. NORMAL (storage.fsync:
  // false) keeps the database consistent but may lose the last commits on power loss.
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

namespace {

Result<InstanceRecord> read_instance(const auto& s, const PhiCodec& codec) {
  InstanceRecord r;
  int c = 0;
  r.sop_instance_uid = s.text(c++);
  r.sop_class_uid = s.text(c++);
  r.transfer_syntax_uid = s.text(c++);
  r.instance_number = s.text(c++);
  r.size_bytes = s.int64(c++);
  r.storage_path = s.text(c++);
  r.digest = s.text(c++);
  r.received_at_ms = s.int64(c++);
  r.calling_ae = s.text(c++);
  r.called_ae = s.text(c++);
  r.peer_address = s.text(c++);
  r.station_name = s.text(c++);
  r.institution_name = s.text(c++);
  r.series_instance_uid = s.text(c++);
  r.modality = s.text(c++);
  r.series_description = s.text(c++);
  r.series_number = s.text(c++);
  r.body_part_examined = s.text(c++);
  r.study_instance_uid = s.text(c++);
  r.study_date = s.text(c++);
  r.study_time = s.text(c++);
  r.study_description = s.text(c++);
  r.accession_number = s.text(c++);
  r.study_id = s.text(c++);
  r.referring_physician = s.text(c++);
  r.patient_id = s.text(c++);
  r.patient_name = s.text(c++);
  r.patient_birth_date = s.text(c++);
  r.patient_sex = s.text(c++);
  // The PHI columns as stored (ADR 010): opened with the codec's keys.
  StoredPatient patient;
  patient.key_version = static_cast<std::uint32_t>(s.int64(c++));
  patient.patient_id = {r.patient_id, s.blob(c++)};
  patient.patient_name = {r.patient_name, s.blob(c++)};
  patient.birth_date = {r.patient_birth_date, s.blob(c++)};
  patient.sex = {r.patient_sex, s.blob(c++)};
  StoredStudy study;
  study.key_version = static_cast<std::uint32_t>(s.int64(c++));
  study.accession_number = {r.accession_number, s.blob(c++)};
  study.referring_physician = {r.referring_physician, s.blob(c++)};
  GW_ASSIGN_OR_RETURN(auto p, codec.open(patient));
  GW_ASSIGN_OR_RETURN(auto st, codec.open(study));
  r.patient_id = std::move(p.patient_id);
  r.patient_name = std::move(p.patient_name);
  r.patient_birth_date = std::move(p.birth_date);
  r.patient_sex = std::move(p.sex);
  r.accession_number = std::move(st.accession_number);
  r.referring_physician = std::move(st.referring_physician);
  return r;
}

}  // namespace

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

std::vector<Result<InsertResult>> SqliteIndex::write_batch(
    const std::vector<PendingInsert>& items) {
  std::vector<Result<InsertResult>> results;
  results.reserve(items.size());
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  if (auto st = tx.begin(); !st.ok()) {
    for (std::size_t i = 0; i < items.size(); ++i) results.emplace_back(st.error());
    return results;
  }
  for (const auto& item : items) {
    const InstanceRecord& r = *item.record;
    if (r.sop_instance_uid.empty() || r.series_instance_uid.empty() ||
        r.study_instance_uid.empty() || r.storage_path.empty()) {
      results.emplace_back(
          make_error(ErrorCode::kInvalidArgument,
                     "insert instance: SOP/series/study UID and storage path are required"));
      continue;
    }
    // A savepoint per record: one record's failure (a rejected duplicate, a constraint) leaves
    // the others of the batch intact.
    if (auto st = exec_locked("SAVEPOINT one"); !st.ok()) {
      results.emplace_back(st.error());
      continue;
    }
    results.push_back(insert_one_locked(r, item.policy));
    if (!results.back().ok()) (void)exec_locked("ROLLBACK TO one");
    (void)exec_locked("RELEASE one");
  }
  if (auto st = tx.commit(); !st.ok()) {
    for (auto& r : results) r = st.error();
  }
  return results;
}

Result<InsertResult> SqliteIndex::insert_one_locked(const InstanceRecord& r,
                                                    DuplicatePolicy policy) {
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
      // A resend forwards again: the kept row's file goes to this record's destinations.
      GW_RETURN_IF_ERROR(enqueue_outbox_locked(*existing_id, r));
      return InsertResult{InsertOutcome::kDuplicateKept, same_file ? "" : r.storage_path};
    }
    if (policy == DuplicatePolicy::kReject) {
      return make_error(ErrorCode::kAlreadyExists,
                        "instance already stored: sop_instance_uid=" + r.sop_instance_uid);
    }
  }

  const bool replacing = existing_id.has_value();
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
RETURNING id
)sql"));
    s.bind(1, r.patient_id).bind(2, r.patient_name).bind(3, r.patient_birth_date);
    s.bind(4, r.patient_sex).bind(5, r.received_at_ms);
    GW_ASSIGN_OR_RETURN(bool row, s.step("upsert patient"));
    if (!row) return make_error(ErrorCode::kDatabase, "upsert patient: no id returned");
    patient_pk = s.int64(0);
    GW_RETURN_IF_ERROR(s.run("upsert patient"));
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
RETURNING id
)sql"));
    s.bind(1, r.study_instance_uid).bind(2, patient_pk).bind(3, r.study_date);
    s.bind(4, r.study_time).bind(5, r.study_description).bind(6, r.accession_number);
    s.bind(7, r.study_id).bind(8, r.referring_physician).bind(9, r.received_at_ms);
    GW_ASSIGN_OR_RETURN(bool row, s.step("upsert study"));
    if (!row) return make_error(ErrorCode::kDatabase, "upsert study: no id returned");
    study_pk = s.int64(0);
    GW_RETURN_IF_ERROR(s.run("upsert study"));
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
RETURNING id
)sql"));
    s.bind(1, r.series_instance_uid).bind(2, study_pk).bind(3, r.modality);
    s.bind(4, r.series_description).bind(5, r.series_number).bind(6, r.body_part_examined);
    s.bind(7, r.received_at_ms);
    GW_ASSIGN_OR_RETURN(bool row, s.step("upsert series"));
    if (!row) return make_error(ErrorCode::kDatabase, "upsert series: no id returned");
    series_pk = s.int64(0);
    GW_RETURN_IF_ERROR(s.run("upsert series"));
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
  GW_RETURN_IF_ERROR(enqueue_outbox_locked(instance_pk, r));

  if (replacing) {
    return InsertResult{InsertOutcome::kReplaced,
                        existing_path == r.storage_path ? "" : existing_path};
  }
  return InsertResult{InsertOutcome::kInserted, ""};
}

Result<bool> SqliteIndex::references_file(const std::string& storage_path) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s,
                      statement_locked("SELECT 1 FROM instances WHERE storage_path = ? LIMIT 1"));
  s.bind(1, storage_path);
  return s.step("find instance by storage path");
}

Result<std::optional<InstanceRecord>> SqliteIndex::find_instance(const std::string& sop_uid) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(
      auto s, statement_locked(std::string(kInstanceSelect) + "WHERE i.sop_instance_uid = ?"));
  s.bind(1, sop_uid);
  GW_ASSIGN_OR_RETURN(bool row, s.step("find instance"));
  if (!row) return std::optional<InstanceRecord>();
  GW_ASSIGN_OR_RETURN(auto record, read_instance(s, *codec_));
  return std::optional<InstanceRecord>(std::move(record));
}

Result<std::vector<StudySummary>> SqliteIndex::query_studies_locked(
    const std::string& where, const std::vector<std::string>& args, std::int64_t limit,
    std::int64_t offset) {
  // Filter, order and page first; aggregate only the rows of the page.
  const std::string sql = R"sql(
WITH page AS (
  SELECT st.id AS id, st.study_instance_uid, st.study_date, st.study_time, st.study_description,
         st.accession_number, p.patient_id, p.patient_name, st.updated_at_ms,
         p.key_version AS patient_key_version, p.patient_id_enc, p.patient_name_enc,
         st.key_version AS study_key_version, st.accession_number_enc
  FROM studies st
  JOIN patients p ON p.id = st.patient_pk
  WHERE 1 = 1)sql" + where +
                          R"sql(
  ORDER BY st.updated_at_ms DESC, st.id DESC
  LIMIT ? OFFSET ?
)
SELECT page.study_instance_uid, page.study_date, page.study_time, page.study_description,
       page.accession_number, page.patient_id, page.patient_name,
       coalesce((SELECT group_concat(m, '\')
                 FROM (SELECT DISTINCT modality AS m FROM series
                       WHERE study_pk = page.id AND modality <> '' ORDER BY m)), ''),
       count(DISTINCT se.id), count(i.id), coalesce(sum(i.size_bytes), 0),
       coalesce(max(i.received_at_ms), 0),
       page.patient_key_version, page.patient_id_enc, page.patient_name_enc,
       page.study_key_version, page.accession_number_enc
FROM page
LEFT JOIN series se ON se.study_pk = page.id
LEFT JOIN instances i ON i.series_pk = se.id
GROUP BY page.id
ORDER BY page.updated_at_ms DESC, page.id DESC
)sql";
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(sql));
  int n = 0;
  for (const auto& arg : args) s.bind(++n, arg);
  s.bind(n + 1, limit).bind(n + 2, offset);
  std::vector<StudySummary> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list studies"));
    if (!row) break;
    StudySummary st;
    st.study_instance_uid = s.text(0);
    st.study_date = s.text(1);
    st.study_time = s.text(2);
    st.study_description = s.text(3);
    st.accession_number = s.text(4);
    st.patient_id = s.text(5);
    st.patient_name = s.text(6);
    st.modalities = s.text(7);
    st.series_count = s.int64(8);
    st.instance_count = s.int64(9);
    st.size_bytes = s.int64(10);
    st.last_received_at_ms = s.int64(11);
    StoredPatient patient;
    patient.key_version = static_cast<std::uint32_t>(s.int64(12));
    patient.patient_id = {st.patient_id, s.blob(13)};
    patient.patient_name = {st.patient_name, s.blob(14)};
    StoredStudy study;
    study.key_version = static_cast<std::uint32_t>(s.int64(15));
    study.accession_number = {st.accession_number, s.blob(16)};
    GW_ASSIGN_OR_RETURN(auto p, codec_->open(patient));
    GW_ASSIGN_OR_RETURN(auto phi, codec_->open(study));
    st.patient_id = std::move(p.patient_id);
    st.patient_name = std::move(p.patient_name);
    st.accession_number = std::move(phi.accession_number);
    out.push_back(std::move(st));
  }
  return out;
}

Result<std::vector<StudySummary>> SqliteIndex::list_studies(const StudyQuery& q) {
  if (q.limit < 0 || q.offset < 0) {
    return make_error(ErrorCode::kInvalidArgument, "list studies: negative limit or offset");
  }
  std::string where;
  std::vector<std::string> args;
  std::lock_guard lock(mu_);
  GW_RETURN_IF_ERROR(add_text_filter_locked("p.patient_id", q.patient_id, true, where, args));
  GW_RETURN_IF_ERROR(add_text_filter_locked("p.patient_name", q.patient_name, true, where, args));
  GW_RETURN_IF_ERROR(
      add_text_filter_locked("st.accession_number", q.accession_number, true, where, args));
  if (!q.modality.empty()) {
    std::string sub;
    GW_RETURN_IF_ERROR(add_text_filter_locked("f.modality", q.modality, false, sub, args));
    if (!sub.empty()) {
      where += " AND EXISTS (SELECT 1 FROM series f WHERE f.study_pk = st.id" + sub + ")";
    }
  }
  if (!q.study_date_from.empty() || !q.study_date_to.empty()) where += " AND st.study_date <> ''";
  if (!q.study_date_from.empty()) {
    where += " AND st.study_date >= ?";
    args.push_back(q.study_date_from);
  }
  if (!q.study_date_to.empty()) {
    where += " AND st.study_date <= ?";
    args.push_back(q.study_date_to);
  }
  return query_studies_locked(where, args, q.limit, q.offset);
}

Result<std::optional<StudySummary>> SqliteIndex::find_study(const std::string& study_uid) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto studies,
                      query_studies_locked(" AND st.study_instance_uid = ?", {study_uid}, 1, 0));
  if (studies.empty()) return std::optional<StudySummary>();
  return std::optional<StudySummary>(std::move(studies.front()));
}

Result<std::vector<SeriesSummary>> SqliteIndex::list_series(const std::string& study_uid) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT se.series_instance_uid, st.study_instance_uid, se.modality, se.series_description,
       se.series_number, count(i.id), coalesce(sum(i.size_bytes), 0)
FROM studies st
JOIN series se ON se.study_pk = st.id
LEFT JOIN instances i ON i.series_pk = se.id
WHERE st.study_instance_uid = ?
GROUP BY se.id
ORDER BY CAST(se.series_number AS INTEGER), se.series_number, se.id
)sql"));
  s.bind(1, study_uid);
  std::vector<SeriesSummary> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list series"));
    if (!row) break;
    SeriesSummary se;
    se.series_instance_uid = s.text(0);
    se.study_instance_uid = s.text(1);
    se.modality = s.text(2);
    se.series_description = s.text(3);
    se.series_number = s.text(4);
    se.instance_count = s.int64(5);
    se.size_bytes = s.int64(6);
    out.push_back(std::move(se));
  }
  return out;
}

Result<std::vector<InstanceRecord>> SqliteIndex::list_instances(const std::string& series_uid,
                                                                std::int64_t limit,
                                                                std::int64_t offset) {
  if (limit < 0 || offset < 0) {
    return make_error(ErrorCode::kInvalidArgument, "list instances: negative limit or offset");
  }
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string(kInstanceSelect) + R"sql(
WHERE se.series_instance_uid = ?
ORDER BY CAST(i.instance_number AS INTEGER), i.instance_number, i.id
LIMIT ? OFFSET ?
)sql"));
  s.bind(1, series_uid).bind(2, limit).bind(3, offset);
  std::vector<InstanceRecord> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list instances"));
    if (!row) break;
    GW_ASSIGN_OR_RETURN(auto record, read_instance(s, *codec_));
    out.push_back(std::move(record));
  }
  return out;
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
