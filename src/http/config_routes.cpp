// POST /api/v1/config/reload: the same reload as SIGHUP (App::apply_reload), but the caller
// gets the answer: 200 with what now runs, or 422 with every issue and nothing changed. The
// audit row follows the attempt (applied or refused); it holds counts and key paths, never
// values from the file (which may name key files or passwords of a database URL).
#include "core/log.h"
#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

Json issues_json(const ReloadOutcome& outcome) {
  Json details = Json::array();
  for (const auto& i : outcome.issues) {
    details.push_back({{"path", i.path}, {"message", i.message}});
  }
  return details;
}

core::Result<Response> reload_config(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  if (ctx.control == nullptr) {
    return core::make_error(ErrorCode::kInternal, "no running gateway to reload");
  }
  const ReloadOutcome outcome = ctx.control->reload_config_file();
  Json issue_paths = Json::array();
  for (const auto& i : outcome.issues) issue_paths.push_back(i.path);
  auto audit = audit_event(ctx, request, "config.reload", "config",
                           {{"issues", outcome.issues.size()},
                            {"issue_paths", issue_paths},
                            {"destinations", outcome.destinations},
                            {"routes", outcome.routes},
                            {"needs_restart", outcome.needs_restart}});
  audit.outcome = outcome.applied ? "ok" : "failed";
  if (auto id = ctx.index.append_audit(audit); !id.ok()) {
    // The reload happened (or not) either way; a lost audit row is logged, not answered.
    core::logger("http")->error("event=audit_failed action=config.reload reason=\"{}\"",
                                id.error().message);
  }
  if (!outcome.applied) {
    return error_response(
        422, "config_error",
        "the configuration was not applied (" + std::to_string(outcome.issues.size()) + " issue" +
            (outcome.issues.size() == 1 ? "" : "s") + "); the running one is unchanged",
        issues_json(outcome));
  }
  return json_response(200, {{"status", "applied"},
                             {"destinations", outcome.destinations},
                             {"routes", outcome.routes},
                             {"needs_restart", outcome.needs_restart}});
}

}  // namespace

std::vector<Route> config_routes(ApiContext& ctx) {
  return {
      {"POST", "/api/v1/config/reload", index::Role::kOperator, bind_handler(ctx, reload_config),
       "Re-read the config file and apply it atomically, or change nothing (422)"},
  };
}

}  // namespace gw::http
