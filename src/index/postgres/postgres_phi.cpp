// PostgreSQL backend: encryption at rest of the PHI columns (ADR 010). The values are OpenPGP
// messages made by the gateway (the key never reaches the server or its log), so an operator
// can read them with pgcrypto's pgp_sym_decrypt(col, key) in plain SQL.

#include <mutex>

#include "core/clock.h"
#include "index/key_registry.h"
#include "index/postgres/pg_pool.h"
#include "index/postgres/pg_sql.h"
#include "index/postgres/postgres_index.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;
using pg::Params;
using pg::PgConnection;
using pg::Rows;

/// A write whose rows are not needed: only whether it worked.
Status done(Result<Rows> result) {
  if (!result.ok()) return result.error();
  return core::ok_status();
}

constexpr const char* kPatientColumns =
    "id, key_version, patient_id, patient_name, birth_date, sex, patient_id_enc, "
    "patient_name_enc, birth_date_enc, sex_enc";

StoredPatient read_patient(const Rows& rows, int row, int c) {
  StoredPatient p;
  p.key_version = static_cast<std::uint32_t>(rows.int64(row, c));
  p.patient_id.clear = rows.text(row, c + 1);
  p.patient_name.clear = rows.text(row, c + 2);
  p.birth_date.clear = rows.text(row, c + 3);
  p.sex.clear = rows.text(row, c + 4);
  p.patient_id.sealed = rows.bytea(row, c + 5);
  p.patient_name.sealed = rows.bytea(row, c + 6);
  p.birth_date.sealed = rows.bytea(row, c + 7);
  p.sex.sealed = rows.bytea(row, c + 8);
  return p;
}

StoredStudy read_study(const Rows& rows, int row, int c) {
  StoredStudy st;
  st.key_version = static_cast<std::uint32_t>(rows.int64(row, c));
  st.accession_number.clear = rows.text(row, c + 1);
  st.referring_physician.clear = rows.text(row, c + 2);
  st.accession_number.sealed = rows.bytea(row, c + 3);
  st.referring_physician.sealed = rows.bytea(row, c + 4);
  return st;
}

Params& add_patient(Params& params, const StoredPatient& p) {
  return params.add(static_cast<std::int64_t>(p.key_version))
      .add(p.patient_id.clear)
      .add(p.patient_name.clear)
      .add(p.birth_date.clear)
      .add(p.sex.clear)
      .add(p.patient_id.sealed)
      .add(p.patient_name.sealed)
      .add(p.birth_date.sealed)
      .add(p.sex.sealed);
}

constexpr const char* kUpdatePatient = R"sql(
UPDATE patients SET key_version = $1, patient_id = $2, patient_name = $3, birth_date = $4,
  sex = $5, patient_id_enc = $6, patient_name_enc = $7, birth_date_enc = $8, sex_enc = $9,
  updated_at_ms = greatest(updated_at_ms, $10)
WHERE id = $11
)sql";

}  // namespace

std::shared_ptr<const PhiCodec> PostgresIndex::codec() const {
  std::lock_guard lock(codec_mu_);
  return codec_;
}

Status PostgresIndex::add_text_filter(const PhiCodec& codec, const char* column,
                                      const std::string& value, bool sealed, std::string& where,
                                      Params& params) {
  if (value.empty()) return core::ok_status();
  if (!sealed || !codec.encrypting()) {
    pg::add_text_filter(column, value, where, params);
    return core::ok_status();
  }
  GW_ASSIGN_OR_RETURN(const auto values, codec.sealed_filter_values(column, value));
  if (!values) return core::ok_status();
  where.append(" AND ").append(column).append(" IN (");
  for (std::size_t i = 0; i < values->size(); ++i) {
    if (i > 0) where.append(", ");
    where.append(params.placeholder((*values)[i]));
  }
  where.append(")");
  return core::ok_status();
}

Result<std::int64_t> PostgresIndex::upsert_sealed_patient(PgConnection& conn, const PhiCodec& codec,
                                                          const InstanceRecord& r) {
  const PatientPhi phi = patient_phi(r);
  // Twice at most: a concurrent writer may insert the same patient between our look-up and
  // our insert; then the second round finds it.
  for (int round = 0; round < 2; ++round) {
    for (const auto& [id_key, name_key] : codec.patient_keys(r.patient_id, r.patient_name)) {
      GW_ASSIGN_OR_RETURN(auto rows, conn.exec(std::string("SELECT ") + kPatientColumns +
                                                   " FROM patients WHERE patient_id = $1 AND "
                                                   "patient_name = $2 FOR UPDATE",
                                               Params().add(id_key).add(name_key)));
      if (rows.empty()) continue;
      const std::int64_t id = rows.int64(0, 0);
      GW_ASSIGN_OR_RETURN(auto write, codec.upsert(read_patient(rows, 0, 1), phi));
      if (!write.changed) {
        GW_RETURN_IF_ERROR(
            done(conn.exec("UPDATE patients SET updated_at_ms = greatest("
                           "updated_at_ms, $1) WHERE id = $2",
                           Params().add(r.received_at_ms).add(id))));
        return id;
      }
      Params params;
      add_patient(params, write.row).add(r.received_at_ms).add(id);
      GW_RETURN_IF_ERROR(done(conn.exec(kUpdatePatient, params)));
      return id;
    }
    GW_ASSIGN_OR_RETURN(auto sealed, codec.seal(phi));
    Params params;
    add_patient(params, sealed).add(r.received_at_ms);
    GW_ASSIGN_OR_RETURN(auto rows, conn.exec(R"sql(
INSERT INTO patients (key_version, patient_id, patient_name, birth_date, sex, patient_id_enc,
                      patient_name_enc, birth_date_enc, sex_enc, created_at_ms, updated_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
ON CONFLICT (patient_id, patient_name) DO NOTHING
RETURNING id
)sql",
                                             params));
    if (!rows.empty()) return rows.int64(0, 0);
  }
  return make_error(ErrorCode::kConflict, "upsert patient: lost a race twice");
}

Result<std::int64_t> PostgresIndex::upsert_sealed_study(PgConnection& conn, const PhiCodec& codec,
                                                        const InstanceRecord& r,
                                                        std::int64_t patient_pk) {
  const StudyPhi phi = study_phi(r);
  // As upsert_sealed_patient: the sealed columns are merged by the codec with the row read
  // under FOR UPDATE (an empty value never wipes a stored one), so a concurrent first insert of
  // the same study is not overwritten: our INSERT does nothing and the next round merges.
  // $2..$12 of both statements below, after the row's key ($1).
  const auto study_values = [&](Params& params, const StoredStudy& sealed) {
    return std::move(params.add(patient_pk)
                         .add(r.study_date)
                         .add(r.study_time)
                         .add(r.study_description)
                         .add(sealed.accession_number.clear)
                         .add(r.study_id)
                         .add(sealed.referring_physician.clear)
                         .add(r.received_at_ms)
                         .add(static_cast<std::int64_t>(sealed.key_version))
                         .add(sealed.accession_number.sealed)
                         .add(sealed.referring_physician.sealed));
  };
  for (int round = 0; round < 2; ++round) {
    GW_ASSIGN_OR_RETURN(auto found, conn.exec("SELECT id, key_version, accession_number, "
                                              "referring_physician, accession_number_enc, "
                                              "referring_physician_enc FROM studies WHERE "
                                              "study_instance_uid = $1 FOR UPDATE",
                                              Params().add(r.study_instance_uid)));
    if (!found.empty()) {
      const std::int64_t id = found.int64(0, 0);
      // Not changed: write.row is the stored row as it was, written back unchanged.
      GW_ASSIGN_OR_RETURN(auto write, codec.upsert(read_study(found, 0, 1), phi));
      // The clear columns follow the plain path's rule (non-empty values replace).
      GW_RETURN_IF_ERROR(done(conn.exec(R"sql(
UPDATE studies AS s SET
  patient_pk = $2,
  study_date = coalesce(nullif($3::text, ''), s.study_date),
  study_time = coalesce(nullif($4::text, ''), s.study_time),
  study_description = coalesce(nullif($5::text, ''), s.study_description),
  accession_number = $6,
  study_id = coalesce(nullif($7::text, ''), s.study_id),
  referring_physician = $8,
  updated_at_ms = greatest(s.updated_at_ms, $9::bigint),
  key_version = $10,
  accession_number_enc = $11,
  referring_physician_enc = $12
WHERE id = $1
)sql",
                                        study_values(Params().add(id), write.row))));
      return id;
    }
    GW_ASSIGN_OR_RETURN(auto write, codec.upsert(std::nullopt, phi));
    GW_ASSIGN_OR_RETURN(auto rows,
                        conn.exec(R"sql(
INSERT INTO studies (study_instance_uid, patient_pk, study_date, study_time, study_description,
                     accession_number, study_id, referring_physician, created_at_ms,
                     updated_at_ms, key_version, accession_number_enc, referring_physician_enc)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12)
ON CONFLICT (study_instance_uid) DO NOTHING
RETURNING id
)sql",
                                  study_values(Params().add(r.study_instance_uid), write.row)));
    if (!rows.empty()) return rows.int64(0, 0);
  }
  return make_error(ErrorCode::kConflict, "upsert study: lost a race twice");
}

Result<std::shared_ptr<const crypto::Keyring>> PostgresIndex::use_keyring(crypto::Keyring keyring) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // Twice at most: another node may register a key between our read and our insert.
  for (int round = 0; round < 2; ++round) {
    std::vector<RegisteredKey> registry;
    {
      GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT version, check_value FROM "
                                                "encryption_keys ORDER BY version"));
      for (int i = 0; i < rows.size(); ++i) {
        registry.push_back({static_cast<std::uint32_t>(rows.int64(i, 0)), rows.text(i, 1)});
      }
    }
    std::vector<std::uint32_t> in_use;
    {
      GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT DISTINCT key_version FROM patients "
                                                "UNION SELECT DISTINCT key_version FROM studies"));
      for (int i = 0; i < rows.size(); ++i) {
        in_use.push_back(static_cast<std::uint32_t>(rows.int64(i, 0)));
      }
    }
    GW_ASSIGN_OR_RETURN(auto plan, plan_keys(registry, keyring, in_use));
    if (plan.add) {
      GW_ASSIGN_OR_RETURN(auto rows,
                          conn->exec("INSERT INTO encryption_keys (version, "
                                     "check_value, created_at_ms) VALUES ($1, $2, $3) "
                                     "ON CONFLICT DO NOTHING RETURNING version",
                                     Params()
                                         .add(static_cast<std::int64_t>(plan.add->version))
                                         .add(plan.add->check_value)
                                         .add(core::wall_clock_ms())));
      if (rows.empty()) continue;  // lost a race: read the registry again
    }
    auto ring = std::make_shared<const crypto::Keyring>(std::move(plan.keyring));
    std::lock_guard lock(codec_mu_);
    codec_ = std::make_shared<const PhiCodec>(CipherFormat::kOpenPgp, ring);
    return ring;
  }
  return make_error(ErrorCode::kConflict, "encryption keys: the registry kept changing");
}

Result<EncryptionStatus> PostgresIndex::encryption_status() {
  EncryptionStatus out;
  out.current_key_version = codec()->current_version();
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  {
    GW_ASSIGN_OR_RETURN(auto rows,
                        conn->exec("SELECT version FROM encryption_keys ORDER BY version"));
    for (int i = 0; i < rows.size(); ++i) {
      out.registered_versions.push_back(static_cast<std::uint32_t>(rows.int64(i, 0)));
    }
  }
  {
    GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
SELECT key_version, sum(n) FROM (
  SELECT key_version, count(*) AS n FROM patients GROUP BY key_version
  UNION ALL
  SELECT key_version, count(*) AS n FROM studies GROUP BY key_version) t
GROUP BY key_version ORDER BY key_version
)sql"));
    for (int i = 0; i < rows.size(); ++i) {
      out.rows_by_version.emplace_back(static_cast<std::uint32_t>(rows.int64(i, 0)),
                                       rows.int64(i, 1));
    }
  }
  GW_ASSIGN_OR_RETURN(auto ext,
                      conn->exec("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'"));
  out.pgcrypto = !ext.empty();
  return out;
}

Result<std::int64_t> PostgresIndex::reencrypt_batch(std::int64_t max_rows) {
  if (max_rows <= 0) return make_error(ErrorCode::kInvalidArgument, "reencrypt: batch must be > 0");
  const auto phi = codec();
  if (!phi->encrypting()) {
    return make_error(ErrorCode::kConfig, "reencrypt: no encryption key is configured");
  }
  const auto current = static_cast<std::int64_t>(phi->current_version());
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  std::int64_t changed = 0;
  // SKIP LOCKED: rows a serving node is writing now are left for the next batch.
  GW_ASSIGN_OR_RETURN(auto patients,
                      conn->exec(std::string("SELECT ") + kPatientColumns +
                                     " FROM patients WHERE key_version <> $1 ORDER BY id LIMIT "
                                     "$2 FOR UPDATE SKIP LOCKED",
                                 Params().add(current).add(max_rows)));
  for (int i = 0; i < patients.size(); ++i) {
    const std::int64_t id = patients.int64(i, 0);
    GW_ASSIGN_OR_RETURN(auto sealed, phi->reseal(read_patient(patients, i, 1)));
    // The same patient stored under the current key meanwhile: its studies move there.
    GW_ASSIGN_OR_RETURN(
        auto twin,
        conn->exec("SELECT id FROM patients WHERE patient_id = $1 AND "
                   "patient_name = $2 AND id <> $3 FOR UPDATE",
                   Params().add(sealed.patient_id.clear).add(sealed.patient_name.clear).add(id)));
    if (!twin.empty()) {
      GW_RETURN_IF_ERROR(done(conn->exec("UPDATE studies SET patient_pk = $1 WHERE patient_pk = $2",
                                         Params().add(twin.int64(0, 0)).add(id))));
      GW_RETURN_IF_ERROR(conn->exec("DELETE FROM patients WHERE id = $1", Params().add(id)));
      ++changed;
      continue;
    }
    Params params;
    add_patient(params, sealed).add(std::int64_t{0}).add(id);
    GW_RETURN_IF_ERROR(done(conn->exec(kUpdatePatient, params)));
    ++changed;
  }
  const std::int64_t left = max_rows - patients.size();
  if (left > 0) {
    GW_ASSIGN_OR_RETURN(auto studies,
                        conn->exec("SELECT id, key_version, accession_number, "
                                   "referring_physician, accession_number_enc, "
                                   "referring_physician_enc FROM studies WHERE key_version <> $1 "
                                   "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                                   Params().add(current).add(left)));
    for (int i = 0; i < studies.size(); ++i) {
      GW_ASSIGN_OR_RETURN(auto sealed, phi->reseal(read_study(studies, i, 1)));
      GW_RETURN_IF_ERROR(done(conn->exec(R"sql(
UPDATE studies SET key_version = $1, accession_number = $2, referring_physician = $3,
  accession_number_enc = $4, referring_physician_enc = $5
WHERE id = $6
)sql",
                                         Params()
                                             .add(static_cast<std::int64_t>(sealed.key_version))
                                             .add(sealed.accession_number.clear)
                                             .add(sealed.referring_physician.clear)
                                             .add(sealed.accession_number.sealed)
                                             .add(sealed.referring_physician.sealed)
                                             .add(studies.int64(i, 0)))));
      ++changed;
    }
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return changed;
}

Result<std::vector<StoredFileRow>> PostgresIndex::list_stored_files(std::int64_t after_id,
                                                                    std::int64_t limit) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT id, sop_instance_uid, storage_path, "
                                            "size_bytes, digest, received_at_ms FROM instances "
                                            "WHERE id > $1 ORDER BY id LIMIT $2",
                                            Params().add(after_id).add(limit)));
  std::vector<StoredFileRow> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    out.push_back({rows.int64(i, 0), rows.text(i, 1), rows.text(i, 2), rows.int64(i, 3),
                   rows.text(i, 4), rows.int64(i, 5)});
  }
  return out;
}

}  // namespace gw::index
