#include "index/postgres/postgres_index.h"

#include <atomic>
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
  GW_RETURN_IF_ERROR(index->warn_if_plaintext_possible());
  GW_RETURN_IF_ERROR(index->migrate());
  GW_ASSIGN_OR_RETURN(int version, index->schema_version());
  core::logger("index")->info(
      "index opened backend=postgresql server=\"{}\" schema_version={} pool={}",
      index->pool_->server().describe(), version, index->pool_->size());
  return index;
}

Status PostgresIndex::warn_if_plaintext_possible() {
  // Once per process: a reload or a CLI command opening the index again says nothing new.
  static std::atomic<bool> warned{false};
  if (warned) return core::ok_status();
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // The effective values: the URL, libpq's defaults and the environment (PGSSLMODE).
  const std::string sslmode = conn->setting("sslmode");
  if (!pg::may_use_plaintext_over_network(conn->setting("host"), conn->setting("hostaddr"),
                                          sslmode)) {
    return core::ok_status();
  }
  if (warned.exchange(true)) return core::ok_status();
  core::logger("index")->warn(
      "event=database_tls_not_required server=\"{}\" sslmode={} reason=\"libpq may connect "
      "without TLS (or fall back to plaintext) over the network; add ?sslmode=verify-full to "
      "database.url\"",
      pool_->server().describe(), sslmode.empty() ? "prefer" : sslmode);
  return core::ok_status();
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
  GW_RETURN_IF_ERROR(
      enqueue_outbox(conn, instance_pk, r, replacing && existing_path != r.storage_path));

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

Result<std::int64_t> PostgresIndex::count_instances() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT count(*) FROM instances"));
  return rows.int64(0, 0);
}

}  // namespace gw::index
