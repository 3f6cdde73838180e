// /api/v1/destinations: the destinations of the running configuration (read-only here; the
// config file and a reload change them), each with its forwarder's live state and its queue
// depth, and POST …/{name}/echo to test one with its own settings. Key files are named by path
// only: the API never reads them.
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
  return core::make_error(ErrorCode::kNotFound, "no configured destination `" + name + "`");
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
              {"associations_opened", d.associations_opened}};
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
          {"source", "config"},
          {"status", status},
          {"queue", depth_json(c.name, depths)}};
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
      items.push_back(destination_json(c, snapshot, depths));
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
      return json_response(200, destination_json(c, ctx.control->snapshot(), depths));
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

}  // namespace

std::vector<Route> destination_routes(ApiContext& ctx) {
  return {
      {"GET", "/api/v1/destinations", index::Role::kViewer, bind_handler(ctx, list_destinations),
       "List configured destinations with forwarding status and queue depth"},
      {"GET", "/api/v1/destinations/{name}", index::Role::kViewer,
       bind_handler(ctx, get_destination), "One configured destination"},
      {"POST", "/api/v1/destinations/{name}/echo", index::Role::kOperator,
       bind_handler(ctx, echo_destination), "C-ECHO a destination with its own settings"},
  };
}

}  // namespace gw::http
