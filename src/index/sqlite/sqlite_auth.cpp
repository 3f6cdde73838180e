// Users, API tokens and audit rows of SqliteIndex (the schema is migration 4 in migrations.cpp).
// Every public method holds mu_ throughout, like the rest of the class. Every write that takes
// an AuditEvent is one BEGIN IMMEDIATE transaction holding the change and its audit row, so a
// failed change (a taken name, an unknown id) leaves no audit row behind either.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "index/sqlite/sqlite_index.h"
#include "index/sqlite/sqlite_statement.h"
#include "index/validation.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

// Columns of User, in the order read_user() expects.
constexpr const char* kUserColumns =
    "u.id, u.name, u.role, u.password_hash, u.disabled, u.created_at_ms, u.updated_at_ms";
// Columns of ApiToken, in the order read_token() expects.
constexpr const char* kTokenColumns =
    "t.id, t.user_id, t.token_hash, t.description, t.created_at_ms, t.expires_at_ms, "
    "t.revoked_at_ms, t.last_used_at_ms";
constexpr int kTokenColumnCount = 8;

Result<User> read_user(const auto& s, int c) {
  User u;
  u.id = s.int64(c++);
  u.name = s.text(c++);
  GW_ASSIGN_OR_RETURN(u.role, stored_role(u.id, s.text(c++)));
  u.password_hash = s.text(c++);
  u.disabled = s.int64(c++) != 0;
  u.created_at_ms = s.int64(c++);
  u.updated_at_ms = s.int64(c++);
  return u;
}

ApiToken read_token(const auto& s) {
  ApiToken t;
  int c = 0;
  t.id = s.int64(c++);
  t.user_id = s.int64(c++);
  t.token_hash = s.text(c++);
  t.description = s.text(c++);
  t.created_at_ms = s.int64(c++);
  t.expires_at_ms = s.int64(c++);
  t.revoked_at_ms = s.int64(c++);
  t.last_used_at_ms = s.int64(c++);
  return t;
}

// The columns of AuditEvent, in the order read_audit() expects.
constexpr const char* kAuditColumns =
    "id, at_ms, actor, action, target, outcome, peer_address, details";

AuditEvent read_audit(const auto& s) {
  AuditEvent e;
  e.id = s.int64(0);
  e.at_ms = s.int64(1);
  e.actor = s.text(2);
  e.action = s.text(3);
  e.target = s.text(4);
  e.outcome = s.text(5);
  e.peer_address = s.text(6);
  e.details = s.text(7);
  return e;
}

}  // namespace

// ---- helpers ----

Result<std::int64_t> SqliteIndex::insert_audit_locked(const AuditEvent& e) {
  GW_RETURN_IF_ERROR(check_audit(e));
  // The WHERE refuses details that are not a JSON object (CASE: json_type would raise an error
  // on malformed text, and CASE is the one form SQLite guarantees to evaluate lazily).
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO audit (at_ms, actor, action, target, outcome, peer_address, details)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
WHERE CASE WHEN json_valid(?7) THEN json_type(?7) = 'object' ELSE 0 END
)sql"));
  s.bind(1, e.at_ms != 0 ? e.at_ms : core::wall_clock_ms());
  s.bind(2, e.actor).bind(3, e.action).bind(4, e.target).bind(5, e.outcome);
  s.bind(6, e.peer_address).bind(7, e.details.empty() ? std::string("{}") : e.details);
  GW_RETURN_IF_ERROR(s.run("append audit row"));
  if (s.changes() != 1) {
    return audit_details_error();
  }
  return s.last_insert_rowid();
}

Status SqliteIndex::maybe_audit_locked(const AuditEvent* audit) {
  if (audit != nullptr) GW_RETURN_IF_ERROR(insert_audit_locked(*audit));
  return core::ok_status();
}

// ---- users ----

Result<std::int64_t> SqliteIndex::create_user(const User& user, const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_user_name(user.name, "create user"));
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  std::int64_t id = 0;
  {
    // DO NOTHING + changes() tells a taken name apart from a real failure without parsing
    // SQLite's error text.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO users (name, role, password_hash, disabled, created_at_ms, updated_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (name) DO NOTHING
)sql"));
    s.bind(1, user.name).bind(2, to_string(user.role)).bind(3, user.password_hash);
    s.bind(4, std::int64_t{user.disabled ? 1 : 0}).bind(5, user.created_at_ms);
    s.bind(6, user.updated_at_ms);
    GW_RETURN_IF_ERROR(s.run("create user"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kAlreadyExists, "user '" + user.name + "' already exists");
    }
    id = s.last_insert_rowid();
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return id;
}

Status SqliteIndex::update_user(const User& user, const AuditEvent* audit, bool revoke_tokens) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  if (revoke_tokens) {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked("UPDATE api_tokens SET revoked_at_ms = ?2 "
                                                 "WHERE user_id = ?1 AND revoked_at_ms = 0"));
    s.bind(1, user.id).bind(2, user.updated_at_ms);
    GW_RETURN_IF_ERROR(s.run("revoke the user's tokens"));
  }
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE users SET role = ?2, password_hash = ?3, disabled = ?4, updated_at_ms = ?5
WHERE id = ?1
)sql"));
    s.bind(1, user.id).bind(2, to_string(user.role)).bind(3, user.password_hash);
    s.bind(4, std::int64_t{user.disabled ? 1 : 0}).bind(5, user.updated_at_ms);
    GW_RETURN_IF_ERROR(s.run("update user"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kNotFound, "user " + std::to_string(user.id) + ": not found");
    }
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  return tx.commit();
}

Result<bool> SqliteIndex::replace_password_hash(std::int64_t user_id, const std::string& old_hash,
                                                const std::string& new_hash) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked("UPDATE users SET password_hash = ?3 "
                                               "WHERE id = ?1 AND password_hash = ?2"));
  s.bind(1, user_id).bind(2, old_hash).bind(3, new_hash);
  GW_RETURN_IF_ERROR(s.run("replace password hash"));
  return s.changes() == 1;
}

Status SqliteIndex::delete_user(std::int64_t user_id, const AuditEvent* audit) {
  // The interface has no clock argument here: the revocation time is the audited moment when
  // there is one, else now.
  const std::int64_t now_ms =
      audit != nullptr && audit->at_ms != 0 ? audit->at_ms : core::wall_clock_ms();
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked("DELETE FROM users WHERE id = ?"));
    s.bind(1, user_id);
    GW_RETURN_IF_ERROR(s.run("delete user"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kNotFound, "user " + std::to_string(user_id) + ": not found");
    }
  }
  {
    // Kept, not deleted: the rows say which tokens existed and when they stopped working.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE api_tokens SET revoked_at_ms = ?2 WHERE user_id = ?1 AND revoked_at_ms = 0
)sql"));
    s.bind(1, user_id).bind(2, now_ms);
    GW_RETURN_IF_ERROR(s.run("revoke the user's tokens"));
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  return tx.commit();
}

Result<std::optional<User>> SqliteIndex::find_user(const std::string& name) {
  if (!valid_user_name(name)) return std::optional<User>();
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kUserColumns +
                                               " FROM users u WHERE u.name = ?"));
  s.bind(1, name);
  GW_ASSIGN_OR_RETURN(bool row, s.step("find user"));
  if (!row) return std::optional<User>();
  GW_ASSIGN_OR_RETURN(auto user, read_user(s, 0));
  return std::optional<User>(std::move(user));
}

Result<std::optional<User>> SqliteIndex::find_user_by_id(std::int64_t user_id) {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kUserColumns +
                                               " FROM users u WHERE u.id = ?"));
  s.bind(1, user_id);
  GW_ASSIGN_OR_RETURN(bool row, s.step("find user"));
  if (!row) return std::optional<User>();
  GW_ASSIGN_OR_RETURN(auto user, read_user(s, 0));
  return std::optional<User>(std::move(user));
}

Result<std::vector<User>> SqliteIndex::list_users() {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kUserColumns +
                                               " FROM users u ORDER BY u.name, u.id"));
  std::vector<User> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list users"));
    if (!row) break;
    GW_ASSIGN_OR_RETURN(auto user, read_user(s, 0));
    out.push_back(std::move(user));
  }
  return out;
}

Result<std::int64_t> SqliteIndex::count_users() {
  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked("SELECT count(*) FROM users"));
  GW_ASSIGN_OR_RETURN(bool row, s.step("count users"));
  if (!row) return make_error(ErrorCode::kDatabase, "count users: no row");
  return s.int64(0);
}

// ---- tokens ----

Result<std::int64_t> SqliteIndex::create_token(const ApiToken& token, const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_new_token(token));
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    // api_tokens.user_id has no foreign key (see migration 4), so the owner is checked here.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked("SELECT 1 FROM users WHERE id = ?"));
    s.bind(1, token.user_id);
    GW_ASSIGN_OR_RETURN(bool row, s.step("find token owner"));
    if (!row) {
      return make_error(ErrorCode::kNotFound,
                        "create token: user " + std::to_string(token.user_id) + " not found");
    }
  }
  std::int64_t id = 0;
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
INSERT INTO api_tokens (user_id, token_hash, description, created_at_ms, expires_at_ms,
                        revoked_at_ms, last_used_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (token_hash) DO NOTHING
)sql"));
    s.bind(1, token.user_id).bind(2, token.token_hash).bind(3, token.description);
    s.bind(4, token.created_at_ms).bind(5, token.expires_at_ms).bind(6, token.revoked_at_ms);
    s.bind(7, token.last_used_at_ms);
    GW_RETURN_IF_ERROR(s.run("create token"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kAlreadyExists, "create token: that token is already stored");
    }
    id = s.last_insert_rowid();
  }
  if (audit != nullptr && audit->target.empty()) {
    // Only here, inside the transaction, is the new id known.
    AuditEvent named = *audit;
    named.target = "token:" + std::to_string(id);
    GW_RETURN_IF_ERROR(insert_audit_locked(named));
  } else {
    GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return id;
}

Result<std::optional<TokenOwner>> SqliteIndex::find_token(const std::string& token_hash) {
  std::lock_guard lock(mu_);
  // The inner join drops tokens of deleted users: there is no one to authenticate as.
  GW_ASSIGN_OR_RETURN(
      auto s, statement_locked(std::string("SELECT ") + kTokenColumns + ", " + kUserColumns + R"sql(
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = ?
)sql"));
  s.bind(1, token_hash);
  GW_ASSIGN_OR_RETURN(bool row, s.step("find token"));
  if (!row) return std::optional<TokenOwner>();
  TokenOwner owner;
  owner.token = read_token(s);
  GW_ASSIGN_OR_RETURN(owner.user, read_user(s, kTokenColumnCount));
  return std::optional<TokenOwner>(std::move(owner));
}

Status SqliteIndex::revoke_token(std::int64_t token_id, std::int64_t now_ms,
                                 const AuditEvent* audit) {
  std::lock_guard lock(mu_);
  Transaction tx(*this);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    // Revoking twice keeps the first time: that is when the token stopped working.
    GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE api_tokens SET revoked_at_ms = CASE WHEN revoked_at_ms = 0 THEN ?2 ELSE revoked_at_ms END
WHERE id = ?1
)sql"));
    s.bind(1, token_id).bind(2, now_ms);
    GW_RETURN_IF_ERROR(s.run("revoke token"));
    if (s.changes() != 1) {
      return make_error(ErrorCode::kNotFound, "token " + std::to_string(token_id) + ": not found");
    }
  }
  GW_RETURN_IF_ERROR(maybe_audit_locked(audit));
  return tx.commit();
}

Status SqliteIndex::touch_token(std::int64_t token_id, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  // max(): two requests finishing out of order never move last use backwards.
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(R"sql(
UPDATE api_tokens SET last_used_at_ms = max(last_used_at_ms, ?2) WHERE id = ?1
)sql"));
  s.bind(1, token_id).bind(2, now_ms);
  GW_RETURN_IF_ERROR(s.run("touch token"));
  if (s.changes() != 1) {
    return make_error(ErrorCode::kNotFound, "token " + std::to_string(token_id) + ": not found");
  }
  return core::ok_status();
}

Result<std::vector<ApiToken>> SqliteIndex::list_tokens(std::int64_t user_id) {
  std::lock_guard lock(mu_);
  // Ids grow with creation (AUTOINCREMENT), so id order is creation order.
  const std::string sql = std::string("SELECT ") + kTokenColumns + " FROM api_tokens t" +
                          (user_id == 0 ? "" : " WHERE t.user_id = ?1") + " ORDER BY t.id DESC";
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(sql));
  if (user_id != 0) s.bind(1, user_id);
  std::vector<ApiToken> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list tokens"));
    if (!row) break;
    out.push_back(read_token(s));
  }
  return out;
}

// ---- audit ----

Result<std::int64_t> SqliteIndex::append_audit(const AuditEvent& event) {
  std::lock_guard lock(mu_);
  return insert_audit_locked(event);
}

Result<std::vector<AuditEvent>> SqliteIndex::list_audit(const AuditQuery& q) {
  GW_RETURN_IF_ERROR(check_page(q.limit, q.offset, "list audit"));
  // Numbered parameters: each combination of filters is one cached statement.
  std::string sql = std::string("SELECT ") + kAuditColumns + " FROM audit WHERE 1 = 1";
  if (q.since_ms != 0) sql += " AND at_ms >= ?1";
  if (q.until_ms != 0) sql += " AND at_ms < ?2";
  if (!q.actor.empty()) sql += " AND actor = ?3";
  std::string action = q.action;
  const bool prefix = action.ends_with('*');
  if (prefix) action.pop_back();
  if (!action.empty()) {
    // A prefix as a range, which audit_action serves. Every text that starts with `action`
    // sorts below action + "\xff" because UTF-8 never contains the byte 0xFF.
    sql += prefix ? " AND action >= ?4 AND action < ?5" : " AND action = ?4";
  }
  sql += " ORDER BY at_ms DESC, id DESC LIMIT ?6 OFFSET ?7";

  std::lock_guard lock(mu_);
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(sql));
  if (q.since_ms != 0) s.bind(1, q.since_ms);
  if (q.until_ms != 0) s.bind(2, q.until_ms);
  if (!q.actor.empty()) s.bind(3, q.actor);
  if (!action.empty()) {
    s.bind(4, action);
    if (prefix) s.bind(5, action + '\xff');
  }
  s.bind(6, q.limit).bind(7, q.offset);
  std::vector<AuditEvent> out;
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list audit"));
    if (!row) break;
    out.push_back(read_audit(s));
  }
  return out;
}

Result<AuditPage> SqliteIndex::list_audit_after(std::int64_t after_id, std::int64_t limit) {
  GW_RETURN_IF_ERROR(check_page(limit, 0, "list audit after"));
  std::lock_guard lock(mu_);
  AuditPage page;
  {
    GW_ASSIGN_OR_RETURN(auto s, statement_locked("SELECT coalesce(max(id), 0) FROM audit"));
    GW_ASSIGN_OR_RETURN(bool row, s.step("last audit id"));
    if (row) page.last_id = s.int64(0);
  }
  if (limit == 0) return page;
  GW_ASSIGN_OR_RETURN(auto s, statement_locked(std::string("SELECT ") + kAuditColumns +
                                               " FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"));
  s.bind(1, after_id).bind(2, limit);
  for (;;) {
    GW_ASSIGN_OR_RETURN(bool row, s.step("list audit after"));
    if (!row) break;
    page.events.push_back(read_audit(s));
  }
  return page;
}

}  // namespace gw::index
