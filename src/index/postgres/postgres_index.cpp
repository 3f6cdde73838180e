#include "index/postgres/postgres_index.h"

#include <string_view>
#include <utility>

#include "core/log.h"
#include "index/postgres/migrations.h"
#include "index/postgres/pg_connection.h"
#include "index/postgres/pg_pool.h"
#include "index/postgres/pg_sql.h"

namespace gw::index {

using core::ErrorCode;
using core::make_error;
using pg::Params;
using pg::PgConnection;
using pg::Rows;

namespace {

/// Tries a deadlocked or serialization-failed record again, in its own savepoint.
constexpr int kRecordAttempts = 3;
/// pg_advisory_lock key of the migration runner ("dgw-mig" in ASCII).
constexpr const char* kMigrationLock = "SELECT pg_advisory_lock(28270519211452775)";
constexpr const char* kMigrationUnlock = "SELECT pg_advisory_unlock(28270519211452775)";

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

Result<InstanceRecord> read_instance(const Rows& rows, int row, const PhiCodec& codec) {
  InstanceRecord r;
  int c = 0;
  r.sop_instance_uid = rows.text(row, c++);
  r.sop_class_uid = rows.text(row, c++);
  r.transfer_syntax_uid = rows.text(row, c++);
  r.instance_number = rows.text(row, c++);
  r.size_bytes = rows.int64(row, c++);
  r.storage_path = rows.text(row, c++);
  r.digest = rows.text(row, c++);
  r.received_at_ms = rows.int64(row, c++);
  r.calling_ae = rows.text(row, c++);
  r.called_ae = rows.text(row, c++);
  r.peer_address = rows.text(row, c++);
  r.station_name = rows.text(row, c++);
  r.institution_name = rows.text(row, c++);
  r.series_instance_uid = rows.text(row, c++);
  r.modality = rows.text(row, c++);
  r.series_description = rows.text(row, c++);
  r.series_number = rows.text(row, c++);
  r.body_part_examined = rows.text(row, c++);
  r.study_instance_uid = rows.text(row, c++);
  r.study_date = rows.text(row, c++);
  r.study_time = rows.text(row, c++);
  r.study_description = rows.text(row, c++);
  r.accession_number = rows.text(row, c++);
  r.study_id = rows.text(row, c++);
  r.referring_physician = rows.text(row, c++);
  r.patient_id = rows.text(row, c++);
  r.patient_name = rows.text(row, c++);
  r.patient_birth_date = rows.text(row, c++);
  r.patient_sex = rows.text(row, c++);
  // The PHI columns as stored (ADR 010): opened with the codec's keys.
  StoredPatient patient;
  patient.key_version = static_cast<std::uint32_t>(rows.int64(row, c++));
  patient.patient_id = {r.patient_id, rows.bytea(row, c++)};
  patient.patient_name = {r.patient_name, rows.bytea(row, c++)};
  patient.birth_date = {r.patient_birth_date, rows.bytea(row, c++)};
  patient.sex = {r.patient_sex, rows.bytea(row, c++)};
  StoredStudy study;
  study.key_version = static_cast<std::uint32_t>(rows.int64(row, c++));
  study.accession_number = {r.accession_number, rows.bytea(row, c++)};
  study.referring_physician = {r.referring_physician, rows.bytea(row, c++)};
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

/// Holds the migration advisory lock for the session while it lives.
class MigrationLock {
 public:
  explicit MigrationLock(PgConnection& conn) : conn_(conn) {}
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;
  ~MigrationLock() {
    if (held_) (void)conn_.exec_script(kMigrationUnlock, "release migration lock");
  }
  Status take() {
    GW_RETURN_IF_ERROR(conn_.exec_script(kMigrationLock, "take migration lock"));
    held_ = true;
    return core::ok_status();
  }

 private:
  PgConnection& conn_;
  bool held_ = false;
};

Result<int> current_version(PgConnection& conn) {
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn.exec("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  return static_cast<int>(rows.int64(0, 0));
}

}  // namespace

PostgresIndex::PostgresIndex(std::unique_ptr<pg::PgPool> pool)
    : pool_(std::move(pool)),
      batcher_([this](const std::vector<Batcher::Slot*>& batch) {
        std::vector<PendingInsert> items;
        items.reserve(batch.size());
        for (const auto* slot : batch) items.push_back(slot->request);
        auto results = write_batch(items);
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->response = std::move(results[i]);
      }),
      codec_(std::make_shared<const PhiCodec>(CipherFormat::kOpenPgp, nullptr)) {}

PostgresIndex::~PostgresIndex() = default;

Result<std::unique_ptr<PostgresIndex>> PostgresIndex::open(const PostgresOptions& options) {
  pg::ConnectOptions connect;
  connect.url = options.url;
  connect.password = options.password;
  connect.synchronous = options.synchronous;
  GW_ASSIGN_OR_RETURN(auto pool, pg::PgPool::create(connect, options.pool_size));
  std::unique_ptr<PostgresIndex> index(new PostgresIndex(std::move(pool)));
  GW_RETURN_IF_ERROR(index->migrate());
  GW_ASSIGN_OR_RETURN(int version, index->schema_version());
  core::logger("index")->info(
      "index opened backend=postgresql server=\"{}\" schema_version={} pool={}",
      index->pool_->server().describe(), version, index->pool_->size());
  return index;
}

Status PostgresIndex::migrate() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  MigrationLock lock(*conn);
  GW_RETURN_IF_ERROR(lock.take());
  GW_RETURN_IF_ERROR(conn->exec_script(R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
))sql",
                                       "create schema_migrations"));
  const auto& migrations = postgres_migrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  GW_ASSIGN_OR_RETURN(int current, current_version(*conn));
  if (current > latest) {
    return make_error(ErrorCode::kDatabase, "index schema version " + std::to_string(current) +
                                                " is newer than this build supports (" +
                                                std::to_string(latest) + ")");
  }
  for (const auto& migration : migrations) {
    if (migration.version <= current) continue;
    pg::Transaction tx(*conn);
    GW_RETURN_IF_ERROR(tx.begin());
    GW_RETURN_IF_ERROR(
        conn->exec_script(migration.sql, "migration " + std::to_string(migration.version)));
    GW_RETURN_IF_ERROR(conn->exec("INSERT INTO schema_migrations (version) VALUES ($1::integer)",
                                  Params().add(migration.version)));
    GW_RETURN_IF_ERROR(tx.commit());
    core::logger("index")->info("index migration applied backend=postgresql version={}",
                                migration.version);
  }
  return core::ok_status();
}

Result<int> PostgresIndex::schema_version() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  return current_version(*conn);
}

// ---- instances ----

Result<InsertResult> PostgresIndex::insert_instance(const InstanceRecord& r,
                                                    DuplicatePolicy policy) {
  // Group commit: concurrent callers share one transaction.
  return batcher_.run(PendingInsert{&r, policy});
}

std::vector<Result<InsertResult>> PostgresIndex::insert_instances(
    const std::vector<InstanceRecord>& records, DuplicatePolicy policy) {
  std::vector<PendingInsert> items;
  items.reserve(records.size());
  for (const auto& r : records) items.push_back({&r, policy});
  return write_batch(items);
}

std::vector<Result<InsertResult>> PostgresIndex::write_batch(
    const std::vector<PendingInsert>& items) {
  std::vector<Result<InsertResult>> results;
  results.reserve(items.size());
  auto fail_all = [&](const core::Error& e) {
    results.clear();
    for (std::size_t i = 0; i < items.size(); ++i) results.emplace_back(e);
    return std::move(results);
  };
  auto conn = pool_->acquire();
  if (!conn.ok()) return fail_all(conn.error());
  pg::Transaction tx(**conn);
  if (auto st = tx.begin(); !st.ok()) return fail_all(st.error());
  for (const auto& item : items) {
    const InstanceRecord& r = *item.record;
    if (r.sop_instance_uid.empty() || r.series_instance_uid.empty() ||
        r.study_instance_uid.empty() || r.storage_path.empty()) {
      results.emplace_back(
          make_error(ErrorCode::kInvalidArgument,
                     "insert instance: SOP/series/study UID and storage path are required"));
      continue;
    }
    results.push_back(insert_one(**conn, r, item.policy));
  }
  if (auto st = tx.commit(); !st.ok()) return fail_all(st.error());
  return results;
}

Result<InsertResult> PostgresIndex::insert_one(PgConnection& conn, const InstanceRecord& r,
                                               DuplicatePolicy policy) {
  // A savepoint per record: one record's failure (a rejected duplicate, a constraint) leaves
  // the others of the batch intact. Another node's transaction may deadlock with this one on a
  // shared patient or study row; the server aborts one of them, which tries its record again.
  core::Error last = make_error(ErrorCode::kInternal, "insert instance: not attempted");
  for (int attempt = 0; attempt < kRecordAttempts; ++attempt) {
    GW_RETURN_IF_ERROR(conn.exec_script("SAVEPOINT one", "savepoint"));
    bool lost_race = false;
    auto result = try_insert_one(conn, r, policy, lost_race);
    if (result.ok()) {
      GW_RETURN_IF_ERROR(conn.exec_script("RELEASE SAVEPOINT one", "release savepoint"));
      return result;
    }
    GW_RETURN_IF_ERROR(conn.exec_script("ROLLBACK TO SAVEPOINT one", "rollback to savepoint"));
    GW_RETURN_IF_ERROR(conn.exec_script("RELEASE SAVEPOINT one", "release savepoint"));
    last = result.error();
    // Retry a lost race (the instance row appeared meanwhile: now it is a duplicate) and a
    // deadlock; anything else is the record's answer.
    if (!lost_race && last.code != ErrorCode::kConflict) return last;
  }
  return last;
}

Result<InsertResult> PostgresIndex::try_insert_one(PgConnection& conn, const InstanceRecord& r,
                                                   DuplicatePolicy policy, bool& lost_race) {
  std::optional<std::int64_t> existing_id;
  std::string existing_path;
  {
    // FOR UPDATE: a concurrent overwrite of the same instance waits for this one.
    GW_ASSIGN_OR_RETURN(
        auto rows, conn.exec("SELECT id, storage_path FROM instances WHERE sop_instance_uid = $1 "
                             "FOR UPDATE",
                             Params().add(r.sop_instance_uid)));
    if (!rows.empty()) {
      existing_id = rows.int64(0, 0);
      existing_path = rows.text(0, 1);
    }
  }
  if (existing_id) {
    const bool same_file = existing_path == r.storage_path;
    if (policy == DuplicatePolicy::kKeepFirst) {
      GW_RETURN_IF_ERROR(enqueue_outbox(conn, *existing_id, r));
      return InsertResult{InsertOutcome::kDuplicateKept, same_file ? "" : r.storage_path};
    }
    if (policy == DuplicatePolicy::kReject) {
      return make_error(ErrorCode::kAlreadyExists,
                        "instance already stored: sop_instance_uid=" + r.sop_instance_uid);
    }
  }
  const bool replacing = existing_id.has_value();

  const auto phi = codec();
  std::int64_t patient_pk = 0;
  if (phi->encrypting()) {
    GW_ASSIGN_OR_RETURN(patient_pk, upsert_sealed_patient(conn, *phi, r));
  } else {
    GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
INSERT INTO patients AS p (patient_id, patient_name, birth_date, sex, created_at_ms,
                           updated_at_ms)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (patient_id, patient_name) DO UPDATE SET
  birth_date = coalesce(nullif(excluded.birth_date, ''), p.birth_date),
  sex = coalesce(nullif(excluded.sex, ''), p.sex),
  updated_at_ms = greatest(p.updated_at_ms, excluded.updated_at_ms)
RETURNING id
)sql",
                                             Params()
                                                 .add(r.patient_id)
                                                 .add(r.patient_name)
                                                 .add(r.patient_birth_date)
                                                 .add(r.patient_sex)
                                                 .add(r.received_at_ms)));
    if (rows.empty()) return make_error(ErrorCode::kDatabase, "upsert patient: no id returned");
    patient_pk = rows.int64(0, 0);
  }

  std::int64_t study_pk = 0;
  if (phi->encrypting()) {
    GW_ASSIGN_OR_RETURN(study_pk, upsert_sealed_study(conn, *phi, r, patient_pk));
  } else {
    GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
INSERT INTO studies AS s (study_instance_uid, patient_pk, study_date, study_time,
                          study_description, accession_number, study_id, referring_physician,
                          created_at_ms, updated_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
ON CONFLICT (study_instance_uid) DO UPDATE SET
  patient_pk = excluded.patient_pk,
  study_date = coalesce(nullif(excluded.study_date, ''), s.study_date),
  study_time = coalesce(nullif(excluded.study_time, ''), s.study_time),
  study_description = coalesce(nullif(excluded.study_description, ''), s.study_description),
  accession_number = coalesce(nullif(excluded.accession_number, ''), s.accession_number),
  study_id = coalesce(nullif(excluded.study_id, ''), s.study_id),
  referring_physician = coalesce(nullif(excluded.referring_physician, ''),
                                 s.referring_physician),
  updated_at_ms = greatest(s.updated_at_ms, excluded.updated_at_ms)
RETURNING id
)sql",
                                             Params()
                                                 .add(r.study_instance_uid)
                                                 .add(patient_pk)
                                                 .add(r.study_date)
                                                 .add(r.study_time)
                                                 .add(r.study_description)
                                                 .add(r.accession_number)
                                                 .add(r.study_id)
                                                 .add(r.referring_physician)
                                                 .add(r.received_at_ms)));
    if (rows.empty()) return make_error(ErrorCode::kDatabase, "upsert study: no id returned");
    study_pk = rows.int64(0, 0);
  }

  std::int64_t series_pk = 0;
  {
    GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
INSERT INTO series AS s (series_instance_uid, study_pk, modality, series_description,
                         series_number, body_part_examined, created_at_ms, updated_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
ON CONFLICT (series_instance_uid) DO UPDATE SET
  study_pk = excluded.study_pk,
  modality = coalesce(nullif(excluded.modality, ''), s.modality),
  series_description = coalesce(nullif(excluded.series_description, ''), s.series_description),
  series_number = coalesce(nullif(excluded.series_number, ''), s.series_number),
  body_part_examined = coalesce(nullif(excluded.body_part_examined, ''), s.body_part_examined),
  updated_at_ms = greatest(s.updated_at_ms, excluded.updated_at_ms)
RETURNING id
)sql",
                                             Params()
                                                 .add(r.series_instance_uid)
                                                 .add(study_pk)
                                                 .add(r.modality)
                                                 .add(r.series_description)
                                                 .add(r.series_number)
                                                 .add(r.body_part_examined)
                                                 .add(r.received_at_ms)));
    if (rows.empty()) return make_error(ErrorCode::kDatabase, "upsert series: no id returned");
    series_pk = rows.int64(0, 0);
  }

  Params instance;
  instance.add(r.sop_instance_uid).add(series_pk).add(r.sop_class_uid).add(r.transfer_syntax_uid);
  instance.add(r.instance_number).add(r.size_bytes).add(r.storage_path).add(r.digest);
  instance.add(r.received_at_ms).add(r.calling_ae).add(r.called_ae).add(r.peer_address);
  instance.add(r.station_name).add(r.institution_name);
  std::int64_t instance_pk = 0;
  if (replacing) {
    // Overwrite updates the row in place (same id), so its outbox rows follow it to the new file.
    instance.add(*existing_id);
    GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
UPDATE instances SET
  sop_instance_uid = $1, series_pk = $2, sop_class_uid = $3, transfer_syntax_uid = $4,
  instance_number = $5, size_bytes = $6, storage_path = $7, digest = $8, received_at_ms = $9,
  calling_ae = $10, called_ae = $11, peer_address = $12, station_name = $13,
  institution_name = $14
WHERE id = $15
)sql",
                                             instance));
    (void)rows;
    instance_pk = *existing_id;
  } else {
    // DO NOTHING: another node inserted the same instance since the SELECT above; the caller
    // starts over and finds it as a duplicate.
    GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
INSERT INTO instances (sop_instance_uid, series_pk, sop_class_uid, transfer_syntax_uid,
                       instance_number, size_bytes, storage_path, digest, received_at_ms,
                       calling_ae, called_ae, peer_address, station_name, institution_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (sop_instance_uid) DO NOTHING
RETURNING id
)sql",
                                             instance));
    if (rows.empty()) {
      lost_race = true;
      return make_error(ErrorCode::kConflict, "insert instance: inserted concurrently");
    }
    instance_pk = rows.int64(0, 0);
  }
  GW_RETURN_IF_ERROR(enqueue_outbox(conn, instance_pk, r));

  if (replacing) {
    return InsertResult{InsertOutcome::kReplaced,
                        existing_path == r.storage_path ? "" : existing_path};
  }
  return InsertResult{InsertOutcome::kInserted, ""};
}

Result<bool> PostgresIndex::references_file(const std::string& storage_path) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn->exec("SELECT 1 FROM instances WHERE storage_path = $1 LIMIT 1",
                                 Params().add(storage_path)));
  return !rows.empty();
}

Result<std::optional<InstanceRecord>> PostgresIndex::find_instance(const std::string& sop_uid) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn->exec(std::string(kInstanceSelect) + "WHERE i.sop_instance_uid = $1",
                                 Params().add(sop_uid)));
  if (rows.empty()) return std::optional<InstanceRecord>();
  GW_ASSIGN_OR_RETURN(auto record, read_instance(rows, 0, *codec()));
  return std::optional<InstanceRecord>(std::move(record));
}

Result<std::vector<StudySummary>> PostgresIndex::query_studies(PgConnection& conn,
                                                               const std::string& where,
                                                               Params params, std::int64_t limit,
                                                               std::int64_t offset) {
  const std::string limit_ph = params.placeholder(limit);
  const std::string offset_ph = params.placeholder(offset);
  // Filter, order and page first; aggregate only the rows of the page.
  const std::string sql = R"sql(
WITH page AS (
  SELECT st.id, st.study_instance_uid, st.study_date, st.study_time, st.study_description,
         st.accession_number, p.patient_id, p.patient_name, st.updated_at_ms,
         p.key_version AS patient_key_version, p.patient_id_enc, p.patient_name_enc,
         st.key_version AS study_key_version, st.accession_number_enc
  FROM studies st
  JOIN patients p ON p.id = st.patient_pk
  WHERE true)sql" + where +
                          R"sql(
  ORDER BY st.updated_at_ms DESC, st.id DESC
  LIMIT )sql" + limit_ph + " OFFSET " +
                          offset_ph + R"sql(
)
SELECT page.study_instance_uid, page.study_date, page.study_time, page.study_description,
       page.accession_number, page.patient_id, page.patient_name,
       coalesce((SELECT string_agg(DISTINCT m.modality, '\' ORDER BY m.modality)
                 FROM series m WHERE m.study_pk = page.id AND m.modality <> ''), ''),
       agg.series_count, agg.instance_count, agg.size_bytes, agg.last_received_at_ms,
       page.patient_key_version, page.patient_id_enc, page.patient_name_enc,
       page.study_key_version, page.accession_number_enc
FROM page
CROSS JOIN LATERAL (
  SELECT count(DISTINCT se.id) AS series_count, count(i.id) AS instance_count,
         coalesce(sum(i.size_bytes), 0) AS size_bytes,
         coalesce(max(i.received_at_ms), 0) AS last_received_at_ms
  FROM series se
  LEFT JOIN instances i ON i.series_pk = se.id
  WHERE se.study_pk = page.id) agg
ORDER BY page.updated_at_ms DESC, page.id DESC
)sql";
  GW_ASSIGN_OR_RETURN(auto rows, conn.exec(sql, params));
  const auto phi = codec();
  std::vector<StudySummary> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int row = 0; row < rows.size(); ++row) {
    StudySummary st;
    st.study_instance_uid = rows.text(row, 0);
    st.study_date = rows.text(row, 1);
    st.study_time = rows.text(row, 2);
    st.study_description = rows.text(row, 3);
    st.accession_number = rows.text(row, 4);
    st.patient_id = rows.text(row, 5);
    st.patient_name = rows.text(row, 6);
    st.modalities = rows.text(row, 7);
    st.series_count = rows.int64(row, 8);
    st.instance_count = rows.int64(row, 9);
    st.size_bytes = rows.int64(row, 10);
    st.last_received_at_ms = rows.int64(row, 11);
    StoredPatient patient;
    patient.key_version = static_cast<std::uint32_t>(rows.int64(row, 12));
    patient.patient_id = {st.patient_id, rows.bytea(row, 13)};
    patient.patient_name = {st.patient_name, rows.bytea(row, 14)};
    StoredStudy study;
    study.key_version = static_cast<std::uint32_t>(rows.int64(row, 15));
    study.accession_number = {st.accession_number, rows.bytea(row, 16)};
    GW_ASSIGN_OR_RETURN(auto p, phi->open(patient));
    GW_ASSIGN_OR_RETURN(auto sphi, phi->open(study));
    st.patient_id = std::move(p.patient_id);
    st.patient_name = std::move(p.patient_name);
    st.accession_number = std::move(sphi.accession_number);
    out.push_back(std::move(st));
  }
  return out;
}

Result<std::vector<StudySummary>> PostgresIndex::list_studies(const StudyQuery& q) {
  if (q.limit < 0 || q.offset < 0) {
    return make_error(ErrorCode::kInvalidArgument, "list studies: negative limit or offset");
  }
  Params params;
  std::string where;
  const auto phi = codec();
  GW_RETURN_IF_ERROR(add_text_filter(*phi, "p.patient_id", q.patient_id, true, where, params));
  GW_RETURN_IF_ERROR(add_text_filter(*phi, "p.patient_name", q.patient_name, true, where, params));
  GW_RETURN_IF_ERROR(
      add_text_filter(*phi, "st.accession_number", q.accession_number, true, where, params));
  if (!q.modality.empty()) {
    std::string sub;
    pg::add_text_filter("f.modality", q.modality, sub, params);
    if (!sub.empty()) {
      where += " AND EXISTS (SELECT 1 FROM series f WHERE f.study_pk = st.id" + sub + ")";
    }
  }
  if (!q.study_date_from.empty() || !q.study_date_to.empty()) where += " AND st.study_date <> ''";
  if (!q.study_date_from.empty()) {
    where += " AND st.study_date >= " + params.placeholder(q.study_date_from);
  }
  if (!q.study_date_to.empty()) {
    where += " AND st.study_date <= " + params.placeholder(q.study_date_to);
  }
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  return query_studies(*conn, where, std::move(params), q.limit, q.offset);
}

Result<std::optional<StudySummary>> PostgresIndex::find_study(const std::string& study_uid) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  Params params;
  const std::string where = " AND st.study_instance_uid = " + params.placeholder(study_uid);
  GW_ASSIGN_OR_RETURN(auto studies, query_studies(*conn, where, std::move(params), 1, 0));
  if (studies.empty()) return std::optional<StudySummary>();
  return std::optional<StudySummary>(std::move(studies.front()));
}

Result<std::vector<SeriesSummary>> PostgresIndex::list_series(const std::string& study_uid) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string(R"sql(
SELECT se.series_instance_uid, st.study_instance_uid, se.modality, se.series_description,
       se.series_number, count(i.id), coalesce(sum(i.size_bytes), 0)
FROM studies st
JOIN series se ON se.study_pk = st.id
LEFT JOIN instances i ON i.series_pk = se.id
WHERE st.study_instance_uid = $1
GROUP BY se.id, st.study_instance_uid
ORDER BY )sql") + pg::numeric_order("se.series_number") +
                                                ", se.series_number, se.id",
                                            Params().add(study_uid)));
  std::vector<SeriesSummary> out;
  for (int row = 0; row < rows.size(); ++row) {
    SeriesSummary se;
    se.series_instance_uid = rows.text(row, 0);
    se.study_instance_uid = rows.text(row, 1);
    se.modality = rows.text(row, 2);
    se.series_description = rows.text(row, 3);
    se.series_number = rows.text(row, 4);
    se.instance_count = rows.int64(row, 5);
    se.size_bytes = rows.int64(row, 6);
    out.push_back(std::move(se));
  }
  return out;
}

Result<std::vector<InstanceRecord>> PostgresIndex::list_instances(const std::string& series_uid,
                                                                  std::int64_t limit,
                                                                  std::int64_t offset) {
  if (limit < 0 || offset < 0) {
    return make_error(ErrorCode::kInvalidArgument, "list instances: negative limit or offset");
  }
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string(kInstanceSelect) +
                                                "WHERE se.series_instance_uid = $1 ORDER BY " +
                                                pg::numeric_order("i.instance_number") +
                                                ", i.instance_number, i.id LIMIT $2 OFFSET $3",
                                            Params().add(series_uid).add(limit).add(offset)));
  std::vector<InstanceRecord> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  const auto phi = codec();
  for (int row = 0; row < rows.size(); ++row) {
    GW_ASSIGN_OR_RETURN(auto record, read_instance(rows, row, *phi));
    out.push_back(std::move(record));
  }
  return out;
}

Result<std::int64_t> PostgresIndex::count_instances() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT count(*) FROM instances"));
  return rows.int64(0, 0);
}

}  // namespace gw::index
