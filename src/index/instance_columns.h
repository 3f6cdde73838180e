#pragma once
/// How both index backends read an InstanceRecord: the SELECT (the same SQL on SQLite and
/// PostgreSQL) and the function that fills a record from one result row, opening the sealed
/// patient and study fields (ADR 010) with the codec's keys.

#include "index/index.h"
#include "index/phi_codec.h"

namespace gw::index {

// Columns of InstanceRecord, in the order read_instance() expects.
inline constexpr const char* kInstanceSelect = R"sql(
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

/// `Row` gives column `c` of the current row as text(c), int64(c) and blob(c) (an optional
/// byte vector, empty for NULL), in kInstanceSelect's order.
template <class Row>
Result<InstanceRecord> read_instance(const Row& s, const PhiCodec& codec) {
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

}  // namespace gw::index
