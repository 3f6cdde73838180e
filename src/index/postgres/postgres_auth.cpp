// Users, API tokens and audit rows of PostgresIndex (schema: migration 1 in migrations.cpp).
// Every write that takes an AuditEvent is one transaction holding the change and its audit
// row, so a failed change (a taken name, an unknown id) leaves no audit row behind either.
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "index/postgres/pg_connection.h"
#include "index/postgres/pg_pool.h"
#include "index/postgres/pg_sql.h"
#include "index/postgres/postgres_index.h"
#include "index/validation.h"

namespace gw::index {

using core::ErrorCode;
using core::make_error;
using pg::Params;
using pg::PgConnection;
using pg::Rows;

namespace {

// Columns of User, in the order read_user() expects.
constexpr const char* kUserColumns =
    "u.id, u.name, u.role, u.password_hash, u.disabled, u.created_at_ms, u.updated_at_ms";
// Columns of ApiToken, in the order read_token() expects.
constexpr const char* kTokenColumns =
    "t.id, t.user_id, t.token_hash, t.description, t.created_at_ms, t.expires_at_ms, "
    "t.revoked_at_ms, t.last_used_at_ms";
constexpr int kTokenColumnCount = 8;

Result<User> read_user(const Rows& rows, int row, int c) {
  User u;
  u.id = rows.int64(row, c++);
  u.name = rows.text(row, c++);
  GW_ASSIGN_OR_RETURN(u.role, stored_role(u.id, rows.text(row, c++)));
  u.password_hash = rows.text(row, c++);
  u.disabled = rows.boolean(row, c++);
  u.created_at_ms = rows.int64(row, c++);
  u.updated_at_ms = rows.int64(row, c++);
  return u;
}

ApiToken read_token(const Rows& rows, int row) {
  ApiToken t;
  int c = 0;
  t.id = rows.int64(row, c++);
  t.user_id = rows.int64(row, c++);
  t.token_hash = rows.text(row, c++);
  t.description = rows.text(row, c++);
  t.created_at_ms = rows.int64(row, c++);
  t.expires_at_ms = rows.int64(row, c++);
  t.revoked_at_ms = rows.int64(row, c++);
  t.last_used_at_ms = rows.int64(row, c++);
  return t;
}

Result<std::optional<User>> first_user(const Rows& rows) {
  if (rows.empty()) return std::optional<User>();
  GW_ASSIGN_OR_RETURN(auto user, read_user(rows, 0, 0));
  return std::optional<User>(std::move(user));
}

Status not_found_unless_one(const Rows& rows, const std::string& what) {
  if (rows.affected() == 1) return core::ok_status();
  return make_error(ErrorCode::kNotFound, what + ": not found");
}

// The columns of AuditEvent, in the order read_audit() expects.
constexpr const char* kAuditColumns =
    "id, at_ms, actor, action, target, outcome, peer_address, details";

AuditEvent read_audit(const Rows& rows, int row) {
  AuditEvent e;
  e.id = rows.int64(row, 0);
  e.at_ms = rows.int64(row, 1);
  e.actor = rows.text(row, 2);
  e.action = rows.text(row, 3);
  e.target = rows.text(row, 4);
  e.outcome = rows.text(row, 5);
  e.peer_address = rows.text(row, 6);
  e.details = rows.text(row, 7);
  return e;
}

}  // namespace

// ---- helpers ----

Result<std::int64_t> PostgresIndex::insert_audit(PgConnection& conn, const AuditEvent& e) {
  GW_RETURN_IF_ERROR(check_audit(e));
  // The WHERE refuses details that are not a JSON object without raising an error (which would
  // abort the caller's transaction); the column's CHECK says the same for any other writer.
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn.exec(R"sql(
INSERT INTO audit (at_ms, actor, action, target, outcome, peer_address, details)
SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text
WHERE gw_is_json_object($7::text)
RETURNING id
)sql",
                                Params()
                                    .add(e.at_ms != 0 ? e.at_ms : core::wall_clock_ms())
                                    .add(e.actor)
                                    .add(e.action)
                                    .add(e.target)
                                    .add(e.outcome)
                                    .add(e.peer_address)
                                    .add(e.details.empty() ? std::string("{}") : e.details)));
  if (rows.empty()) {
    return audit_details_error();
  }
  return rows.int64(0, 0);
}

Status PostgresIndex::maybe_audit(PgConnection& conn, const AuditEvent* audit) {
  if (audit != nullptr) GW_RETURN_IF_ERROR(insert_audit(conn, *audit));
  return core::ok_status();
}

// ---- users ----

Result<std::int64_t> PostgresIndex::create_user(const User& user, const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_user_name(user.name, "create user"));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  // DO NOTHING + no row returned tells a taken name apart from a real failure.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
INSERT INTO users (name, role, password_hash, disabled, created_at_ms, updated_at_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT ((lower(name))) DO NOTHING
RETURNING id
)sql",
                                            Params()
                                                .add(user.name)
                                                .add(to_string(user.role))
                                                .add(user.password_hash)
                                                .add(user.disabled)
                                                .add(user.created_at_ms)
                                                .add(user.updated_at_ms)));
  if (rows.empty()) {
    return make_error(ErrorCode::kAlreadyExists, "user '" + user.name + "' already exists");
  }
  const std::int64_t id = rows.int64(0, 0);
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  GW_RETURN_IF_ERROR(tx.commit());
  return id;
}

Status PostgresIndex::update_user(const User& user, const AuditEvent* audit, bool revoke_tokens) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  if (revoke_tokens) {
    GW_RETURN_IF_ERROR(conn->exec(
        "UPDATE api_tokens SET revoked_at_ms = $2 WHERE user_id = $1 AND revoked_at_ms = 0",
        Params().add(user.id).add(user.updated_at_ms)));
  }
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
UPDATE users SET role = $2, password_hash = $3, disabled = $4, updated_at_ms = $5
WHERE id = $1
)sql",
                                            Params()
                                                .add(user.id)
                                                .add(to_string(user.role))
                                                .add(user.password_hash)
                                                .add(user.disabled)
                                                .add(user.updated_at_ms)));
  GW_RETURN_IF_ERROR(not_found_unless_one(rows, "user " + std::to_string(user.id)));
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  return tx.commit();
}

Result<bool> PostgresIndex::replace_password_hash(std::int64_t user_id, const std::string& old_hash,
                                                  const std::string& new_hash) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(
      auto rows,
      conn->exec("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
                 Params().add(user_id).add(old_hash).add(new_hash)));
  return rows.affected() == 1;
}

Status PostgresIndex::delete_user(std::int64_t user_id, const AuditEvent* audit) {
  // The interface has no clock argument here: the revocation time is the audited moment when
  // there is one, else now.
  const std::int64_t now_ms =
      audit != nullptr && audit->at_ms != 0 ? audit->at_ms : core::wall_clock_ms();
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    GW_ASSIGN_OR_RETURN(auto rows,
                        conn->exec("DELETE FROM users WHERE id = $1", Params().add(user_id)));
    GW_RETURN_IF_ERROR(not_found_unless_one(rows, "user " + std::to_string(user_id)));
  }
  // Kept, not deleted: the rows say which tokens existed and when they stopped working.
  GW_RETURN_IF_ERROR(conn->exec(
      "UPDATE api_tokens SET revoked_at_ms = $2 WHERE user_id = $1 AND revoked_at_ms = 0",
      Params().add(user_id).add(now_ms)));
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  return tx.commit();
}

Result<std::optional<User>> PostgresIndex::find_user(const std::string& name) {
  if (!valid_user_name(name)) return std::optional<User>();
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string("SELECT ") + kUserColumns +
                                                " FROM users u WHERE lower(u.name) = lower($1)",
                                            Params().add(name)));
  return first_user(rows);
}

Result<std::optional<User>> PostgresIndex::find_user_by_id(std::int64_t user_id) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(
      auto rows, conn->exec(std::string("SELECT ") + kUserColumns + " FROM users u WHERE u.id = $1",
                            Params().add(user_id)));
  return first_user(rows);
}

Result<std::vector<User>> PostgresIndex::list_users() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn->exec(std::string("SELECT ") + kUserColumns +
                                 " FROM users u ORDER BY lower(u.name) COLLATE \"C\", u.id"));
  std::vector<User> out;
  for (int row = 0; row < rows.size(); ++row) {
    GW_ASSIGN_OR_RETURN(auto user, read_user(rows, row, 0));
    out.push_back(std::move(user));
  }
  return out;
}

Result<std::int64_t> PostgresIndex::count_users() {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT count(*) FROM users"));
  return rows.int64(0, 0);
}

// ---- tokens ----

Result<std::int64_t> PostgresIndex::create_token(const ApiToken& token, const AuditEvent* audit) {
  GW_RETURN_IF_ERROR(check_new_token(token));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  {
    // api_tokens.user_id has no foreign key (see migration 1); FOR SHARE keeps the owner from
    // being deleted until this commits.
    GW_ASSIGN_OR_RETURN(auto rows, conn->exec("SELECT 1 FROM users WHERE id = $1 FOR SHARE",
                                              Params().add(token.user_id)));
    if (rows.empty()) {
      return make_error(ErrorCode::kNotFound,
                        "create token: user " + std::to_string(token.user_id) + " not found");
    }
  }
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
INSERT INTO api_tokens (user_id, token_hash, description, created_at_ms, expires_at_ms,
                        revoked_at_ms, last_used_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (token_hash) DO NOTHING
RETURNING id
)sql",
                                            Params()
                                                .add(token.user_id)
                                                .add(token.token_hash)
                                                .add(token.description)
                                                .add(token.created_at_ms)
                                                .add(token.expires_at_ms)
                                                .add(token.revoked_at_ms)
                                                .add(token.last_used_at_ms)));
  if (rows.empty()) {
    return make_error(ErrorCode::kAlreadyExists, "create token: that token is already stored");
  }
  const std::int64_t id = rows.int64(0, 0);
  if (audit != nullptr && audit->target.empty()) {
    // Only here, inside the transaction, is the new id known.
    AuditEvent named = *audit;
    named.target = "token:" + std::to_string(id);
    GW_RETURN_IF_ERROR(insert_audit(*conn, named));
  } else {
    GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  }
  GW_RETURN_IF_ERROR(tx.commit());
  return id;
}

Result<std::optional<TokenOwner>> PostgresIndex::find_token(const std::string& token_hash) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // The inner join drops tokens of deleted users: there is no one to authenticate as.
  GW_ASSIGN_OR_RETURN(auto rows,
                      conn->exec(std::string("SELECT ") + kTokenColumns + ", " + kUserColumns +
                                     " FROM api_tokens t JOIN users u ON u.id = t.user_id"
                                     " WHERE t.token_hash = $1",
                                 Params().add(token_hash)));
  if (rows.empty()) return std::optional<TokenOwner>();
  TokenOwner owner;
  owner.token = read_token(rows, 0);
  GW_ASSIGN_OR_RETURN(owner.user, read_user(rows, 0, kTokenColumnCount));
  return std::optional<TokenOwner>(std::move(owner));
}

Status PostgresIndex::revoke_token(std::int64_t token_id, std::int64_t now_ms,
                                   const AuditEvent* audit) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  pg::Transaction tx(*conn);
  GW_RETURN_IF_ERROR(tx.begin());
  // Revoking twice keeps the first time: that is when the token stopped working.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(R"sql(
UPDATE api_tokens SET revoked_at_ms = CASE WHEN revoked_at_ms = 0 THEN $2 ELSE revoked_at_ms END
WHERE id = $1
)sql",
                                            Params().add(token_id).add(now_ms)));
  GW_RETURN_IF_ERROR(not_found_unless_one(rows, "token " + std::to_string(token_id)));
  GW_RETURN_IF_ERROR(maybe_audit(*conn, audit));
  return tx.commit();
}

Status PostgresIndex::touch_token(std::int64_t token_id, std::int64_t now_ms) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // greatest(): two requests finishing out of order never move last use backwards.
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec("UPDATE api_tokens SET last_used_at_ms = "
                                            "greatest(last_used_at_ms, $2) WHERE id = $1",
                                            Params().add(token_id).add(now_ms)));
  return not_found_unless_one(rows, "token " + std::to_string(token_id));
}

Result<std::vector<ApiToken>> PostgresIndex::list_tokens(std::int64_t user_id) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  // Ids grow with creation (identity), so id order is creation order.
  auto rows = user_id == 0
                  ? conn->exec(std::string("SELECT ") + kTokenColumns +
                               " FROM api_tokens t ORDER BY t.id DESC")
                  : conn->exec(std::string("SELECT ") + kTokenColumns +
                                   " FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.id DESC",
                               Params().add(user_id));
  if (!rows.ok()) return rows.error();
  std::vector<ApiToken> out;
  for (int row = 0; row < rows->size(); ++row) out.push_back(read_token(*rows, row));
  return out;
}

// ---- audit ----

Result<std::int64_t> PostgresIndex::append_audit(const AuditEvent& event) {
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  return insert_audit(*conn, event);
}

Result<std::vector<AuditEvent>> PostgresIndex::list_audit(const AuditQuery& q) {
  GW_RETURN_IF_ERROR(check_page(q.limit, q.offset, "list audit"));
  Params params;
  std::string sql = std::string("SELECT ") + kAuditColumns + " FROM audit WHERE true";
  if (q.since_ms != 0) sql += " AND at_ms >= " + params.placeholder(q.since_ms);
  if (q.until_ms != 0) sql += " AND at_ms < " + params.placeholder(q.until_ms);
  if (!q.actor.empty()) sql += " AND actor = " + params.placeholder(q.actor);
  std::string action = q.action;
  const bool prefix = action.ends_with('*');
  if (prefix) action.pop_back();
  if (!action.empty()) {
    sql += prefix ? " AND " + pg::prefix_condition("action", action, params)
                  : " AND action = " + params.placeholder(action);
  }
  sql += " ORDER BY at_ms DESC, id DESC LIMIT " + params.placeholder(q.limit);
  sql += " OFFSET " + params.placeholder(q.offset);
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(sql, params));
  std::vector<AuditEvent> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int row = 0; row < rows.size(); ++row) {
    out.push_back(read_audit(rows, row));
  }
  return out;
}

Result<AuditPage> PostgresIndex::list_audit_after(std::int64_t after_id, std::int64_t limit) {
  GW_RETURN_IF_ERROR(check_page(limit, 0, "list audit after"));
  GW_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
  AuditPage page;
  GW_ASSIGN_OR_RETURN(auto last, conn->exec("SELECT coalesce(max(id), 0) FROM audit"));
  if (last.size() > 0) page.last_id = last.int64(0, 0);
  if (limit == 0) return page;
  // Identity values are taken at insert and commit in any order: a reader can see id 12
  // before 11 commits. The exporter handles such gaps (audit/syslog_export.h).
  GW_ASSIGN_OR_RETURN(auto rows, conn->exec(std::string("SELECT ") + kAuditColumns +
                                                " FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
                                            Params().add(after_id).add(limit)));
  page.events.reserve(static_cast<std::size_t>(rows.size()));
  for (int row = 0; row < rows.size(); ++row) page.events.push_back(read_audit(rows, row));
  return page;
}

}  // namespace gw::index
