// The index contract, users / tokens / audit. Ported from tests/unit/index/auth_test.cpp; runs
// on SQLite and on PostgreSQL (index_contract.h).
#include <chrono>
#include <string>
#include <vector>

#include "index_contract.h"

namespace gw::index {
namespace {

using core::ErrorCode;

constexpr std::int64_t kNow = 1'700'000'000'000;

/// 64 hex digits, distinct per n (a stand-in for crypto::token_hash).
std::string fake_hash(int n) {
  std::string hex = std::to_string(n);
  return std::string(64 - hex.size(), 'a') + hex;
}

User make_user(const std::string& name, Role role = Role::kViewer) {
  User u;
  u.name = name;
  u.role = role;
  u.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  u.created_at_ms = kNow;
  u.updated_at_ms = kNow;
  return u;
}

ApiToken make_token(std::int64_t user_id, int n, std::int64_t expires_at_ms = 0) {
  ApiToken t;
  t.user_id = user_id;
  t.token_hash = fake_hash(n);
  t.description = "token " + std::to_string(n);
  t.created_at_ms = kNow + n;
  t.expires_at_ms = expires_at_ms;
  return t;
}

AuditEvent make_event(std::string actor, std::string action, std::int64_t at_ms,
                      std::string target = "") {
  AuditEvent e;
  e.at_ms = at_ms;
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.peer_address = "127.0.0.1:5000";
  e.details = R"({"n":1})";
  return e;
}

AuditQuery query(std::int64_t since_ms, std::int64_t until_ms, std::string actor,
                 std::string action, std::int64_t limit = 100, std::int64_t offset = 0) {
  AuditQuery q;
  q.since_ms = since_ms;
  q.until_ms = until_ms;
  q.actor = std::move(actor);
  q.action = std::move(action);
  q.limit = limit;
  q.offset = offset;
  return q;
}

class IndexAuth : public IndexContract {
 protected:
  std::int64_t add_user(const std::string& name, Role role = Role::kViewer) {
    auto id = index_->create_user(make_user(name, role), nullptr);
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : 0;
  }

  std::vector<AuditEvent> audit(const AuditQuery& q = {}) {
    auto rows = index_->list_audit(q);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() ? *rows : std::vector<AuditEvent>{};
  }
};

INSTANTIATE_INDEX_CONTRACT(IndexAuth);

TEST_P(IndexAuth, UsersCrud) {
  EXPECT_EQ(*index_->count_users(), 0);
  User alice = make_user("alice", Role::kAdmin);
  auto id = index_->create_user(alice, nullptr);
  ASSERT_TRUE(id.ok()) << id.error().message;
  alice.id = *id;
  const std::int64_t bob = add_user("bob");
  EXPECT_NE(bob, alice.id);
  EXPECT_EQ(*index_->count_users(), 2);

  auto found = index_->find_user("alice");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(**found, alice);
  auto by_id = index_->find_user_by_id(alice.id);
  ASSERT_TRUE(by_id.ok() && by_id->has_value());
  EXPECT_EQ(**by_id, alice);
  // Names match without regard to case.
  auto upper = index_->find_user("ALICE");
  ASSERT_TRUE(upper.ok() && upper->has_value());
  EXPECT_EQ((*upper)->name, "alice");
  EXPECT_FALSE(index_->find_user("carol")->has_value());
  EXPECT_FALSE(index_->find_user("not a name")->has_value());
  EXPECT_FALSE(index_->find_user_by_id(999)->has_value());

  auto users = index_->list_users();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].name, "alice");
  EXPECT_EQ((*users)[1].name, "bob");

  User changed = alice;
  changed.name = "ignored";  // the name does not change
  changed.role = Role::kOperator;
  changed.password_hash = "$argon2id$other";
  changed.disabled = true;
  changed.updated_at_ms = kNow + 5;
  ASSERT_TRUE(index_->update_user(changed, nullptr, false).ok());
  auto after = index_->find_user_by_id(alice.id);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->name, "alice");
  EXPECT_EQ((*after)->role, Role::kOperator);
  EXPECT_EQ((*after)->password_hash, "$argon2id$other");
  EXPECT_TRUE((*after)->disabled);
  EXPECT_EQ((*after)->created_at_ms, kNow);
  EXPECT_EQ((*after)->updated_at_ms, kNow + 5);

  User ghost = make_user("ghost");
  ghost.id = 999;
  EXPECT_EQ(index_->update_user(ghost, nullptr, false).error().code, ErrorCode::kNotFound);

  // Revoking goes with the update (at its time); without it the tokens stay, even with a new
  // hash (a rehash at login).
  auto kept = index_->create_token(make_token(after->value().id, 41), nullptr);
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  User role_only = **after;
  role_only.role = Role::kViewer;
  role_only.password_hash = "$argon2id$rehashed";
  role_only.updated_at_ms = kNow + 6;
  ASSERT_TRUE(index_->update_user(role_only, nullptr, false).ok());
  auto tokens = index_->list_tokens(alice.id);
  ASSERT_TRUE(tokens.ok() && tokens->size() == 1u);
  EXPECT_EQ((*tokens)[0].revoked_at_ms, 0);
  User reset = role_only;
  reset.password_hash = "$argon2id$reset";
  reset.updated_at_ms = kNow + 7;
  ASSERT_TRUE(index_->update_user(reset, nullptr, true).ok());
  tokens = index_->list_tokens(alice.id);
  ASSERT_TRUE(tokens.ok() && tokens->size() == 1u);
  EXPECT_EQ((*tokens)[0].revoked_at_ms, kNow + 7);

  ASSERT_TRUE(index_->delete_user(bob, nullptr).ok());
  EXPECT_EQ(index_->delete_user(bob, nullptr).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(*index_->count_users(), 1);
  // Ids are never handed out again, so a deleted user's id keeps meaning that user.
  EXPECT_GT(add_user("bob"), bob);
}

TEST_P(IndexAuth, ReplacePasswordHashOnlyWhileTheHashIsTheOneRead) {
  const std::int64_t id = add_user("alice", Role::kAdmin);
  const std::string read = make_user("alice").password_hash;
  // An admin disables alice and resets her password while her login computes a new hash.
  User changed = make_user("alice", Role::kViewer);
  changed.id = id;
  changed.disabled = true;
  changed.password_hash = "$argon2id$reset";
  changed.updated_at_ms = kNow + 5;
  ASSERT_TRUE(index_->update_user(changed, nullptr, false).ok());
  auto replaced = index_->replace_password_hash(id, read, "$argon2id$rehashed");
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_FALSE(*replaced);
  auto after = index_->find_user_by_id(id);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ(**after, changed) << "the admin's change stands";

  // Unchanged since read: only the hash changes (not role, disabled or updated_at_ms).
  replaced = index_->replace_password_hash(id, "$argon2id$reset", "$argon2id$rehashed");
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_TRUE(*replaced);
  after = index_->find_user_by_id(id);
  ASSERT_TRUE(after.ok() && after->has_value());
  User expected = changed;
  expected.password_hash = "$argon2id$rehashed";
  EXPECT_EQ(**after, expected);

  replaced = index_->replace_password_hash(999, read, "$argon2id$x");
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_FALSE(*replaced) << "no such user";
}

TEST_P(IndexAuth, DuplicateNamesAreRefusedWhateverTheirCase) {
  add_user("alice");
  for (const char* name : {"alice", "Alice", "ALICE"}) {
    auto again = index_->create_user(make_user(name), nullptr);
    ASSERT_FALSE(again.ok()) << name;
    EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists) << name;
  }
  EXPECT_EQ(*index_->count_users(), 1);
}

TEST_P(IndexAuth, InvalidNamesAreRefused) {
  for (const std::string& name :
       {std::string(), std::string(65, 'a'), std::string("a b"), std::string("bob;--"),
        std::string("user:bob"), std::string("b\xc3\xb6rk"), std::string("a\nb"),
        std::string("a/b"), std::string(1, '\0')}) {
    auto id = index_->create_user(make_user(name), nullptr);
    ASSERT_FALSE(id.ok()) << name;
    EXPECT_EQ(id.error().code, ErrorCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(*index_->count_users(), 0);
  EXPECT_TRUE(index_->create_user(make_user(std::string(64, 'z')), nullptr).ok());
  EXPECT_TRUE(index_->create_user(make_user("first.last_2@site-a"), nullptr).ok());
}

TEST_P(IndexAuth, TokensCreateFindRevokeTouchList) {
  const std::int64_t alice = add_user("alice", Role::kAdmin);
  const std::int64_t bob = add_user("bob");
  auto t1 = index_->create_token(make_token(alice, 1, kNow + 1000), nullptr);
  ASSERT_TRUE(t1.ok()) << t1.error().message;
  auto t2 = index_->create_token(make_token(alice, 2), nullptr);
  ASSERT_TRUE(t2.ok());
  auto t3 = index_->create_token(make_token(bob, 3), nullptr);
  ASSERT_TRUE(t3.ok());

  auto found = index_->find_token(fake_hash(1));
  ASSERT_TRUE(found.ok() && found->has_value());
  ApiToken expected = make_token(alice, 1, kNow + 1000);
  expected.id = *t1;
  EXPECT_EQ((*found)->token, expected);
  EXPECT_EQ((*found)->user.name, "alice");
  EXPECT_EQ((*found)->user.role, Role::kAdmin);
  EXPECT_FALSE(index_->find_token(fake_hash(99))->has_value());

  // Revoked: still found (the caller decides), with the first revocation time kept.
  ASSERT_TRUE(index_->revoke_token(*t1, kNow + 10, nullptr).ok());
  ASSERT_TRUE(index_->revoke_token(*t1, kNow + 20, nullptr).ok());
  EXPECT_EQ((*index_->find_token(fake_hash(1)))->token.revoked_at_ms, kNow + 10);
  EXPECT_EQ(index_->revoke_token(999, kNow, nullptr).error().code, ErrorCode::kNotFound);

  ASSERT_TRUE(index_->touch_token(*t2, kNow + 100).ok());
  ASSERT_TRUE(index_->touch_token(*t2, kNow + 50).ok());  // late and out of order: ignored
  EXPECT_EQ((*index_->find_token(fake_hash(2)))->token.last_used_at_ms, kNow + 100);
  EXPECT_EQ(index_->touch_token(999, kNow).error().code, ErrorCode::kNotFound);

  auto of_alice = index_->list_tokens(alice);
  ASSERT_TRUE(of_alice.ok());
  ASSERT_EQ(of_alice->size(), 2u);
  EXPECT_EQ((*of_alice)[0].id, *t2);  // newest first
  EXPECT_EQ((*of_alice)[1].id, *t1);
  auto all = index_->list_tokens(0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_EQ(index_->list_tokens(999)->size(), 0u);
}

TEST_P(IndexAuth, CreateTokenRefusesPlaintextUnknownUsersAndDuplicates) {
  const std::int64_t alice = add_user("alice");
  ApiToken plain = make_token(alice, 1);
  plain.token_hash = "dgw_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
  EXPECT_EQ(index_->create_token(plain, nullptr).error().code, ErrorCode::kInvalidArgument);
  plain.token_hash = std::string(64, 'A');  // upper-case hex is not what token_hash makes
  EXPECT_EQ(index_->create_token(plain, nullptr).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(index_->create_token(make_token(999, 2), nullptr).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(index_->create_token(make_token(alice, 3), nullptr).ok());
  EXPECT_EQ(index_->create_token(make_token(alice, 3), nullptr).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(index_->list_tokens(0)->size(), 1u);
}

TEST_P(IndexAuth, DeleteUserRevokesAndKeepsTheirTokens) {
  const std::int64_t alice = add_user("alice");
  const std::int64_t bob = add_user("bob");
  auto old = index_->create_token(make_token(alice, 1), nullptr);
  auto live = index_->create_token(make_token(alice, 2), nullptr);
  auto bobs = index_->create_token(make_token(bob, 3), nullptr);
  ASSERT_TRUE(old.ok() && live.ok() && bobs.ok());
  ASSERT_TRUE(index_->revoke_token(*old, kNow + 1, nullptr).ok());

  AuditEvent event = make_event("cli", "user.delete", kNow + 7, "user:alice");
  ASSERT_TRUE(index_->delete_user(alice, &event).ok());

  // Unusable: no owner to authenticate as.
  EXPECT_FALSE(index_->find_token(fake_hash(2))->has_value());
  // Kept for the record, revoked when the user was deleted (the first revocation stays).
  auto kept = index_->list_tokens(alice);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ((*kept)[0].id, *live);
  EXPECT_EQ((*kept)[0].revoked_at_ms, kNow + 7);
  EXPECT_EQ((*kept)[0].user_id, alice);
  EXPECT_EQ((*kept)[1].revoked_at_ms, kNow + 1);
  // Other users' tokens are untouched.
  auto other = index_->find_token(fake_hash(3));
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_EQ((*other)->token.revoked_at_ms, 0);

  auto rows = audit();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].action, "user.delete");
  EXPECT_EQ(rows[0].target, "user:alice");
}

TEST_P(IndexAuth, AuditedWritesCommitTheirAuditRowWithThem) {
  AuditEvent created = make_event("cli", "user.create", kNow, "user:alice");
  auto alice = index_->create_user(make_user("alice"), &created);
  ASSERT_TRUE(alice.ok());
  // No target: the index names the new token.
  AuditEvent token_event = make_event("cli", "token.create", kNow + 1);
  auto token = index_->create_token(make_token(*alice, 1), &token_event);
  ASSERT_TRUE(token.ok());
  AuditEvent revoked = make_event("user:alice", "token.revoke", kNow + 2, "token:1");
  ASSERT_TRUE(index_->revoke_token(*token, kNow + 2, &revoked).ok());
  User changed = make_user("alice", Role::kOperator);
  changed.id = *alice;
  AuditEvent updated = make_event("user:alice", "user.update", kNow + 3, "user:alice");
  ASSERT_TRUE(index_->update_user(changed, &updated, false).ok());

  auto rows = audit();
  ASSERT_EQ(rows.size(), 4u);
  created.id = rows[3].id;
  EXPECT_EQ(rows[3], created);
  EXPECT_EQ(rows[2].action, "token.create");
  EXPECT_EQ(rows[2].target, "token:" + std::to_string(*token));
  EXPECT_EQ(rows[1].action, "token.revoke");
  EXPECT_EQ(rows[0].action, "user.update");
}

TEST_P(IndexAuth, AFailedAuditedWriteLeavesNoAuditRow) {
  const std::int64_t alice = add_user("alice");
  AuditEvent event = make_event("cli", "user.create", kNow, "user:alice");
  EXPECT_EQ(index_->create_user(make_user("alice"), &event).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(index_->create_user(make_user("bad name"), &event).error().code,
            ErrorCode::kInvalidArgument);
  User ghost = make_user("ghost");
  ghost.id = 999;
  EXPECT_FALSE(index_->update_user(ghost, &event, false).ok());
  EXPECT_FALSE(index_->delete_user(999, &event).ok());
  EXPECT_FALSE(index_->create_token(make_token(999, 1), &event).ok());
  EXPECT_FALSE(index_->revoke_token(999, kNow, &event).ok());
  EXPECT_TRUE(audit().empty());

  // And the other way round: an audit row that cannot be written undoes the change.
  AuditEvent broken = make_event("cli", "user.create", kNow, "user:carol");
  broken.details = "not json";
  EXPECT_EQ(index_->create_user(make_user("carol"), &broken).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(index_->find_user("carol")->has_value());
  broken.details = "{}";
  broken.outcome = "maybe";
  EXPECT_FALSE(index_->create_token(make_token(alice, 1), &broken).ok());
  EXPECT_TRUE(index_->list_tokens(0)->empty());
  EXPECT_FALSE(index_->delete_user(alice, &broken).ok());
  EXPECT_TRUE(index_->find_user("alice")->has_value());
}

TEST_P(IndexAuth, AppendAuditValidatesAndFillsDefaults) {
  AuditEvent no_actor = make_event("", "auth.login", kNow);
  EXPECT_EQ(index_->append_audit(no_actor).error().code, ErrorCode::kInvalidArgument);
  AuditEvent no_action = make_event("user:a", "", kNow);
  EXPECT_EQ(index_->append_audit(no_action).error().code, ErrorCode::kInvalidArgument);
  AuditEvent bad_outcome = make_event("user:a", "auth.login", kNow);
  bad_outcome.outcome = "OK";
  EXPECT_EQ(index_->append_audit(bad_outcome).error().code, ErrorCode::kInvalidArgument);
  for (const char* details : {"not json", "[1,2]", "\"text\"", "{\"a\":", "42"}) {
    AuditEvent e = make_event("user:a", "auth.login", kNow);
    e.details = details;
    EXPECT_EQ(index_->append_audit(e).error().code, ErrorCode::kInvalidArgument) << details;
  }
  EXPECT_TRUE(audit().empty());

  AuditEvent defaults;
  defaults.actor = "system";
  defaults.action = "config.reload";
  defaults.outcome = "failed";
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto id = index_->append_audit(defaults);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto rows = audit();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, *id);
  EXPECT_GE(rows[0].at_ms, before);  // at_ms 0 = now
  EXPECT_EQ(rows[0].details, "{}");
  EXPECT_EQ(rows[0].outcome, "failed");
}

TEST_P(IndexAuth, ListAuditFiltersAndPagesNewestFirst) {
  struct Row {
    const char* actor;
    const char* action;
    std::int64_t at;
  };
  const std::vector<Row> rows = {
      {"user:alice", "auth.login", 100},    {"user:bob", "auth.login_failed", 200},
      {"user:alice", "token.create", 300},  {"system", "config.reload", 400},
      {"user:alice", "auth.login", 500},    {"ae:CT1", "association.accepted", 600},
      {"user:alice", "authz.strange", 700}, {"user:bob", "auth.login", 800},
  };
  for (const auto& r : rows)
    ASSERT_TRUE(index_->append_audit(make_event(r.actor, r.action, r.at)).ok());
  // Written late with an earlier time: ordered by when it happened.
  ASSERT_TRUE(index_->append_audit(make_event("system", "late", 150)).ok());

  auto times = [&](const AuditQuery& q) {
    std::vector<std::int64_t> out;
    for (const auto& e : audit(q)) out.push_back(e.at_ms);
    return out;
  };
  using V = std::vector<std::int64_t>;
  EXPECT_EQ(times({}), (V{800, 700, 600, 500, 400, 300, 200, 150, 100}));
  EXPECT_EQ(times(query(300, 600, "", "", 100, 0)), (V{500, 400, 300}));
  EXPECT_EQ(times(query(0, 0, "user:alice", "", 100, 0)), (V{700, 500, 300, 100}));
  EXPECT_EQ(times(query(0, 0, "user:ali", "", 100, 0)), V{});  // actor is exact
  EXPECT_EQ(times(query(0, 0, "", "auth.login", 100, 0)), (V{800, 500, 100}));
  EXPECT_EQ(times(query(0, 0, "", "auth.*", 100, 0)), (V{800, 500, 200, 100}));  // not authz.*
  EXPECT_EQ(times(query(0, 0, "", "auth*", 100, 0)), (V{800, 700, 500, 200, 100}));
  EXPECT_EQ(times(query(0, 0, "", "*", 100, 0)), times({}));
  EXPECT_EQ(times(query(200, 0, "user:alice", "auth.*", 100, 0)), V{500});
  EXPECT_EQ(times(query(0, 0, "", "", 3, 0)), (V{800, 700, 600}));
  EXPECT_EQ(times(query(0, 0, "", "", 3, 3)), (V{500, 400, 300}));
  EXPECT_EQ(times(query(0, 0, "", "", 3, 9)), V{});
  EXPECT_EQ(times(query(0, 0, "", "", 0, 0)), V{});
  EXPECT_EQ(index_->list_audit(query(0, 0, "", "", -1, 0)).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(index_->list_audit(query(0, 0, "", "", 100, -1)).error().code,
            ErrorCode::kInvalidArgument);

  auto one = audit(query(0, 0, "", "association.accepted", 100, 0));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].actor, "ae:CT1");
  EXPECT_EQ(one[0].outcome, "ok");
  EXPECT_EQ(one[0].peer_address, "127.0.0.1:5000");
  EXPECT_EQ(one[0].details, R"({"n":1})");
}

}  // namespace
}  // namespace gw::index
