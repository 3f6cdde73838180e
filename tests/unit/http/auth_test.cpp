// Authentication and authorization decisions through the Dispatcher (no sockets): every way a
// token is refused, roles, query-string tokens, and what the audit trail records.
#include "http/auth.h"

#include <algorithm>
#include <map>
#include <vector>

#include "api_fixture.h"

namespace gw::http {
namespace {

class AuthTest : public ApiFixture {};

TEST_F(AuthTest, NoTokenIs401WithABearerChallengeAndIsNotAudited) {
  auto r = get("/api/v1/studies");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_of(r)["error"], "unauthenticated");
  EXPECT_TRUE(json_of(r)["message"].is_string());
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer realm=\"dicom-gw\"");
  EXPECT_TRUE(audit("auth.denied").empty());
}

TEST_F(AuthTest, EveryRefusedTokenIs401AndAuditedWithoutTheTokenText) {
  const auto alice = add_user("alice", index::Role::kAdmin);
  const auto disabled = add_user("dora", index::Role::kAdmin, /*disabled=*/true);
  std::int64_t revoked_id = 0;
  const auto expired = add_token(alice, 1000);
  const auto revoked = add_token(alice, 0, &revoked_id);
  ASSERT_TRUE(index_->revoke_token(revoked_id, now_, nullptr).ok());
  const auto of_disabled = add_token(disabled);
  auto unknown = crypto::new_api_token();
  ASSERT_TRUE(unknown.ok());
  now_ += 1000;  // `expired` expires exactly now

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not-a-token", "malformed_token"},
      {*unknown, "unknown_token"},
      {expired, "token_expired"},
      {revoked, "token_revoked"},
      {of_disabled, "user_disabled"}};
  for (const auto& [token, reason] : cases) {
    auto r = get("/api/v1/studies", token);
    EXPECT_EQ(r.status, 401) << reason;
    EXPECT_EQ(json_of(r)["error"], "unauthenticated") << reason;
    EXPECT_NE(header_of(r, "WWW-Authenticate").find("invalid_token"), std::string::npos);
  }
  auto denied = audit("auth.denied");
  ASSERT_EQ(denied.size(), cases.size());
  for (const auto& e : denied) {
    EXPECT_EQ(e.outcome, "denied");
    EXPECT_EQ(e.target, "GET /api/v1/studies");
    EXPECT_EQ(e.peer_address, "10.0.0.1:40000");
    for (const auto& [token, reason] : cases) {
      EXPECT_EQ(e.details.find(token), std::string::npos) << "token text in the audit trail";
    }
  }
}

TEST_F(AuthTest, OtherSchemesAreRefused) {
  add_user("alice", index::Role::kAdmin);
  Request r;
  r.method = "GET";
  r.path = "/api/v1/studies";
  r.headers["authorization"] = "Basic YWxpY2U6cGFzc3dvcmQ=";
  EXPECT_EQ(dispatcher_->handle(r).status, 401);
}

TEST_F(AuthTest, RolesAreOrderedViewerOperatorAdmin) {
  const auto viewer = add_token(add_user("vic", index::Role::kViewer));
  const auto op = add_token(add_user("olga", index::Role::kOperator));
  const auto admin = add_token(add_user("ada", index::Role::kAdmin));
  EXPECT_EQ(get("/api/v1/studies", viewer).status, 200);
  EXPECT_EQ(get("/api/v1/users", viewer).status, 403);
  EXPECT_EQ(get("/api/v1/users", op).status, 403);
  EXPECT_EQ(get("/api/v1/users", admin).status, 200);
  EXPECT_EQ(call("POST", "/api/v1/queue/1/retry", viewer).status, 403);
  EXPECT_EQ(call("POST", "/api/v1/queue/1/retry", op).status, 404);  // allowed, no such row
  auto forbidden = get("/api/v1/audit", op);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(json_of(forbidden)["error"], "permission_denied");
  auto denied = audit("auth.denied");
  ASSERT_FALSE(denied.empty());
  EXPECT_EQ(denied.front().actor, "user:olga");
}

TEST_F(AuthTest, ATokenInTheQueryStringIsRefusedEvenAValidOne) {
  const auto token = add_token(add_user("alice", index::Role::kAdmin));
  for (const std::string& target :
       std::vector<std::string>{"/api/v1/studies?access_token=" + token, "/api/v1/studies?token=x",
                                "/api/v1/studies?patient_id=" + token, "/health?api_key=x"}) {
    auto r = call("GET", target, token);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(json_of(r)["error"], "invalid_argument");
  }
  for (const auto& e : audit("auth.denied")) {
    EXPECT_EQ(e.details.find(token), std::string::npos);
  }
}

TEST_F(AuthTest, LastUsedIsWrittenAtMostOnceAMinute) {
  std::int64_t id = 0;
  const auto token = add_token(add_user("alice", index::Role::kViewer), 0, &id);
  auto last_used = [&] {
    auto tokens = index_->list_tokens(0);
    for (const auto& t : *tokens) {
      if (t.id == id) return t.last_used_at_ms;
    }
    return std::int64_t{-1};
  };
  const auto t0 = now_;
  ASSERT_EQ(get("/api/v1/studies", token).status, 200);
  EXPECT_EQ(last_used(), t0);
  now_ += 59'999;
  ASSERT_EQ(get("/api/v1/studies", token).status, 200);
  EXPECT_EQ(last_used(), t0);
  now_ += 1;
  ASSERT_EQ(get("/api/v1/studies", token).status, 200);
  EXPECT_EQ(last_used(), now_);
}

TEST_F(AuthTest, HealthNeedsNoTokenAndUnknownPathsAre404Json) {
  auto health = get("/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json_of(health), Json({{"status", "ok"}}));
  auto missing = get("/api/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json_of(missing)["error"], "not_found");
  auto wrong_method = call("PATCH", "/api/v1/users");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(header_of(wrong_method, "Allow"), "GET, POST");
}

// Anyone can send refusals and audit rows are append-only: they are folded per reason and
// address (auth.h), and every attempt is still counted.
TEST_F(AuthTest, ThousandRefusalsFromOneAddressAreFewRowsThatCountThemAll) {
  auto unknown = crypto::new_api_token();
  ASSERT_TRUE(unknown.ok());
  constexpr int kRequests = 1000;
  for (int i = 0; i < kRequests; ++i) {
    Request r;
    r.method = "GET";
    r.path = "/api/v1/studies";
    r.client_ip = "203.0.113.7";
    r.peer_address = "203.0.113.7:40000";
    switch (i % 4) {
      case 0:
        r.headers["authorization"] = "Bearer not-a-token";
        break;
      case 1:
        r.headers["authorization"] = "Bearer " + *unknown;
        break;
      case 2:
        r.headers["authorization"] = "Basic YWxpY2U6cGFzc3dvcmQ=";
        break;
      default:
        r.query.emplace("access_token", "x");
        break;
    }
    const auto status = dispatcher_->handle(r).status;
    EXPECT_TRUE(status == 401 || status == 400) << status;
    now_ += 250;  // 1000 requests over about four minutes
  }
  dispatcher_.reset();
  auth_.reset();  // what is still folded is written when the authenticator goes away
  const auto rows = audit("auth.denied");
  // Four reasons, one row each per minute: about 4 x 5 rows, not 1000.
  EXPECT_LE(rows.size(), 4u * 6u);
  std::int64_t attempts = 0;
  std::map<std::string, std::int64_t> per_reason;
  for (const auto& row : rows) {
    const auto d = Json::parse(row.details);
    attempts += d["attempts"].get<std::int64_t>();
    per_reason[d["reason"]] += d["attempts"].get<std::int64_t>();
    EXPECT_EQ(row.peer_address, "203.0.113.7:40000");
  }
  EXPECT_EQ(attempts, kRequests);
  EXPECT_EQ(per_reason, (std::map<std::string, std::int64_t>{{"malformed_token", 250},
                                                             {"unknown_token", 250},
                                                             {"not_bearer", 250},
                                                             {"token_in_query", 250}}));
}

TEST_F(AuthTest, RefusalsOfAKnownTokenAreFoldedPerTokenNotPerAddress) {
  const auto op = add_token(add_user("olga", index::Role::kOperator));
  for (int i = 0; i < 50; ++i) {
    // From a new address each time: the token, not the address, is the key.
    EXPECT_EQ(
        call("GET", "/api/v1/users", op, "", "application/json", "10.0.1." + std::to_string(i))
            .status,
        403);
  }
  EXPECT_EQ(audit("auth.denied").size(), 1u);
  dispatcher_.reset();
  auth_.reset();
  const auto rows = audit("auth.denied");
  ASSERT_EQ(rows.size(), 2u);
  std::vector<std::int64_t> attempts;
  for (const auto& row : rows) {
    attempts.push_back(Json::parse(row.details)["attempts"].get<std::int64_t>());
    EXPECT_EQ(row.actor, "user:olga");
  }
  std::sort(attempts.begin(), attempts.end());
  EXPECT_EQ(attempts, (std::vector<std::int64_t>{1, 49}));
}

TEST(Dispatcher, AHandlerThatThrowsAnswers500AndTheNextRequestIsServed) {
  auto index = index::open_index(":memory:", {});
  ASSERT_TRUE(index.ok());
  Authenticator auth(**index);
  auto router = Router::create(
      {{"GET", "/boom", std::nullopt,
        [](const Request&) -> Response { throw std::runtime_error("handler bug"); }, ""},
       {"GET", "/fine", std::nullopt, [](const Request&) { return json_response(200, {}); }, ""}});
  ASSERT_TRUE(router.ok());
  Dispatcher d(std::move(router).value(), auth);
  Request boom;
  boom.method = "GET";
  boom.path = "/boom";
  auto r = d.handle(boom);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(Json::parse(r.body)["error"], "internal");
  EXPECT_EQ(r.body.find("handler bug"), std::string::npos);  // details stay in the log
  Request fine;
  fine.method = "GET";
  fine.path = "/fine";
  EXPECT_EQ(d.handle(fine).status, 200);
}

TEST(ErrorResponse, ShapeAndStatusFromTheOneTable) {
  auto r = error_response(core::make_error(core::ErrorCode::kConflict, "in flight"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Json::parse(r.body), Json({{"error", "conflict"}, {"message", "in flight"}}));
  auto internal = error_response(core::make_error(core::ErrorCode::kDatabase, "SQL secret"));
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(internal.body.find("SQL secret"), std::string::npos);
  auto with_details = error_response(422, "unsupported", "refused", Json::array({"a", "b"}));
  EXPECT_EQ(Json::parse(with_details.body)["details"].size(), 2u);
}

}  // namespace
}  // namespace gw::http
