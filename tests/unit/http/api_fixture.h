#pragma once
/// The whole API without sockets: an in-memory SQLite index, a fake clock, the real route
/// table, authenticator and rate limiter, and a call() that goes through the Dispatcher as the
/// server would.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "crypto/password.h"
#include "crypto/token.h"
#include "http/api.h"
#include "http/auth.h"
#include "http/dispatcher.h"
#include "http/rate_limiter.h"
#include "http/router.h"
#include "http/routes.h"
#include "index/index.h"

namespace gw::http {

class ApiFixture : public ::testing::Test {
 protected:
  static constexpr const char* kPassword = "correct horse battery staple";

  ApiFixture() {
    auto opened = index::open_index(":memory:", {});
    if (!opened.ok()) throw std::runtime_error(opened.error().message);
    index_ = std::move(opened).value();
    limiter_ = std::make_unique<LoginRateLimiter>(RateLimitPolicy{}, [this] { return now_; });
    ctx_ = std::make_unique<ApiContext>(
        ApiContext{*index_, *limiter_, nullptr, [this] { return now_; }});
    auth_ = std::make_unique<Authenticator>(*index_, [this] { return now_; });
    auto router = Router::create(api_routes(*ctx_));
    if (!router.ok()) throw std::runtime_error(router.error().message);
    dispatcher_ = std::make_unique<Dispatcher>(std::move(router).value(), *auth_);
  }

  index::User add_user(const std::string& name, index::Role role, bool disabled = false) {
    auto hash = crypto::hash_password(kPassword);
    EXPECT_TRUE(hash.ok()) << hash.error().message;
    index::User u;
    u.name = name;
    u.role = role;
    u.password_hash = *hash;
    u.disabled = disabled;
    u.created_at_ms = u.updated_at_ms = now_;
    auto id = index_->create_user(u, nullptr);
    EXPECT_TRUE(id.ok()) << id.error().message;
    u.id = id.ok() ? *id : 0;
    return u;
  }

  /// A token of `user` expiring in `ttl_ms` (0 = never); `id` receives its id.
  std::string add_token(const index::User& user, std::int64_t ttl_ms = 3'600'000,
                        std::int64_t* id = nullptr) {
    auto token = crypto::new_api_token();
    EXPECT_TRUE(token.ok());
    index::ApiToken t;
    t.user_id = user.id;
    t.token_hash = crypto::token_hash(*token);
    t.description = "test";
    t.created_at_ms = now_;
    t.expires_at_ms = ttl_ms == 0 ? 0 : now_ + ttl_ms;
    auto created = index_->create_token(t, nullptr);
    EXPECT_TRUE(created.ok()) << created.error().message;
    if (id != nullptr) *id = created.ok() ? *created : 0;
    return *token;
  }

  /// `target`: path and query ("/api/v1/queue?state=dead"); `token` "" = no Authorization.
  Response call(const std::string& method, const std::string& target, const std::string& token = "",
                const std::string& body = "", const std::string& content_type = "application/json",
                const std::string& client_ip = "10.0.0.1") {
    struct {
      const std::string& method;
      const std::string& target;
      const std::string& token;
      const std::string& body;
      const std::string& content_type;
      const std::string& client_ip;
    } c{method, target, token, body, content_type, client_ip};
    Request r;
    r.method = c.method;
    const auto q = c.target.find('?');
    r.path = c.target.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = c.target.substr(q + 1);
      std::size_t pos = 0;
      while (pos <= rest.size()) {
        const auto amp = rest.find('&', pos);
        const std::string pair = rest.substr(pos, amp == std::string::npos ? amp : amp - pos);
        const auto eq = pair.find('=');
        if (!pair.empty()) {
          r.query.emplace(pair.substr(0, eq), eq == std::string::npos ? "" : pair.substr(eq + 1));
        }
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    if (!c.token.empty()) r.headers["authorization"] = "Bearer " + c.token;
    r.body = c.body;
    if (!c.body.empty()) r.content_type = c.content_type;
    r.client_ip = c.client_ip;
    r.peer_address = c.client_ip + ":40000";
    return dispatcher_->handle(r);
  }
  Response get(const std::string& target, const std::string& token = "") {
    return call("GET", target, token);
  }
  Response post(const std::string& target, const std::string& token, const Json& body,
                const std::string& client_ip = "10.0.0.1") {
    return call("POST", target, token, body.is_null() ? "" : body.dump(), "application/json",
                client_ip);
  }

  static Json json_of(const Response& r) {
    return Json::parse(r.body.empty() ? "null" : r.body, nullptr, false);
  }
  static std::string header_of(const Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  std::vector<index::AuditEvent> audit(const std::string& action) {
    index::AuditQuery q;
    q.action = action;
    q.limit = 1000;
    auto events = index_->list_audit(q);
    EXPECT_TRUE(events.ok());
    return events.ok() ? *events : std::vector<index::AuditEvent>{};
  }

  std::int64_t now_ = 1'700'000'000'000;
  std::unique_ptr<index::Index> index_;
  std::unique_ptr<LoginRateLimiter> limiter_;
  std::unique_ptr<ApiContext> ctx_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

}  // namespace gw::http
