#pragma once
/// Users, API tokens and the audit trail, as the index stores them. The index never sees a
/// password or a token: only their hashes (crypto/). Audit rows are append-only (the schema
/// refuses UPDATE and DELETE), and a write that is audited takes its AuditEvent into the same
/// transaction, so an action and its audit row are committed together or not at all.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::index {

enum class Role { kAdmin, kOperator, kViewer };
/// "admin" | "operator" | "viewer".
std::string_view to_string(Role role);
std::optional<Role> role_from_string(std::string_view text);

/// User names: 1-64 characters of [A-Za-z0-9._@-] (safe in a URL path, a log line and an
/// audit actor "user:NAME"). Unique without regard to case.
bool valid_user_name(std::string_view name);

struct User {
  std::int64_t id = 0;
  std::string name;  ///< unique, 1-64 characters [A-Za-z0-9._@-]
  Role role = Role::kViewer;
  std::string password_hash;  ///< argon2id encoded string (crypto/password.h); never logged
  bool disabled = false;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;

  bool operator==(const User&) const = default;
};

struct ApiToken {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string token_hash;   ///< SHA-256 hex of the token (crypto/token.h); unique
  std::string description;  ///< what it is for ("monitoring", "created by dicom-gw user token")
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  ///< 0 = never
  std::int64_t revoked_at_ms = 0;  ///< 0 = not revoked
  std::int64_t last_used_at_ms = 0;

  bool operator==(const ApiToken&) const = default;
};

/// A token with its user, as the API's authentication needs it.
struct TokenOwner {
  ApiToken token;
  User user;
};

/// One audit row. Never holds patient names or IDs, passwords or tokens: UIDs, AE titles,
/// addresses, certificate subjects, counts and reasons only.
struct AuditEvent {
  std::int64_t id = 0;     ///< assigned by the index
  std::int64_t at_ms = 0;  ///< when it happened (Unix ms)
  /// Who: "user:alice", "ae:CT1", "system" (start, reload by SIGHUP), "cli" (local command).
  std::string actor;
  /// What, dotted: "auth.login", "auth.login_failed", "token.create", "token.revoke",
  /// "user.create", "user.update", "user.delete", "config.reload", "certs.upload",
  /// "association.accepted", "association.rejected", "instances.received",
  /// "instances.forwarded", "queue.retry", "queue.delete", "destination.echo",
  /// "gateway.started", "gateway.stopped" …
  std::string action;
  std::string target;          ///< what it acted on: "user:bob", "token:12", "queue:7", a study UID
  std::string outcome = "ok";  ///< "ok" | "denied" | "failed"
  std::string peer_address;    ///< the client's "ip:port" when there is one
  std::string details;         ///< JSON object text with anything else ("{}" when nothing)

  bool operator==(const AuditEvent&) const = default;
};

/// Filters for list_audit; empty/0 = no filter. Newest first.
struct AuditQuery {
  std::int64_t since_ms = 0;  ///< at_ms >= since_ms
  std::int64_t until_ms = 0;  ///< at_ms < until_ms
  std::string actor;          ///< exact ("user:alice")
  std::string action;         ///< exact, or a prefix when it ends with '*' ("auth.*")
  std::int64_t limit = 100;
  std::int64_t offset = 0;
};

/// A page of audit rows in id order after a cursor (list_audit_after), for exporters that
/// must see every row once (audit/syslog_export.h).
struct AuditPage {
  std::vector<AuditEvent> events;  ///< id > after_id, ascending id, at most `limit`
  std::int64_t last_id = 0;        ///< the highest id in the table now (0: empty)
};

}  // namespace gw::index
