#pragma once
/// Who is calling: `Authorization: Bearer <token>` resolved through the index. Tokens are
/// looked up by their SHA-256 (crypto/token.h), so the index never holds one, and a token is
/// refused when unknown, expired or revoked, or when its user is disabled. A token in the query
/// string is refused outright: URLs end up in proxy logs, shell history and Referer headers.
///
/// Every refusal where credentials were presented is audited ("auth.denied", with the reason
/// and the token id when known, never the token text). A missing token is not: it is what every
/// first request of a client and every port scanner sends.

#include <cstdint>
#include <string>

#include "core/result.h"
#include "http/api.h"
#include "index/index.h"

namespace gw::http {

class Authenticator {
 public:
  explicit Authenticator(index::Index& index, NowFn now_ms = system_now_ms);

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

  index::Index& index_;
  NowFn now_ms_;
};

/// "user:alice": the audit actor of an authenticated request.
std::string actor_of(const index::User& user);

}  // namespace gw::http
