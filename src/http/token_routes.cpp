// /api/v1/tokens: every user lists, creates and revokes their own tokens; admins see and revoke
// everyone's. A token is shown once, when created; listings carry ids and dates, never hashes.
// Someone else's token is "not found" to a non-admin, so ids do not reveal other users' tokens.
// A token never mints one that outlives it: the new token's expiry is capped at the caller's
// (a leaked short-lived token must not turn into a 30-day one).
#include <algorithm>
#include <chrono>
#include <map>

#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

constexpr std::size_t kMaxDescription = 200;

std::string_view token_state(const index::ApiToken& t, std::int64_t now) {
  if (t.revoked_at_ms != 0) return "revoked";
  if (t.expires_at_ms != 0 && now >= t.expires_at_ms) return "expired";
  return "active";
}

Json token_json(const index::ApiToken& t, const std::string& user_name, std::int64_t now,
                std::int64_t current_token_id) {
  return {{"id", t.id},
          {"user", user_name},
          {"description", t.description},
          {"state", token_state(t, now)},
          {"created_at", time_or_null(t.created_at_ms)},
          {"expires_at", time_or_null(t.expires_at_ms)},
          {"revoked_at", time_or_null(t.revoked_at_ms)},
          {"last_used_at", time_or_null(t.last_used_at_ms)},
          {"current", t.id == current_token_id}};
}

bool is_admin(const Request& request) {
  return request.user && request.user->role == index::Role::kAdmin;
}

core::Result<Response> list_tokens(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  const index::User& me = *request.user;
  auto tokens = ctx.index.list_tokens(is_admin(request) ? 0 : me.id);
  if (!tokens.ok()) return index_error(tokens.error());
  std::map<std::int64_t, std::string> names = {{me.id, me.name}};
  if (is_admin(request)) {
    auto users = ctx.index.list_users();
    if (!users.ok()) return index_error(users.error());
    for (const auto& u : *users) names[u.id] = u.name;
  }
  const auto now = ctx.now_ms();
  Json out = Json::array();
  for (const auto& t : *tokens) {
    const auto name = names.find(t.user_id);
    // A deleted user's revoked tokens stay for the record, without a name.
    out.push_back(token_json(t, name == names.end() ? "" : name->second, now, request.token_id));
  }
  return json_response(200, {{"tokens", out}});
}

core::Result<Response> create_token(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(Json body, json_body(request, {"ttl", "description"}, true));
  GW_ASSIGN_OR_RETURN(auto ttl, requested_ttl(body));
  GW_ASSIGN_OR_RETURN(auto description, optional_string(body, "description"));
  if (description && description->size() > kMaxDescription) {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "field `description`: at most 200 characters");
  }
  // The calling token's expiry caps the new one's (one that never expires caps nothing).
  auto mine = ctx.index.list_tokens(request.user->id);
  if (!mine.ok()) return index_error(mine.error());
  const auto caller = std::find_if(mine->begin(), mine->end(), [&](const index::ApiToken& t) {
    return t.id == request.token_id;
  });
  if (caller == mine->end()) {
    return core::make_error(ErrorCode::kUnauthenticated, "token not found");
  }
  if (caller->expires_at_ms != 0) {
    // Whole seconds, rounded down. issue_token reads the clock again: the new expiry can pass
    // the caller's by no more than the milliseconds between the two reads.
    const auto left = std::chrono::seconds((caller->expires_at_ms - ctx.now_ms()) / 1000);
    if (left < std::chrono::seconds(1)) {
      return core::make_error(ErrorCode::kUnauthenticated, "token expires within a second");
    }
    ttl = std::min(ttl, left);
  }
  return issue_token(ctx, request, *request.user, ttl, description.value_or("api"), "token.create",
                     201);
}

core::Result<Response> revoke_token(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(auto id, path_id(request, "id"));
  auto tokens = ctx.index.list_tokens(is_admin(request) ? 0 : request.user->id);
  if (!tokens.ok()) return index_error(tokens.error());
  const auto it = std::find_if(tokens->begin(), tokens->end(),
                               [id](const index::ApiToken& t) { return t.id == id; });
  if (it == tokens->end()) {
    return core::make_error(ErrorCode::kNotFound, "no token " + std::to_string(id));
  }
  if (it->revoked_at_ms != 0) return no_content();  // already revoked: nothing changes
  auto audit = audit_event(ctx, request, "token.revoke", "token:" + std::to_string(id),
                           {{"user_id", it->user_id}});
  if (auto st = ctx.index.revoke_token(id, ctx.now_ms(), &audit); !st.ok()) {
    return index_error(st.error());
  }
  return no_content();
}

}  // namespace

std::vector<Route> token_routes(ApiContext& ctx) {
  constexpr auto kViewer = index::Role::kViewer;
  return {
      {"GET", "/api/v1/tokens", kViewer, bind_handler(ctx, list_tokens),
       "List your tokens (admins: everyone's)"},
      {"POST", "/api/v1/tokens", kViewer, bind_handler(ctx, create_token),
       "Create a token for yourself"},
      {"DELETE", "/api/v1/tokens/{id}", kViewer, bind_handler(ctx, revoke_token),
       "Revoke a token (your own; admins: any)"},
  };
}

}  // namespace gw::http
