// SQLite backend: encryption at rest of the PHI columns (ADR 010): the key registry, sealed
// upserts of patients and studies, re-encryption batches for `dicom-gw db rotate-key`.

#include <sqlite3.h>

#include <chrono>

#include "core/clock.h"
#include "index/key_registry.h"
#include "index/sqlite/sqlite_index.h"
#include "index/sqlite/sqlite_statement.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

constexpr const char* kPatientColumns =
    "id, key_version, patient_id, patient_name, birth_date, sex, patient_id_enc, "
    "patient_name_enc, birth_date_enc, sex_enc";

StoredPatient read_patient(const auto& s, int c) {
  StoredPatient p;
  p.key_version = static_cast<std::uint32_t>(s.int64(c));
  p.patient_id.clear = s.text(c + 1);
  p.patient_name.clear = s.text(c + 2);
  p.birth_date.clear = s.text(c + 3);
  p.sex.clear = s.text(c + 4);
  p.patient_id.sealed = s.blob(c + 5);
  p.patient_name.sealed = s.blob(c + 6);
  p.birth_date.sealed = s.blob(c + 7);
  p.sex.sealed = s.blob(c + 8);
  return p;
}

StoredStudy read_study(const auto& s, int c) {
  StoredStudy st;
  st.key_version = static_cast<std::uint32_t>(s.int64(c));
  st.accession_number.clear = s.text(c + 1);
  st.referring_physician.clear = s.text(c + 2);
  st.accession_number.sealed = s.blob(c + 3);
  st.referring_physician.sealed = s.blob(c + 4);
  return st;
}

}  // namespace

Result<std::int64_t> SqliteIndex::upsert_sealed_patient_locked(const InstanceRecord& r) {
  const PatientPhi phi = patient_phi(r);
  // The same patient may be stored under the current key, the previous one or in plaintext.
  for (const auto& [id_key, name_key] : codec_->patient_keys(r.patient_id, r.patient_name)) {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kPatientColumns +
                                                 " FROM patients WHERE patient_id = ? AND "
                                                 "patient_name = ?"));
    s.bind(1, id_key).bind(2, name_key);
    GW_ASSIGN_OR_RETURN(bool row, s.step("find patient"));
    if (!row) continue;
    const std::int64_t id = s.int64(0);
    GW_ASSIGN_OR_RETURN(auto write, codec_->upsert(read_patient(s, 1), phi));
    if (!write.changed) {
      GW_ASSIGN_OR_RETURN(
          auto u, statement_locked("UPDATE patients SET updated_at_ms = max(updated_at_ms, ?) "
                                   "WHERE id = ?"));
      u.bind(1, r.received_at_ms).bind(2, id);
      GW_RETURN_IF_ERROR(u.run("update patient"));
      return id;
    }
    const StoredPatient& sealed = write.row;
    GW_ASSIGN_OR_RETURN(auto u, statement_locked(R"sql(
UPDATE patients SET key_version = ?1, patient_id = ?2, patient_name = ?3, birth_date = ?4,
  sex = ?5, patient_id_enc = ?6, patient_name_enc = ?7, birth_date_enc = ?8, sex_enc = ?9,
  updated_at_ms = max(updated_at_ms, ?10)
WHERE id = ?11
)sql"));
    u.bind(1, static_cast<std::int64_t>(sealed.key_version));
    u.bind(2, sealed.patient_id.clear).bind(3, sealed.patient_name.clear);
    u.bind(4, sealed.birth_date.clear).bind(5, sealed.sex.clear);
    u.bind(6, sealed.patient_id.sealed).bind(7, sealed.patient_name.sealed);
    u.bind(8, sealed.birth_date.sealed).bind(9, sealed.sex.sealed);
    u.bind(10, r.received_at_ms).bind(11, id);
    GW_RETURN_IF_ERROR(u.run("update patient"));
    return id;
  }
  GW_ASSIGN_OR_RETURN(auto sealed, codec_->seal(phi));
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO patients (key_version, patient_id, patient_name, birth_date, sex, patient_id_enc,
                      patient_name_enc, birth_date_enc, sex_enc, created_at_ms, updated_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
)sql"));
  s.bind(1, static_cast<std::int64_t>(sealed.key_version));
  s.bind(2, sealed.patient_id.clear).bind(3, sealed.patient_name.clear);
  s.bind(4, sealed.birth_date.clear).bind(5, sealed.sex.clear);
  s.bind(6, sealed.patient_id.sealed).bind(7, sealed.patient_name.sealed);
  s.bind(8, sealed.birth_date.sealed).bind(9, sealed.sex.sealed);
  s.bind(10, r.received_at_ms);
  GW_RETURN_IF_ERROR(s.run("insert patient"));
  return s.last_insert_rowid();
}

Result<std::int64_t> SqliteIndex::upsert_sealed_study_locked(const InstanceRecord& r,
                                                             std::int64_t patient_pk) {
  std::optional<StoredStudy> stored;
  {
    GW_ASSIGN_OR_RETURN(
        auto s, statement_locked("SELECT key_version, accession_number, referring_physician, "
                                 "accession_number_enc, referring_physician_enc FROM studies "
                                 "WHERE study_instance_uid = ?"));
    s.bind(1, r.study_instance_uid);
    GW_ASSIGN_OR_RETURN(bool row, s.step("find study"));
    if (row) stored = read_study(s, 0);
  }
  GW_ASSIGN_OR_RETURN(auto write, codec_->upsert(stored, study_phi(r)));
  const StoredStudy& sealed = write.row;
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO studies (study_instance_uid, patient_pk, study_date, study_time, study_description,
                     accession_number, study_id, referring_physician, created_at_ms,
                     updated_at_ms, key_version, accession_number_enc, referring_physician_enc)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12)
ON CONFLICT (study_instance_uid) DO UPDATE SET
  patient_pk = excluded.patient_pk,
  study_date = coalesce(nullif(excluded.study_date, ''), study_date),
  study_time = coalesce(nullif(excluded.study_time, ''), study_time),
  study_description = coalesce(nullif(excluded.study_description, ''), study_description),
  accession_number = excluded.accession_number,
  study_id = coalesce(nullif(excluded.study_id, ''), study_id),
  referring_physician = excluded.referring_physician,
  key_version = excluded.key_version,
  accession_number_enc = excluded.accession_number_enc,
  referring_physician_enc = excluded.referring_physician_enc,
  updated_at_ms = max(updated_at_ms, excluded.updated_at_ms)
RETURNING id
)sql"));
  s.bind(1, r.study_instance_uid).bind(2, patient_pk).bind(3, r.study_date);
  s.bind(4, r.study_time).bind(5, r.study_description).bind(6, sealed.accession_number.clear);
  s.bind(7, r.study_id).bind(8, sealed.referring_physician.clear).bind(9, r.received_at_ms);
  s.bind(10, static_cast<std::int64_t>(sealed.key_version));
  s.bind(11, sealed.accession_number.sealed).bind(12, sealed.referring_physician.sealed);
  GW_ASSIGN_OR_RETURN(bool row, s.step("upsert study"));
  if (!row) return make_error(ErrorCode::kDatabase, "upsert study: no id returned");
  const std::int64_t id = s.int64(0);
  GW_RETURN_IF_ERROR(s.run("upsert study"));
  return id;
}

Result<std::vector<std::uint32_t>> SqliteIndex::key_versions_in_use_locked() {
  GW_ASSIGN_OR_RETURN(auto s,
                      statement_locked("SELECT DISTINCT key_version FROM patients UNION "
                                       "SELECT DISTINCT key_version FROM studies ORDER BY 1"));
  std::vector<std::uint32_t> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("key versions in use"));
    if (!row) break;
    out.push_back(static_cast<std::uint32_t>(s.int64(0)));
  }
  return out;
}

Result<std::shared_ptr<const crypto::Keyring>> SqliteIndex::use_keyring(crypto::Keyring keyring) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::vector<RegisteredKey> registry;
  {
    GW_ASSIGN_OR_RETURN(
        auto s, statement_locked("SELECT version, check_value FROM encryption_keys ORDER BY "
                                 "version"));
    for (;;) {
      GW_ASSIGN_OR_RETURN(bool row, s.step("read key registry"));
      if (!row) break;
      registry.push_back({static_cast<std::uint32_t>(s.int64(0)), s.text(1)});
    }
  }
  GW_ASSIGN_OR_RETURN(auto in_use, key_versions_in_use_locked());
  GW_ASSIGN_OR_RETURN(auto plan, plan_keys(registry, std::move(keyring), in_use));
  if (plan.add) {
    GW_ASSIGN_OR_RETURN(auto s,
                        statement_locked("INSERT INTO encryption_keys (version, check_value, "
                                         "created_at_ms) VALUES (?, ?, ?)"));
    s.bind(1, static_cast<std::int64_t>(plan.add->version)).bind(2, plan.add->check_value);
    s.bind(3, core::wall_clock_ms());
    GW_RETURN_IF_ERROR(s.run("register encryption key"));
  }
  GW_RETURN_IF_ERROR(tx.commit());
  auto ring = std::make_shared<const crypto::Keyring>(std::move(plan.keyring));
  codec_ = std::make_shared<const PhiCodec>(CipherFormat::kAesGcm, ring);
  return ring;
}

Result<EncryptionStatus> SqliteIndex::encryption_status() {
  std::lock_guard lock(mu_);
  EncryptionStatus out;
  out.current_key_version = codec_->current_version();
  {
    GW_ASSIGN_OR_RETURN(auto s,
                        statement_locked("SELECT version FROM encryption_keys ORDER BY version"));
    for (;;) {
      GW_ASSIGN_OR_RETURN(bool row, s.step("read key registry"));
      if (!row) break;
      out.registered_versions.push_back(static_cast<std::uint32_t>(s.int64(0)));
    }
  }
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
SELECT key_version, sum(n) FROM (
  SELECT key_version, count(*) AS n FROM patients GROUP BY key_version
  UNION ALL
  SELECT key_version, count(*) AS n FROM studies GROUP BY key_version)
GROUP BY key_version ORDER BY key_version
)sql"));
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("count rows by key version"));
    if (!row) break;
    out.rows_by_version.emplace_back(static_cast<std::uint32_t>(s.int64(0)), s.int64(1));
  }
  return out;
}

Result<std::int64_t> SqliteIndex::reencrypt_batch(std::int64_t max_rows) {
  if (max_rows <= 0) return make_error(ErrorCode::kInvalidArgument, "reencrypt: batch must be > 0");
  std::lock_guard lock(mu_);
  if (!codec_->encrypting()) {
    return make_error(ErrorCode::kConfig, "reencrypt: no encryption key is configured");
  }
  const auto current = static_cast<std::int64_t>(codec_->current_version());
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::int64_t changed = 0;
  // Patients first. A row re-sealed under the current key may meet a row that was stored
  // under it meanwhile (the same patient sent during the rotation): then the studies move to
  // that row and this one goes.
  struct PatientRow {
    std::int64_t id;
    StoredPatient stored;
  };
  std::vector<PatientRow> patients;
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kPatientColumns +
                                                 " FROM patients WHERE key_version <> ? "
                                                 "ORDER BY id LIMIT ?"));
    s.bind(1, current).bind(2, max_rows);
    for (;;) {
      GW_ASSIGN_OR_RETURN(bool row, s.step("patients to re-encrypt"));
      if (!row) break;
      patients.push_back({s.int64(0), read_patient(s, 1)});
    }
  }
  for (const auto& row : patients) {
    GW_ASSIGN_OR_RETURN(auto sealed, codec_->reseal(row.stored));
    std::optional<std::int64_t> twin;
    {
      GW_ASSIGN_OR_RETURN(auto s,
                          statement_locked("SELECT id FROM patients WHERE patient_id = ? AND "
                                           "patient_name = ? AND id <> ?"));
      s.bind(1, sealed.patient_id.clear).bind(2, sealed.patient_name.clear).bind(3, row.id);
      GW_ASSIGN_OR_RETURN(bool found, s.step("find re-encrypted twin"));
      if (found) twin = s.int64(0);
    }
    if (twin) {
      GW_ASSIGN_OR_RETURN(
          auto m, statement_locked("UPDATE studies SET patient_pk = ? WHERE patient_pk = ?"));
      m.bind(1, *twin).bind(2, row.id);
      GW_RETURN_IF_ERROR(m.run("move studies to twin patient"));
      GW_ASSIGN_OR_RETURN(auto d, statement_locked("DELETE FROM patients WHERE id = ?"));
      d.bind(1, row.id);
      GW_RETURN_IF_ERROR(d.run("remove merged patient"));
      ++changed;
      continue;
    }
    GW_ASSIGN_OR_RETURN(auto u, statement_locked(R"sql(
UPDATE patients SET key_version = ?1, patient_id = ?2, patient_name = ?3, birth_date = ?4,
  sex = ?5, patient_id_enc = ?6, patient_name_enc = ?7, birth_date_enc = ?8, sex_enc = ?9
WHERE id = ?10
)sql"));
    u.bind(1, static_cast<std::int64_t>(sealed.key_version));
    u.bind(2, sealed.patient_id.clear).bind(3, sealed.patient_name.clear);
    u.bind(4, sealed.birth_date.clear).bind(5, sealed.sex.clear);
    u.bind(6, sealed.patient_id.sealed).bind(7, sealed.patient_name.sealed);
    u.bind(8, sealed.birth_date.sealed).bind(9, sealed.sex.sealed).bind(10, row.id);
    GW_RETURN_IF_ERROR(u.run("re-encrypt patient"));
    ++changed;
  }
  const std::int64_t left = max_rows - static_cast<std::int64_t>(patients.size());
  if (left > 0) {
    struct StudyRow {
      std::int64_t id;
      StoredStudy stored;
    };
    std::vector<StudyRow> studies;
    {
      GW_ASSIGN_OR_RETURN(auto s,
                          statement_locked("SELECT id, key_version, accession_number, "
                                           "referring_physician, accession_number_enc, "
                                           "referring_physician_enc FROM studies WHERE key_version "
                                           "<> ? ORDER BY id LIMIT ?"));
      s.bind(1, current).bind(2, left);
      for (;;) {
        GW_ASSIGN_OR_RETURN(bool row, s.step("studies to re-encrypt"));
        if (!row) break;
        studies.push_back({s.int64(0), read_study(s, 1)});
      }
    }
    for (const auto& row : studies) {
      GW_ASSIGN_OR_RETURN(auto sealed, codec_->reseal(row.stored));
      GW_ASSIGN_OR_RETURN(auto u, statement_locked(R"sql(
UPDATE studies SET key_version = ?1, accession_number = ?2, referring_physician = ?3,
  accession_number_enc = ?4, referring_physician_enc = ?5
WHERE id = ?6
)sql"));
      u.bind(1, static_cast<std::int64_t>(sealed.key_version));
      u.bind(2, sealed.accession_number.clear).bind(3, sealed.referring_physician.clear);
      u.bind(4, sealed.accession_number.sealed).bind(5, sealed.referring_physician.sealed);
      u.bind(6, row.id);
      GW_RETURN_IF_ERROR(u.run("re-encrypt study"));
      ++changed;
    }
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return changed;
}

Result<std::vector<StoredFileRow>> SqliteIndex::list_stored_files(std::int64_t after_id,
                                                                  std::int64_t limit) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked("SELECT id, sop_instance_uid, storage_path, "
                                               "size_bytes, digest, received_at_ms FROM instances "
                                               "WHERE id > ? ORDER BY id LIMIT ?"));
  s.bind(1, after_id).bind(2, limit);
  std::vector<StoredFileRow> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list stored files"));
    if (!row) break;
    out.push_back({s.int64(0), s.text(1), s.text(2), s.int64(3), s.text(4), s.int64(5)});
  }
  return out;
}

}  // namespace gw::index
