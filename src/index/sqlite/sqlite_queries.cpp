// SqliteIndex: the read side (lookups, study/series/instance lists with filters and pages).
#include <sqlite3.h>

#include <optional>
#include <string_view>
#include <utility>

#include "index/instance_columns.h"
#include "index/sqlite/sqlite_index.h"
#include "index/sqlite/sqlite_statement.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

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

}  // namespace

/// Appends a text filter: exact, or a prefix match when `value` ends with '*'. Empty = no filter.
Status SqliteIndex::add_text_filter_locked(const char* column, const std::string& value,
                                           bool sealed, std::string& where,
                                           std::vector<std::string>& args) const {
  if (value.empty()) return core::ok_status();
  if (sealed && codec_->encrypting()) {
    GW_ASSIGN_OR_RETURN(const auto values, codec_->sealed_filter_values(column, value));
    if (!values) return core::ok_status();
    where.append(" AND ").append(column).append(" IN (");
    for (std::size_t i = 0; i < values->size(); ++i) {
      where.append(i == 0 ? "?" : ", ?");
      args.push_back((*values)[i]);
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

}  // namespace gw::index
