#pragma once
/// Who is calling: `Authorization: Bearer <token>` resolved through the index. Tokens are
/// looked up by their SHA-256 (crypto/token.h), so the index never holds one, and a token is
/// refused when unknown, expired or revoked, or when its user is disabled. A token in the query
/// string is refused outright: URLs end up in proxy logs, shell history and Referer headers.
///
/// Every refusal where credentials were presented is audited ("auth.denied", with the reason
/// and the token id when known, never the token text). A missing token is not: it is what every
/// first request of a client and every port scanner sends. Refusals go through an AuditThrottle
/// (audit/throttle.h), since anyone can send them and audit rows are append-only: one row per
/// key and minute, the rest folded into it ("attempts"). Anonymous refusals are keyed by reason
/// and client address (an IPv6 client by its /64, as the login rate limiter counts it), those
/// of a known token by token id and reason. What is still folded is written by the next
/// refusal or authenticated request after its minute, and when the Authenticator goes away.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "audit/throttle.h"
#include "core/result.h"
#include "http/api.h"
#include "index/index.h"

namespace gw::http {

class Authenticator {
 public:
  explicit Authenticator(index::Index& index, NowFn now_ms = system_now_ms);
  /// Writes the refusals still folded (the index must still be there).
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  /// The token and its user. kUnauthenticated (401) for a missing, malformed, unknown, expired
  /// or revoked token or a disabled user; kPermissionDenied (403) when the user's role is below
  /// `min_role`; kInternal when the index fails. Marks the token used (at most once a minute:
  /// last_used_at is for people, not an access log).
  core::Result<index::TokenOwner> authenticate(const Request& request, index::Role min_role);

  /// kInvalidArgument (400) when a query parameter carries a token (`access_token`, `token`…, or
  /// any value shaped like one of ours). Audited, without the value.
  core::Status refuse_query_token(const Request& request);

 private:
  core::Error deny(const Request& request, core::ErrorCode code, const std::string& reason,
                   const std::string& message, const index::TokenOwner* owner);
  /// Writes folded refusals whose minute has passed; at most once every few seconds.
  void sweep(std::int64_t now_ms);
  void write(const std::vector<index::AuditEvent>& rows);

  index::Index& index_;
  NowFn now_ms_;
  audit::AuditThrottle denials_;
  std::atomic<std::int64_t> last_sweep_ms_{0};
};

/// "user:alice": the audit actor of an authenticated request.
std::string actor_of(const index::User& user);

}  // namespace gw::http
