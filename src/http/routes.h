#pragma once
/// Every resource's routes, one file each (health_routes.cpp, auth_routes.cpp, …), and what
/// they share. The route table is built once at start; handlers capture the ApiContext by
/// reference, so it must outlive the table (HttpService owns both).

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "http/api.h"
#include "http/control.h"
#include "http/rate_limiter.h"
#include "index/index.h"

namespace gw::http {

struct ApiContext {
  index::Index& index;
  LoginRateLimiter& login_limiter;
  /// The running gateway (status, metrics, waking forwarders); null in unit tests.
  GatewayControl* control = nullptr;
  NowFn now_ms = system_now_ms;
};

/// GET /health (and /api/v1/health): no authentication, no index access; 503 while ingest is
/// stopped (GatewayControl::ingest_stopped).
std::vector<Route> health_routes(ApiContext& ctx);
/// POST /api/v1/auth/token: user name + password -> a new token (rate-limited).
std::vector<Route> auth_routes(ApiContext& ctx);
/// /api/v1/users (admin).
std::vector<Route> user_routes(ApiContext& ctx);
/// /api/v1/tokens: one's own tokens (admins: everyone's).
std::vector<Route> token_routes(ApiContext& ctx);
/// /api/v1/studies, /api/v1/studies/{uid}, …/series, /api/v1/instances/{uid}.
std::vector<Route> study_routes(ApiContext& ctx);
/// /api/v1/queue, …/{id}/retry, DELETE …/{id}.
std::vector<Route> queue_routes(ApiContext& ctx);
/// GET /api/v1/audit (admin).
std::vector<Route> audit_routes(ApiContext& ctx);
/// GET /api/v1/status, GET /api/v1/metrics (from ctx.control).
std::vector<Route> status_routes(ApiContext& ctx);
/// POST /api/v1/config/reload (ctx.control applies it).
std::vector<Route> config_routes(ApiContext& ctx);
/// GET /api/v1/destinations, …/{name}, POST …/{name}/echo (configured ones, read-only).
std::vector<Route> destination_routes(ApiContext& ctx);
/// GET /api/v1/certs/info (viewer), POST /api/v1/certs/upload (admin).
std::vector<Route> certs_routes(ApiContext& ctx);

/// All of the above: the table the server registers (and docs/openapi.yaml documents).
std::vector<Route> api_routes(ApiContext& ctx);

// ---- shared by the route files ----

/// A handler written with Result: an error becomes its error_response.
Handler with_errors(std::function<core::Result<Response>(const Request&)> handler);
/// The shape of every resource handler.
using ResultHandler = core::Result<Response> (*)(const ApiContext&, const Request&);
/// `fn` bound to `ctx` (which outlives the route table), errors answered by with_errors.
Handler bind_handler(const ApiContext& ctx, ResultHandler fn);

/// An audit row for an API action by the request's user (same transaction as the write when
/// the index takes one). `details`: a JSON object; no passwords or tokens ever.
index::AuditEvent audit_event(const ApiContext& ctx, const Request& request, std::string action,
                              std::string target, const Json& details = Json::object());

/// API-issued tokens: 12 h unless asked, 30 days at most.
inline constexpr std::chrono::seconds kDefaultTokenTtl{12 * 3600};
inline constexpr std::chrono::seconds kMaxTokenTtl{30 * 86400};

/// The `ttl` field of a token request (seconds or "12h"): kDefaultTokenTtl when absent,
/// kInvalidArgument outside [1 s, kMaxTokenTtl].
core::Result<std::chrono::seconds> requested_ttl(const Json& body);

/// Creates a token for `user` (only its hash is stored), audited as `action` in the same
/// transaction, and answers `status` with {token, id, token_type, expires_at, user}: the only
/// time the token is ever shown.
core::Result<Response> issue_token(const ApiContext& ctx, const Request& request,
                                   const index::User& user, std::chrono::seconds ttl,
                                   const std::string& description, const std::string& action,
                                   int status);

/// crypto::hash_password / verify_password, at most two at a time across the API: each holds
/// 64 MiB while it runs, and these run on behalf of unauthenticated clients (login).
core::Result<std::string> hash_password_bounded(std::string_view password);
bool verify_password_bounded(std::string_view password, const std::string& encoded);

/// kInternal for an index failure, so the client sees 500 and the log the reason. Errors
/// that are answers (not found, conflict…) pass through.
core::Error index_error(core::Error error);

}  // namespace gw::http
