// POST /api/v1/auth/token: a user name and password exchanged for a bearer token. Failures are
// rate-limited per (user, address) and per address, never per user alone (rate_limiter.h), and
// an unknown user costs the same argon2id verification as a wrong password, so timing does not
// tell which names exist.
//
// Failed logins are audited ("auth.login_failed") through an AuditThrottle: the first failure of
// a (user, address) is written at once, the next ones within a minute are folded into one row
// carrying their number ("attempts", "reasons"), written when the minute has passed (on the next
// login request) or when the API stops. Logins refused by the rate limiter are keyed by the
// address alone (its /64 for IPv6, as the limiter counts it): a fresh user name per request must
// not open a fresh row. A brute force costs the table a row a minute, and no attempt goes
// uncounted.
#include <algorithm>
#include <cctype>
#include <memory>

#include "audit/throttle.h"
#include "core/log.h"
#include "crypto/password.h"
#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

constexpr std::size_t kMaxUserName = 64;

/// Verified against when the user does not exist or is disabled. Empty when hashing is not
/// available (then nothing can log in anyway).
std::string lower_case(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

const std::string& dummy_hash() {
  static const std::string hash = [] {
    auto h = crypto::hash_password("dicom-gw: constant-time stand-in for an unknown user");
    return h.ok() ? *h : std::string();
  }();
  return hash;
}

/// The failed-login rows of one route table; what is still folded is written when it goes
/// away (the API stops), while the index is still there (HttpService, the fixtures).
class LoginFailureAudit {
 public:
  explicit LoginFailureAudit(const ApiContext& ctx) : ctx_(ctx) {}
  LoginFailureAudit(const LoginFailureAudit&) = delete;
  LoginFailureAudit& operator=(const LoginFailureAudit&) = delete;
  ~LoginFailureAudit() { write(throttle_.take_all()); }

  /// A failed attempt of `who` (lower case) from the request's address.
  void failed(const Request& request, const std::string& who, const std::string& username,
              const std::string& reason) {
    record(request, who + "|" + LoginRateLimiter::address_key(request.client_ip), username, reason);
  }
  /// An attempt refused by the rate limiter: keyed by the address alone.
  void rate_limited(const Request& request, const std::string& username) {
    record(request, "rate_limited|" + LoginRateLimiter::address_key(request.client_ip), username,
           "rate_limited");
  }

  /// Folded attempts of other keys whose minute has passed.
  void sweep() { write(throttle_.take_due(ctx_.now_ms())); }

 private:
  void record(const Request& request, const std::string& key, const std::string& username,
              const std::string& reason) {
    auto event =
        audit_event(ctx_, request, "auth.login_failed", "user:" + username, {{"reason", reason}});
    event.outcome = "failed";
    const auto now = event.at_ms;
    write(throttle_.record(key, std::move(event)));
    write(throttle_.take_due(now));
  }

  void write(const std::vector<index::AuditEvent>& rows) {
    for (const auto& row : rows) {
      if (auto id = ctx_.index.append_audit(row); !id.ok()) {
        core::logger("http")->warn("event=audit_failed action=auth.login_failed reason=\"{}\"",
                                   id.error().message);
      }
    }
  }

  const ApiContext& ctx_;
  audit::AuditThrottle throttle_;
};

core::Result<Response> login(const ApiContext& ctx, LoginFailureAudit& failures,
                             const Request& request) {
  GW_ASSIGN_OR_RETURN(Json body, json_body(request, {"username", "password", "ttl"}));
  GW_ASSIGN_OR_RETURN(auto username, optional_string(body, "username"));
  GW_ASSIGN_OR_RETURN(auto password, optional_string(body, "password"));
  if (!username || username->empty() || username->size() > kMaxUserName) {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "field `username`: required, at most 64 characters");
  }
  if (!password || password->empty() || password->size() > crypto::kMaxPasswordBytes) {
    return core::make_error(ErrorCode::kInvalidArgument,
                            "field `password`: required, at most 1024 bytes");
  }
  GW_ASSIGN_OR_RETURN(auto ttl, requested_ttl(body));

  // Names are unique without regard to case: "Admin" and "admin" share one count.
  const std::string who = lower_case(*username);
  if (auto wait = ctx.login_limiter.blocked(who, request.client_ip)) {
    failures.rate_limited(request, *username);
    core::logger("http")->warn("event=login_rate_limited peer={} retry_after_s={}",
                               request.peer_address, wait->count());
    Response r = error_response(429, "rate_limited",
                                "too many failed logins from this address: try again in " +
                                    std::to_string(wait->count()) + " s");
    r.headers.emplace_back("Retry-After", std::to_string(wait->count()));
    return r;
  }

  auto found = ctx.index.find_user(*username);
  if (!found.ok()) return index_error(found.error());
  const std::optional<index::User>& user = *found;
  std::string reason;
  if (!user) {
    verify_password_bounded(*password, dummy_hash());
    reason = "unknown_user";
  } else if (user->disabled) {
    verify_password_bounded(*password, dummy_hash());
    reason = "user_disabled";
  } else if (!verify_password_bounded(*password, user->password_hash)) {
    reason = "wrong_password";
  }
  if (!reason.empty()) {
    ctx.login_limiter.record_failure(who, request.client_ip);
    failures.failed(request, who, *username, reason);
    // One answer for every reason: which names exist is not the client's business.
    return core::make_error(ErrorCode::kUnauthenticated, "invalid user name or password");
  }
  ctx.login_limiter.record_success(who, request.client_ip);
  failures.sweep();

  if (crypto::password_needs_rehash(user->password_hash)) {
    // Stronger parameters than when it was set: store the new hash while we have the password.
    // Only the hash, and only if it is still the one verified: an admin's change made during
    // the argon2id work (disable, role, new password) must not be written over.
    if (auto rehashed = hash_password_bounded(*password); rehashed.ok()) {
      auto replaced = ctx.index.replace_password_hash(user->id, user->password_hash, *rehashed);
      if (!replaced.ok()) {
        core::logger("http")->warn("event=password_rehash_failed user_id={} reason=\"{}\"",
                                   user->id, replaced.error().message);
      } else if (!*replaced) {
        core::logger("http")->info("event=password_rehash_skipped user_id={} reason=changed",
                                   user->id);
      }
    }
  }
  return issue_token(ctx, request, *user, ttl, "login", "auth.login", 200);
}

}  // namespace

std::vector<Route> auth_routes(ApiContext& ctx) {
  dummy_hash();  // computed once at start, not on the first unknown user's login
  // Owned by the route's handler: it lives as long as the route table.
  auto failures = std::make_shared<LoginFailureAudit>(ctx);
  return {
      {"POST", "/api/v1/auth/token", std::nullopt,
       with_errors([&ctx, failures](const Request& r) { return login(ctx, *failures, r); }),
       "Exchange a user name and password for a bearer token"},
  };
}

}  // namespace gw::http
