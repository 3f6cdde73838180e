#include "http/routes.h"

#include <semaphore>

#include "crypto/password.h"
#include "crypto/token.h"
#include "http/auth.h"
#include "http/params.h"

namespace gw::http {

std::vector<Route> api_routes(ApiContext& ctx) {
  std::vector<Route> all;
  for (auto part : {health_routes(ctx), auth_routes(ctx), user_routes(ctx), token_routes(ctx),
                    study_routes(ctx), queue_routes(ctx), audit_routes(ctx), status_routes(ctx)}) {
    for (auto& r : part) all.push_back(std::move(r));
  }
  for (auto part : {config_routes(ctx), destination_routes(ctx)}) {
    for (auto& r : part) all.push_back(std::move(r));
  }
  for (auto& r : certs_routes(ctx)) all.push_back(std::move(r));
  return all;
}

Handler with_errors(std::function<core::Result<Response>(const Request&)> handler) {
  return [handler = std::move(handler)](const Request& request) {
    auto response = handler(request);
    if (!response.ok()) return error_response(response.error());
    return std::move(response).value();
  };
}

Handler bind_handler(const ApiContext& ctx, ResultHandler fn) {
  return with_errors([&ctx, fn](const Request& r) { return fn(ctx, r); });
}

index::AuditEvent audit_event(const ApiContext& ctx, const Request& request, std::string action,
                              std::string target, const Json& details) {
  index::AuditEvent e;
  e.at_ms = ctx.now_ms();
  e.actor = request.actor;
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = "ok";
  e.peer_address = request.peer_address;
  e.details = details.is_object() ? details.dump() : "{}";
  return e;
}

core::Result<std::chrono::seconds> requested_ttl(const Json& body) {
  const auto it = body.find("ttl");
  if (it == body.end() || it->is_null()) return kDefaultTokenTtl;
  auto ttl = parse_duration(*it);
  if (!ttl.ok())
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "field `ttl`: " + ttl.error().message);
  if (*ttl < std::chrono::seconds(1) || *ttl > kMaxTokenTtl) {
    return core::make_error(
        core::ErrorCode::kInvalidArgument,
        "field `ttl`: from 1 second to 30 days (" + std::to_string(kMaxTokenTtl.count()) + " s)");
  }
  return *ttl;
}

core::Result<Response> issue_token(const ApiContext& ctx, const Request& request,
                                   const index::User& user, std::chrono::seconds ttl,
                                   const std::string& description, const std::string& action,
                                   int status) {
  auto token = crypto::new_api_token();
  if (!token.ok()) return index_error(token.error());
  const auto now = ctx.now_ms();
  index::ApiToken t;
  t.user_id = user.id;
  t.token_hash = crypto::token_hash(*token);
  t.description = description;
  t.created_at_ms = now;
  t.expires_at_ms = now + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count();
  // The actor is the token's user: at login the request is not authenticated yet. No target:
  // the index names it "token:<new id>" inside the transaction.
  auto audit =
      audit_event(ctx, request, action, "", {{"ttl_s", ttl.count()}, {"description", description}});
  audit.actor = actor_of(user);
  auto id = ctx.index.create_token(t, &audit);
  if (!id.ok()) return index_error(id.error());
  return json_response(status, {{"token", *token},
                                {"id", *id},
                                {"token_type", "Bearer"},
                                {"expires_at", format_time(t.expires_at_ms)},
                                {"user", user.name},
                                {"role", index::to_string(user.role)}});
}

namespace {

/// Concurrent argon2id computations (see hash_password_bounded).
std::counting_semaphore<2> password_work_slots(2);

class PasswordWorkSlot {
 public:
  PasswordWorkSlot() { password_work_slots.acquire(); }
  ~PasswordWorkSlot() { password_work_slots.release(); }
  PasswordWorkSlot(const PasswordWorkSlot&) = delete;
  PasswordWorkSlot& operator=(const PasswordWorkSlot&) = delete;
};

}  // namespace

core::Result<std::string> hash_password_bounded(std::string_view password) {
  PasswordWorkSlot slot;
  return crypto::hash_password(password);
}

bool verify_password_bounded(std::string_view password, const std::string& encoded) {
  PasswordWorkSlot slot;
  return crypto::verify_password(password, encoded);
}

core::Error index_error(core::Error error) {
  switch (error.code) {
    case core::ErrorCode::kNotFound:
    case core::ErrorCode::kAlreadyExists:
    case core::ErrorCode::kConflict:
    case core::ErrorCode::kInvalidArgument:
      return error;
    default:
      return core::make_error(
          core::ErrorCode::kInternal,
          std::string(core::error_code_name(error.code)) + ": " + error.message);
  }
}

}  // namespace gw::http
