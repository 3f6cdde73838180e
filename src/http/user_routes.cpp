// /api/v1/users (admin): list, create, change role/password/disabled, delete. Passwords arrive
// here in clear over the API (HTTPS or loopback) and leave only as argon2id hashes. The last
// enabled admin cannot be demoted, disabled or deleted: that would lock everyone out of the API
// (the CLI can still bootstrap one, but that needs a shell on the host).
#include "crypto/password.h"
#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

core::Error invalid(std::string message) {
  return core::make_error(ErrorCode::kInvalidArgument, std::move(message));
}

Json user_json(const index::User& u) {
  return {{"id", u.id},
          {"name", u.name},
          {"role", index::to_string(u.role)},
          {"disabled", u.disabled},
          {"created_at", time_or_null(u.created_at_ms)},
          {"updated_at", time_or_null(u.updated_at_ms)}};
}

core::Result<std::string> checked_password_hash(const std::string& password) {
  if (password.size() < crypto::kMinPasswordBytes || password.size() > crypto::kMaxPasswordBytes) {
    return invalid("field `password`: from " + std::to_string(crypto::kMinPasswordBytes) + " to " +
                   std::to_string(crypto::kMaxPasswordBytes) + " bytes");
  }
  auto hash = hash_password_bounded(password);
  if (!hash.ok()) return index_error(hash.error());
  return std::move(hash).value();
}

core::Result<index::User> existing_user(const ApiContext& ctx, const Request& request) {
  const std::string name = request.path_params.at("name");
  auto user = ctx.index.find_user(name);
  if (!user.ok()) return index_error(user.error());
  if (!user->has_value()) return core::make_error(ErrorCode::kNotFound, "no user named " + name);
  return std::move(**user);
}

/// Enabled admins other than `user_id`: 0 means `user_id` is the last one.
core::Result<std::int64_t> other_enabled_admins(const ApiContext& ctx, std::int64_t user_id) {
  auto users = ctx.index.list_users();
  if (!users.ok()) return index_error(users.error());
  std::int64_t n = 0;
  for (const auto& u : *users) {
    if (u.id != user_id && u.role == index::Role::kAdmin && !u.disabled) ++n;
  }
  return n;
}

core::Result<Response> list_users(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {}));
  auto users = ctx.index.list_users();
  if (!users.ok()) return index_error(users.error());
  Json out = Json::array();
  for (const auto& u : *users) out.push_back(user_json(u));
  return json_response(200, {{"users", out}});
}

core::Result<Response> create_user(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(Json body, json_body(request, {"name", "role", "password", "disabled"}));
  GW_ASSIGN_OR_RETURN(auto name, optional_string(body, "name"));
  GW_ASSIGN_OR_RETURN(auto role_text, optional_string(body, "role"));
  GW_ASSIGN_OR_RETURN(auto password, optional_string(body, "password"));
  GW_ASSIGN_OR_RETURN(auto disabled, optional_bool(body, "disabled"));
  if (!name || !index::valid_user_name(*name)) {
    return invalid("field `name`: required, 1-64 characters from A-Z a-z 0-9 . _ @ -");
  }
  const auto role = role_text ? index::role_from_string(*role_text) : std::nullopt;
  if (!role) return invalid("field `role`: required, one of admin, operator, viewer");
  if (!password) return invalid("field `password`: required");
  GW_ASSIGN_OR_RETURN(auto hash, checked_password_hash(*password));
  index::User u;
  u.name = *name;
  u.role = *role;
  u.password_hash = std::move(hash);
  u.disabled = disabled.value_or(false);
  u.created_at_ms = u.updated_at_ms = ctx.now_ms();
  auto audit = audit_event(ctx, request, "user.create", "user:" + u.name,
                           {{"role", index::to_string(u.role)}, {"disabled", u.disabled}});
  auto id = ctx.index.create_user(u, &audit);
  if (!id.ok()) {
    if (id.error().code == ErrorCode::kAlreadyExists) {
      return core::make_error(ErrorCode::kAlreadyExists, "a user named " + u.name + " exists");
    }
    return index_error(id.error());
  }
  u.id = *id;
  return json_response(201, user_json(u));
}

core::Result<Response> update_user(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(Json body, json_body(request, {"role", "password", "disabled"}));
  GW_ASSIGN_OR_RETURN(auto role_text, optional_string(body, "role"));
  GW_ASSIGN_OR_RETURN(auto password, optional_string(body, "password"));
  GW_ASSIGN_OR_RETURN(auto disabled, optional_bool(body, "disabled"));
  GW_ASSIGN_OR_RETURN(index::User u, existing_user(ctx, request));
  const bool was_enabled_admin = u.role == index::Role::kAdmin && !u.disabled;
  Json changes = Json::object();
  if (role_text) {
    const auto role = index::role_from_string(*role_text);
    if (!role) return invalid("field `role`: one of admin, operator, viewer");
    if (*role != u.role) changes["role"] = *role_text;
    u.role = *role;
  }
  if (disabled) {
    if (*disabled != u.disabled) changes["disabled"] = *disabled;
    u.disabled = *disabled;
  }
  if (password) {
    GW_ASSIGN_OR_RETURN(u.password_hash, checked_password_hash(*password));
    changes["password"] = "changed";
  }
  if (was_enabled_admin && (u.role != index::Role::kAdmin || u.disabled)) {
    GW_ASSIGN_OR_RETURN(auto others, other_enabled_admins(ctx, u.id));
    if (others == 0) {
      return core::make_error(ErrorCode::kConflict,
                              u.name + " is the last enabled admin: make another admin first");
    }
  }
  u.updated_at_ms = ctx.now_ms();
  auto audit = audit_event(ctx, request, "user.update", "user:" + u.name, changes);
  // A password set here (an admin's reset, or the user's own change) ends every token.
  if (auto st = ctx.index.update_user(u, &audit, /*revoke_tokens=*/password.has_value());
      !st.ok()) {
    return index_error(st.error());
  }
  return json_response(200, user_json(u));
}

core::Result<Response> delete_user(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(index::User u, existing_user(ctx, request));
  GW_ASSIGN_OR_RETURN(auto others, other_enabled_admins(ctx, u.id));
  if (u.role == index::Role::kAdmin && !u.disabled && others == 0) {
    return core::make_error(ErrorCode::kConflict,
                            u.name + " is the last enabled admin: make another admin first");
  }
  auto audit = audit_event(ctx, request, "user.delete", "user:" + u.name);
  if (auto st = ctx.index.delete_user(u.id, &audit); !st.ok()) return index_error(st.error());
  return no_content();
}

}  // namespace

std::vector<Route> user_routes(ApiContext& ctx) {
  constexpr auto kAdmin = index::Role::kAdmin;
  auto bind = [&ctx](ResultHandler fn) { return bind_handler(ctx, fn); };
  return {
      {"GET", "/api/v1/users", kAdmin, bind(list_users), "List users"},
      {"POST", "/api/v1/users", kAdmin, bind(create_user), "Create a user"},
      {"PUT", "/api/v1/users/{name}", kAdmin, bind(update_user),
       "Change a user's role, password or disabled flag"},
      {"DELETE", "/api/v1/users/{name}", kAdmin, bind(delete_user),
       "Delete a user (their tokens are revoked)"},
  };
}

}  // namespace gw::http
