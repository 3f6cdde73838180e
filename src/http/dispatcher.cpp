#include "http/dispatcher.h"

#include <exception>

#include "core/log.h"

namespace gw::http {

namespace {

/// RFC 6750 3: a 401 says which scheme it wants; error="invalid_token" once one was sent.
Response unauthenticated(const Request& request, const core::Error& error) {
  Response r = error_response(error);
  std::string challenge = "Bearer realm=\"dicom-gw\"";
  if (request.header("authorization")) challenge += ", error=\"invalid_token\"";
  r.headers.emplace_back("WWW-Authenticate", challenge);
  return r;
}

}  // namespace

Response Dispatcher::handle(Request& request) const {
  if (auto st = auth_.refuse_query_token(request); !st.ok()) return error_response(st.error());

  auto match = router_.match(request.method, request.path);
  if (match.kind == RouteMatch::Kind::kNotFound) {
    return error_response(404, "not_found", "no such resource: " + request.path);
  }
  if (match.kind == RouteMatch::Kind::kMethodNotAllowed) {
    std::string allow;
    for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
    Response r = error_response(405, "method_not_allowed",
                                request.method + " is not allowed here (allowed: " + allow + ")");
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  const Route& route = *match.route;
  request.path_params = std::move(match.params);

  if (route.min_role) {
    auto owner = auth_.authenticate(request, *route.min_role);
    if (!owner.ok()) {
      if (owner.error().code == core::ErrorCode::kUnauthenticated) {
        return unauthenticated(request, owner.error());
      }
      return error_response(owner.error());
    }
    request.token_id = owner->token.id;
    request.actor = actor_of(owner->user);
    request.user = std::move(owner->user);
  }

  try {
    return route.handler(request);
  } catch (const std::exception& e) {
    core::logger("http")->error("event=handler_exception route=\"{} {}\" what=\"{}\"", route.method,
                                route.pattern, e.what());
  } catch (...) {
    core::logger("http")->error("event=handler_exception route=\"{} {}\" what=unknown",
                                route.method, route.pattern);
  }
  return error_response(500, "internal", "internal error (details are in the gateway log)");
}

}  // namespace gw::http
