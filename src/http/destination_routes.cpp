// /api/v1/destinations: the destinations the gateway runs, each with its forwarder's live state
// and its queue depth. Those of the config file are read-only here (the file and a reload
// change them); admins create, replace and delete others through the API (ADR 005: stored in
// the index, checked exactly like the file's, applied at once). POST …/{name}/echo tests one
// with its own settings. Key files are named by path only: the API never reads them.
#include <algorithm>
#include <cctype>
#include <chrono>

#include "core/log.h"
#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

/// The peer gets this long to accept and answer; the HTTP thread waits no longer.
constexpr std::chrono::milliseconds kEchoTimeout{10'000};

core::Result<std::string> destination_name(const Request& request) {
  const auto it = request.path_params.find("name");
  if (it == request.path_params.end() || it->second.empty() || it->second.size() > 64) {
    return core::make_error(ErrorCode::kInvalidArgument, "path parameter `name`: 1 to 64 chars");
  }
  return it->second;
}

core::Error unknown_destination(const std::string& name) {
  return core::make_error(ErrorCode::kNotFound, "no destination `" + name + "`");
}

/// What an API destination without `match` is for, said wherever it is shown.
constexpr const char* kNoMatchNote =
    "no match: no instance is routed to this destination automatically (routes in the config "
    "file cannot name API destinations); it can be echoed, and a match can be added with PUT";

Json parsed_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? Json(nullptr) : parsed;
}

Json depth_json(const std::string& name, const std::vector<index::QueueDepth>& depths) {
  for (const auto& d : depths) {
    if (d.destination != name) continue;
    return {{"pending", d.pending},
            {"in_flight", d.in_flight},
            {"delivered", d.delivered},
            {"dead", d.dead},
            {"oldest_pending_created_at", time_or_null(d.oldest_pending_created_at_ms)}};
  }
  return {{"pending", 0},
          {"in_flight", 0},
          {"delivered", 0},
          {"dead", 0},
          {"oldest_pending_created_at", nullptr}};
}

Json destination_json(const DestinationConfigSnapshot& c, const GatewaySnapshot& s,
                      const std::vector<index::QueueDepth>& depths) {
  Json status = nullptr;
  for (const auto& d : s.destinations) {
    if (d.name != c.name) continue;
    status = {{"paused", d.paused},
              {"reason", d.pause_reason},
              {"consecutive_failures", d.consecutive_failures},
              {"open_associations", d.open_associations},
              {"forwarded", d.forwarded},
              {"warnings", d.warnings},
              {"failed", d.failed},
              {"retried", d.retried},
              {"dead", d.dead},
              {"bytes", d.bytes},
              {"associations_opened", d.associations_opened},
              {"claimed_ahead", d.claimed_ahead}};
  }
  return {{"name", c.name},
          {"ae_title", c.ae_title},
          {"calling_ae_title", c.calling_ae_title},
          {"host", c.host},
          {"port", c.port},
          {"tls_enabled", c.tls_enabled},
          {"tls_profile", c.tls_profile},
          {"tls_cert_path", c.tls_cert_path},
          {"tls_key_path", c.tls_key_path},
          {"tls_ca_path", c.tls_ca_path},
          {"verify_hostname", c.verify_hostname},
          {"max_associations", c.max_associations},
          {"max_async_operations", c.max_async_operations},
          {"source", c.source},
          {"status", status},
          {"queue", depth_json(c.name, depths)}};
}

/// destination_json plus what only API destinations have.
Json full_destination_json(const DestinationConfigSnapshot& c, const GatewaySnapshot& s,
                           const std::vector<index::QueueDepth>& depths) {
  Json out = destination_json(c, s, depths);
  if (c.source != "api") return out;
  out["match"] = parsed_or_null(c.match);
  out["retry"] = c.retry.empty() ? Json::object() : parsed_or_null(c.retry);
  out["created_at"] = time_or_null(c.created_at_ms);
  out["created_by"] = c.created_by;
  out["updated_at"] = time_or_null(c.updated_at_ms);
  out["updated_by"] = c.updated_by;
  if (c.match.empty()) out["note"] = kNoMatchNote;
  return out;
}

core::Result<std::vector<index::QueueDepth>> depths_of(const ApiContext& ctx) {
  auto depths = ctx.index.queue_depths();
  if (!depths.ok()) return index_error(depths.error());
  return std::move(depths).value();
}

core::Result<Response> list_destinations(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  Json items = Json::array();
  if (ctx.control != nullptr) {
    GW_ASSIGN_OR_RETURN(auto depths, depths_of(ctx));
    const auto snapshot = ctx.control->snapshot();
    for (const auto& c : ctx.control->destinations()) {
      items.push_back(full_destination_json(c, snapshot, depths));
    }
  }
  return json_response(200, {{"items", items}});
}

core::Result<Response> get_destination(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto name, destination_name(request));
  if (ctx.control != nullptr) {
    for (const auto& c : ctx.control->destinations()) {
      if (c.name != name) continue;
      GW_ASSIGN_OR_RETURN(auto depths, depths_of(ctx));
      return json_response(200, full_destination_json(c, ctx.control->snapshot(), depths));
    }
  }
  return unknown_destination(name);
}

core::Result<Response> echo_destination(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto name, destination_name(request));
  if (ctx.control == nullptr) return unknown_destination(name);
  const auto outcome = ctx.control->echo_destination(name, kEchoTimeout);
  if (!outcome) return unknown_destination(name);
  // The echo is a test, not a write; its row says who probed what, and how it went.
  auto audit = audit_event(ctx, request, "destination.echo", "destination:" + name,
                           {{"status", outcome->status}, {"elapsed_ms", outcome->elapsed_ms}});
  audit.outcome = outcome->ok ? "ok" : "failed";
  if (auto id = ctx.index.append_audit(audit); !id.ok()) {
    core::logger("http")->error("event=audit_failed action=destination.echo reason=\"{}\"",
                                id.error().message);
  }
  // Unreachable is an answer of the API call (ok:false), not an error of it.
  return json_response(200,
                       {{"destination", name},
                        {"ok", outcome->ok},
                        {"status", outcome->status < 0 ? Json(nullptr) : Json(outcome->status)},
                        {"elapsed_ms", outcome->elapsed_ms},
                        {"reason", outcome->reason}});
}

/// The body as a JSON object. Its keys are not checked here: the gateway checks them like the
/// config file's (422 with every issue, an unknown key with a suggestion).
core::Result<Json> destination_body(const Request& request) {
  std::string type = request.content_type.substr(0, request.content_type.find(';'));
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (type != "application/json") {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "the body must be JSON (Content-Type: application/json)");
  }
  Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return core::make_error(ErrorCode::kInvalidArgument, "the body is not valid JSON");
  }
  if (!body.is_object()) {
    return core::make_error(ErrorCode::kInvalidArgument, "the body must be a JSON object");
  }
  return body;
}

/// The answer to an edit the gateway refused: 422 with every issue, or the error's status.
Response refused(const DestinationEditOutcome& outcome) {
  if (!outcome.issues.empty()) {
    Json details = Json::array();
    for (const auto& i : outcome.issues) {
      details.push_back({{"path", i.path}, {"message", i.message}});
    }
    return error_response(422, "config_error", outcome.error->message, details);
  }
  return error_response(*outcome.error);
}

core::Result<Response> edited(const ApiContext& ctx, const DestinationEdit& edit, int status) {
  if (ctx.control == nullptr) {
    return core::make_error(ErrorCode::kInternal, "no running gateway to change");
  }
  const auto outcome = ctx.control->edit_destination(edit);
  if (outcome.error) return refused(outcome);
  if (edit.kind == DestinationEdit::Kind::kDelete) {
    return json_response(200, {{"deleted", edit.name}, {"dead_lettered", outcome.dead_lettered}});
  }
  GW_ASSIGN_OR_RETURN(auto depths, depths_of(ctx));
  return json_response(
      status, full_destination_json(*outcome.destination, ctx.control->snapshot(), depths));
}

core::Result<Response> create_destination(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto body, destination_body(request));
  DestinationEdit edit;
  edit.kind = DestinationEdit::Kind::kCreate;
  edit.body = body.dump();
  if (const auto n = body.find("name"); n != body.end() && n->is_string()) edit.name = *n;
  edit.audit = audit_event(ctx, request, "destination.create", "destination:" + edit.name,
                           {{"has_match", body.contains("match") && !body["match"].is_null()}});
  return edited(ctx, edit, 201);
}

core::Result<Response> update_destination(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  GW_ASSIGN_OR_RETURN(auto name, destination_name(request));
  GW_ASSIGN_OR_RETURN(auto body, destination_body(request));
  DestinationEdit edit;
  edit.kind = DestinationEdit::Kind::kUpdate;
  edit.name = name;
  edit.body = body.dump();
  edit.audit = audit_event(ctx, request, "destination.update", "destination:" + name,
                           {{"has_match", body.contains("match") && !body["match"].is_null()}});
  return edited(ctx, edit, 200);
}

core::Result<Response> delete_destination(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {"force"}));
  GW_ASSIGN_OR_RETURN(auto name, destination_name(request));
  const auto force = request.query_value("force");
  if (force && *force != "true" && *force != "false") {
    return core::make_error(ErrorCode::kInvalidArgument, "query `force`: true or false");
  }
  DestinationEdit edit;
  edit.kind = DestinationEdit::Kind::kDelete;
  edit.name = name;
  edit.force = force && *force == "true";
  edit.audit = audit_event(ctx, request, "destination.delete", "destination:" + name,
                           {{"force", edit.force}});
  return edited(ctx, edit, 200);
}

}  // namespace

std::vector<Route> destination_routes(ApiContext& ctx) {
  return {
      {"GET", "/api/v1/destinations", index::Role::kViewer, bind_handler(ctx, list_destinations),
       "List destinations (config file and API) with forwarding status and queue depth"},
      {"POST", "/api/v1/destinations", index::Role::kAdmin, bind_handler(ctx, create_destination),
       "Create a destination (stored in the index, applied at once)"},
      {"GET", "/api/v1/destinations/{name}", index::Role::kViewer,
       bind_handler(ctx, get_destination), "One destination"},
      {"PUT", "/api/v1/destinations/{name}", index::Role::kAdmin,
       bind_handler(ctx, update_destination), "Replace an API destination (applied at once)"},
      {"DELETE", "/api/v1/destinations/{name}", index::Role::kAdmin,
       bind_handler(ctx, delete_destination),
       "Delete an API destination (409 with queued rows unless force=true)"},
      {"POST", "/api/v1/destinations/{name}/echo", index::Role::kOperator,
       bind_handler(ctx, echo_destination), "C-ECHO a destination with its own settings"},
  };
}

}  // namespace gw::http
