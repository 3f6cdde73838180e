// GET /api/v1/audit (admin): the audit trail, newest first. Read-only: no route changes or
// deletes audit rows (the schema refuses it too).
#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

constexpr std::int64_t kMaxLimit = 1000;

Json event_json(const index::AuditEvent& e) {
  Json details = Json::parse(e.details, nullptr, /*allow_exceptions=*/false);
  if (details.is_discarded()) details = e.details;  // stored text that is not JSON: as is
  return {{"id", e.id},
          {"at", format_time(e.at_ms)},
          {"actor", e.actor},
          {"action", e.action},
          {"target", e.target},
          {"outcome", e.outcome},
          {"peer_address", e.peer_address},
          {"details", details}};
}

core::Result<std::int64_t> query_time(const Request& request, const std::string& name) {
  const auto text = request.query_value(name);
  if (!text) return std::int64_t{0};
  auto ms = parse_time_ms(*text);
  if (!ms.ok()) {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "query parameter `" + name + "`: " + ms.error().message);
  }
  return *ms;
}

core::Result<Response> list_audit(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(
      check_query_names(request, {"since", "until", "user", "actor", "action", "limit", "offset"}));
  index::AuditQuery q;
  GW_ASSIGN_OR_RETURN(q.since_ms, query_time(request, "since"));
  GW_ASSIGN_OR_RETURN(q.until_ms, query_time(request, "until"));
  GW_ASSIGN_OR_RETURN(auto user, query_text(request, "user", 64));
  GW_ASSIGN_OR_RETURN(q.actor, query_text(request, "actor", 128));
  if (!user.empty() && !q.actor.empty()) {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "query parameters `user` and `actor`: give one of them");
  }
  if (!user.empty()) q.actor = "user:" + user;
  GW_ASSIGN_OR_RETURN(q.action, query_text(request, "action", 64));
  GW_ASSIGN_OR_RETURN(q.limit, query_int(request, "limit", 100, 1, kMaxLimit));
  GW_ASSIGN_OR_RETURN(q.offset, query_int(request, "offset", 0, 0, INT64_MAX / 2));
  auto events = ctx.index.list_audit(q);
  if (!events.ok()) return index_error(events.error());
  Json out = Json::array();
  for (const auto& e : *events) out.push_back(event_json(e));
  return json_response(200, {{"events", out}, {"limit", q.limit}, {"offset", q.offset}});
}

}  // namespace

std::vector<Route> audit_routes(ApiContext& ctx) {
  return {
      {"GET", "/api/v1/audit", index::Role::kAdmin, bind_handler(ctx, list_audit),
       "Search the audit trail"},
  };
}

}  // namespace gw::http
