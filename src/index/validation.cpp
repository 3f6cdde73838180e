#include "index/validation.h"

namespace gw::index {

using core::ErrorCode;
using core::make_error;

core::Status check_user_name(const std::string& name, const char* what) {
  if (valid_user_name(name)) return core::ok_status();
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(what) + ": a user name is 1-64 characters of A-Z a-z 0-9 . _ @ -");
}

core::Status check_new_token(const ApiToken& token) {
  const std::string& hash = token.token_hash;
  const bool ok = hash.size() == 64 && hash.find_first_not_of("0123456789abcdef") == hash.npos;
  if (!ok) {
    return make_error(ErrorCode::kInvalidArgument,
                      "create token: token_hash must be the SHA-256 hex of the token");
  }
  if (token.expires_at_ms < 0) {
    return make_error(ErrorCode::kInvalidArgument, "create token: negative expiry");
  }
  return core::ok_status();
}

core::Status check_audit(const AuditEvent& e) {
  if (e.actor.empty() || e.action.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "audit: actor and action are required");
  }
  if (e.outcome != "ok" && e.outcome != "denied" && e.outcome != "failed") {
    return make_error(ErrorCode::kInvalidArgument,
                      "audit: outcome must be ok, denied or failed, not '" + e.outcome + "'");
  }
  return core::ok_status();
}

core::Error audit_details_error() {
  return make_error(ErrorCode::kInvalidArgument, "audit: details must be a JSON object");
}

core::Result<Role> stored_role(std::int64_t user_id, const std::string& text) {
  auto parsed = role_from_string(text);
  if (!parsed) {
    return make_error(ErrorCode::kDatabase,
                      "user " + std::to_string(user_id) + ": unknown role '" + text + "'");
  }
  return *parsed;
}

core::Status check_page(std::int64_t limit, std::int64_t offset, const char* what) {
  if (limit < 0 || offset < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(what) + ": negative limit or offset");
  }
  return core::ok_status();
}

core::Status check_lease_owner(const std::string& owner, const char* what) {
  if (owner.empty()) {
    return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": empty lease owner");
  }
  return core::ok_status();
}

core::Status check_lease(const std::string& owner, std::int64_t lease_ms, const char* what) {
  GW_RETURN_IF_ERROR(check_lease_owner(owner, what));
  if (lease_ms <= 0) {
    return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": lease must be positive");
  }
  return core::ok_status();
}

core::Result<OutboxState> stored_outbox_state(std::int64_t id, const std::string& text) {
  auto parsed = outbox_state_from_string(text);
  if (!parsed) {
    return make_error(ErrorCode::kDatabase,
                      "outbox row " + std::to_string(id) + ": unknown state '" + text + "'");
  }
  return *parsed;
}

core::Status check_outbox_destination(const std::string& destination) {
  if (destination.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "insert instance: empty destination name");
  }
  return core::ok_status();
}

core::Error outbox_unchanged_error(std::int64_t id, bool exists, const std::string& conflict) {
  const std::string row = "outbox row " + std::to_string(id);
  if (!exists) return make_error(ErrorCode::kNotFound, row + ": not found");
  return make_error(ErrorCode::kConflict, row + ": " + conflict);
}

core::Status check_destination(const ApiDestination& d) {
  if (d.name.empty()) return make_error(ErrorCode::kInvalidArgument, "destination: empty name");
  if (d.port < 1 || d.port > 65535) {
    return make_error(ErrorCode::kInvalidArgument, "destination " + d.name + ": port 1-65535");
  }
  return core::ok_status();
}

core::Status check_destination_deletable(const std::string& stored_name, std::int64_t queued,
                                         bool force) {
  if (queued > 0 && !force) {
    return make_error(ErrorCode::kConflict,
                      "destination `" + stored_name + "` has " + std::to_string(queued) +
                          " queued or in-flight instance(s); delete with ?force=true to "
                          "dead-letter them");
  }
  return core::ok_status();
}

}  // namespace gw::index
