#include "http/auth.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/log.h"
#include "crypto/token.h"
#include "http/rate_limiter.h"

namespace gw::http {

namespace {

using core::ErrorCode;

constexpr std::int64_t kTouchIntervalMs = 60'000;
/// How often an authenticated request looks for folded refusals to write.
constexpr std::int64_t kSweepIntervalMs = 10'000;

/// Query parameter names clients use for tokens; refused whatever their value.
constexpr std::array<std::string_view, 8> kTokenParams = {
    "access_token", "token", "bearer", "api_key", "apikey", "auth", "authorization", "jwt"};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string actor_of(const index::User& user) { return "user:" + user.name; }

Authenticator::Authenticator(index::Index& index, NowFn now_ms)
    : index_(index), now_ms_(std::move(now_ms)) {}

Authenticator::~Authenticator() { write(denials_.take_all()); }

void Authenticator::write(const std::vector<index::AuditEvent>& rows) {
  for (const auto& row : rows) {
    if (auto id = index_.append_audit(row); !id.ok()) {
      core::logger("http")->warn("event=audit_failed action=auth.denied reason=\"{}\"",
                                 id.error().message);
    }
  }
}

void Authenticator::sweep(std::int64_t now_ms) {
  auto last = last_sweep_ms_.load();
  if (now_ms - last < kSweepIntervalMs) return;
  if (!last_sweep_ms_.compare_exchange_strong(last, now_ms)) return;  // another thread does it
  write(denials_.take_due(now_ms));
}

core::Error Authenticator::deny(const Request& request, ErrorCode code, const std::string& reason,
                                const std::string& message, const index::TokenOwner* owner) {
  index::AuditEvent e;
  e.at_ms = now_ms_();
  e.actor = owner != nullptr ? actor_of(owner->user) : "anonymous";
  e.action = "auth.denied";
  e.target = request.method + " " + request.path;
  e.outcome = "denied";
  e.peer_address = request.peer_address;
  Json details = {{"reason", reason}};
  if (owner != nullptr) details["token_id"] = owner->token.id;
  e.details = details.dump();
  // Anyone can send these: one row per key and minute (see auth.h).
  const std::string key = owner != nullptr
                              ? "token:" + std::to_string(owner->token.id) + "|" + reason
                              : reason + "|" + LoginRateLimiter::address_key(request.client_ip);
  const auto now = e.at_ms;
  write(denials_.record(key, std::move(e)));
  write(denials_.take_due(now));
  core::logger("http")->info("event=auth_denied reason={} peer={} route=\"{} {}\"", reason,
                             request.peer_address, request.method, request.path);
  return core::make_error(code, message);
}

core::Status Authenticator::refuse_query_token(const Request& request) {
  for (const auto& [name, value] : request.query) {
    const bool named = std::any_of(kTokenParams.begin(), kTokenParams.end(),
                                   [&](std::string_view p) { return iequals(p, name); });
    if (named || crypto::looks_like_api_token(value)) {
      return deny(request, ErrorCode::kInvalidArgument, "token_in_query",
                  "a token in the query string is refused (URLs are logged and cached): send "
                  "it in the header `Authorization: Bearer <token>`",
                  nullptr);
    }
  }
  return {};
}

core::Result<index::TokenOwner> Authenticator::authenticate(const Request& request,
                                                            index::Role min_role) {
  const auto header = request.header("authorization");
  if (!header || trim(*header).empty()) {
    return core::make_error(ErrorCode::kUnauthenticated,
                            "authentication required: send `Authorization: Bearer <token>`");
  }
  const std::string_view value = trim(*header);
  const auto space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "Bearer")) {
    return deny(request, ErrorCode::kUnauthenticated, "not_bearer",
                "only bearer tokens are accepted: `Authorization: Bearer <token>`", nullptr);
  }
  const std::string_view token = trim(value.substr(space + 1));
  if (!crypto::looks_like_api_token(token)) {
    return deny(request, ErrorCode::kUnauthenticated, "malformed_token", "invalid token", nullptr);
  }
  auto found = index_.find_token(crypto::token_hash(token));
  if (!found.ok()) {
    return core::make_error(ErrorCode::kInternal,
                            "authentication: token lookup failed: " + found.error().message);
  }
  if (!found->has_value()) {
    return deny(request, ErrorCode::kUnauthenticated, "unknown_token", "invalid token", nullptr);
  }
  const index::TokenOwner& owner = **found;
  const auto now = now_ms_();
  if (owner.token.revoked_at_ms != 0) {
    return deny(request, ErrorCode::kUnauthenticated, "token_revoked", "token revoked", &owner);
  }
  if (owner.token.expires_at_ms != 0 && now >= owner.token.expires_at_ms) {
    return deny(request, ErrorCode::kUnauthenticated, "token_expired", "token expired", &owner);
  }
  if (owner.user.disabled) {
    return deny(request, ErrorCode::kUnauthenticated, "user_disabled", "user disabled", &owner);
  }
  if (!role_allows(owner.user.role, min_role)) {
    return deny(request, ErrorCode::kPermissionDenied, "role",
                "this needs the role " + std::string(index::to_string(min_role)) + " (you are " +
                    std::string(index::to_string(owner.user.role)) + ")",
                &owner);
  }
  sweep(now);
  if (now - owner.token.last_used_at_ms >= kTouchIntervalMs) {
    if (auto st = index_.touch_token(owner.token.id, now); !st.ok()) {
      core::logger("http")->warn("event=token_touch_failed token_id={} reason=\"{}\"",
                                 owner.token.id, st.error().message);
    }
  }
  return owner;
}

}  // namespace gw::http
