// PostgresIndex: the read side (lookups, study/series/instance lists with filters and pages).
#include <string_view>
#include <utility>

#include "index/instance_columns.h"
#include "index/postgres/pg_connection.h"
#include "index/postgres/pg_pool.h"
#include "index/postgres/pg_sql.h"
#include "index/postgres/postgres_index.h"

namespace gw::index {

using core::ErrorCode;
using core::make_error;
using pg::Params;
using pg::PgConnection;
using pg::Rows;

namespace {

/// One row of a result, as read_instance() (index/instance_columns.h) reads it.
struct RowRef {
  const Rows& rows;
  int row;
  std::string text(int c) const { return rows.text(row, c); }
  std::int64_t int64(int c) const { return rows.int64(row, c); }
  std::optional<std::vector<std::uint8_t>> blob(int c) const { return rows.bytea(row, c); }
};

}  // namespace

Result<std::optional<InstanceRecord>> PostgresIndex::find_instance(const std::string& sop_uid) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn->exec(std::string(kInstanceSelect) + "WHERE i.sop_instance_uid = $1",
                                 Params().add(sop_uid)));
  if (rows.empty()) return std::optional<InstanceRecord>();
  GW_ASSIGN_OR_RETURN(auto record, read_instance(RowRef{rows, 0}, *codec()));
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
    GW_ASSIGN_OR_RETURN(auto record, read_instance(RowRef{rows, row}, *phi));
    out.push_back(std::move(record));
  }
  return out;
}

}  // namespace gw::index
