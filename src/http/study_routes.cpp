// /api/v1/studies, /studies/{uid}, /studies/{uid}/series, /instances/{uid}[/file]: what the
// gateway stored, from the index (and the stored file itself). Patient names and IDs are in
// these answers on purpose (that is what a viewer looks for); they never go to the log.
#include <algorithm>
#include <cstdint>

#include "core/log.h"
#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

constexpr std::int64_t kMaxLimit = 1000;

Json study_json(const index::StudySummary& s) {
  return {{"study_instance_uid", s.study_instance_uid},
          {"study_date", s.study_date},
          {"study_time", s.study_time},
          {"study_description", s.study_description},
          {"accession_number", s.accession_number},
          {"patient_id", s.patient_id},
          {"patient_name", s.patient_name},
          {"modalities", s.modalities},
          {"series_count", s.series_count},
          {"instance_count", s.instance_count},
          {"size_bytes", s.size_bytes},
          {"last_received_at", time_or_null(s.last_received_at_ms)}};
}

Json series_json(const index::SeriesSummary& s) {
  return {{"series_instance_uid", s.series_instance_uid},
          {"study_instance_uid", s.study_instance_uid},
          {"modality", s.modality},
          {"series_description", s.series_description},
          {"series_number", s.series_number},
          {"instance_count", s.instance_count},
          {"size_bytes", s.size_bytes}};
}

Json instance_json(const index::InstanceRecord& r) {
  return {{"sop_instance_uid", r.sop_instance_uid},
          {"sop_class_uid", r.sop_class_uid},
          {"transfer_syntax_uid", r.transfer_syntax_uid},
          {"instance_number", r.instance_number},
          {"size_bytes", r.size_bytes},
          {"digest", r.digest},
          {"received_at", time_or_null(r.received_at_ms)},
          {"calling_ae", r.calling_ae},
          {"called_ae", r.called_ae},
          {"peer_address", r.peer_address},
          {"series_instance_uid", r.series_instance_uid},
          {"modality", r.modality},
          {"series_description", r.series_description},
          {"series_number", r.series_number},
          {"body_part_examined", r.body_part_examined},
          {"study_instance_uid", r.study_instance_uid},
          {"study_date", r.study_date},
          {"study_time", r.study_time},
          {"study_description", r.study_description},
          {"accession_number", r.accession_number},
          {"study_id", r.study_id},
          {"referring_physician", r.referring_physician},
          {"patient_id", r.patient_id},
          {"patient_name", r.patient_name},
          {"patient_birth_date", r.patient_birth_date},
          {"patient_sex", r.patient_sex},
          {"station_name", r.station_name},
          {"institution_name", r.institution_name}};
}

/// A DICOM DA filter value: YYYYMMDD (or YYYY-MM-DD, normalized).
core::Result<std::string> query_date(const Request& request, const std::string& name) {
  GW_ASSIGN_OR_RETURN(std::string text, query_text(request, name, 10));
  if (text.empty()) return text;
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    text = text.substr(0, 4) + text.substr(5, 2) + text.substr(8, 2);
  }
  const bool digits = text.size() == 8 && std::all_of(text.begin(), text.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "query parameter `" + name + "`: expected YYYYMMDD or YYYY-MM-DD");
  }
  return text;
}

core::Result<Response> list_studies(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(
      check_query_names(request, {"patient_id", "patient_name", "accession_number", "modality",
                                  "study_date_from", "study_date_to", "limit", "offset"}));
  index::StudyQuery q;
  GW_ASSIGN_OR_RETURN(q.patient_id, query_text(request, "patient_id", 64));
  GW_ASSIGN_OR_RETURN(q.patient_name, query_text(request, "patient_name", 324));
  GW_ASSIGN_OR_RETURN(q.accession_number, query_text(request, "accession_number", 64));
  GW_ASSIGN_OR_RETURN(q.modality, query_text(request, "modality", 16));
  GW_ASSIGN_OR_RETURN(q.study_date_from, query_date(request, "study_date_from"));
  GW_ASSIGN_OR_RETURN(q.study_date_to, query_date(request, "study_date_to"));
  GW_ASSIGN_OR_RETURN(q.limit, query_int(request, "limit", 100, 1, kMaxLimit));
  GW_ASSIGN_OR_RETURN(q.offset, query_int(request, "offset", 0, 0, INT64_MAX / 2));
  auto studies = ctx.index.list_studies(q);
  if (!studies.ok()) return index_error(studies.error());
  Json out = Json::array();
  for (const auto& s : *studies) out.push_back(study_json(s));
  return json_response(200, {{"studies", out}, {"limit", q.limit}, {"offset", q.offset}});
}

core::Result<index::StudySummary> existing_study(const ApiContext& ctx, const std::string& uid) {
  auto study = ctx.index.find_study(uid);
  if (!study.ok()) return index_error(study.error());
  if (!study->has_value()) return core::make_error(ErrorCode::kNotFound, "no study " + uid);
  return std::move(**study);
}

core::Result<Response> get_study(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto uid, path_uid(request, "uid"));
  GW_ASSIGN_OR_RETURN(auto study, existing_study(ctx, uid));
  return json_response(200, study_json(study));
}

core::Result<Response> list_series(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto uid, path_uid(request, "uid"));
  GW_ASSIGN_OR_RETURN(auto study, existing_study(ctx, uid));
  auto series = ctx.index.list_series(uid);
  if (!series.ok()) return index_error(series.error());
  Json out = Json::array();
  for (const auto& s : *series) out.push_back(series_json(s));
  return json_response(200, {{"study_instance_uid", uid}, {"series", out}});
}

core::Result<Response> get_instance(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto uid, path_uid(request, "uid"));
  auto instance = ctx.index.find_instance(uid);
  if (!instance.ok()) return index_error(instance.error());
  if (!instance->has_value()) return core::make_error(ErrorCode::kNotFound, "no instance " + uid);
  return json_response(200, instance_json(**instance));
}

/// The stored file itself, streamed (and decrypted when stored encrypted). Downloads are
/// audited: they hand out everything the instance holds.
core::Result<Response> get_instance_file(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto uid, path_uid(request, "uid"));
  auto instance = ctx.index.find_instance(uid);
  if (!instance.ok()) return index_error(instance.error());
  if (!instance->has_value()) return core::make_error(ErrorCode::kNotFound, "no instance " + uid);
  if (ctx.control == nullptr) {
    return core::make_error(ErrorCode::kUnsupported, "no stored files here");
  }
  auto reader = ctx.control->open_stored_file((*instance)->storage_path, (*instance)->digest);
  if (!reader.ok()) {
    if (reader.error().code == ErrorCode::kNotFound) {
      return core::make_error(ErrorCode::kNotFound,
                              "the stored file of instance " + uid + " is missing");
    }
    return index_error(reader.error());
  }
  std::shared_ptr<storage::ContentReader> content = std::move(reader).value();
  const auto event = audit_event(ctx, request, "instance.downloaded", "instance:" + uid,
                                 {{"size", content->size()},
                                  {"study_instance_uid", (*instance)->study_instance_uid},
                                  {"sop_class_uid", (*instance)->sop_class_uid}});
  if (auto id = ctx.index.append_audit(event); !id.ok()) return index_error(id.error());
  Response r;
  r.status = 200;
  r.content_type = "application/dicom";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + uid + ".dcm\"");
  r.stream = std::make_shared<BodyStream>();
  r.stream->size = content->size();
  r.stream->read = [content, uid](std::uint64_t offset, std::span<std::uint8_t> out) {
    auto n = content->read(offset, out);
    if (!n.ok() && n.error().code == ErrorCode::kDataLoss) {
      // The body ends short of its Content-Length: the client sees a failed download, never
      // a complete file with other bytes than were received.
      core::logger("http")->error(
          "event=download_digest_mismatch sop_instance_uid={} reason=\"{}\"", uid,
          n.error().message);
    }
    return n;
  };
  return r;
}

}  // namespace

std::vector<Route> study_routes(ApiContext& ctx) {
  constexpr auto kViewer = index::Role::kViewer;
  return {
      {"GET", "/api/v1/studies", kViewer, bind_handler(ctx, list_studies), "Search stored studies"},
      {"GET", "/api/v1/studies/{uid}", kViewer, bind_handler(ctx, get_study), "One study"},
      {"GET", "/api/v1/studies/{uid}/series", kViewer, bind_handler(ctx, list_series),
       "The series of a study"},
      {"GET", "/api/v1/instances/{uid}", kViewer, bind_handler(ctx, get_instance),
       "One stored instance"},
      {"GET", "/api/v1/instances/{uid}/file", index::Role::kOperator,
       bind_handler(ctx, get_instance_file), "Download a stored instance"},
  };
}

}  // namespace gw::http
