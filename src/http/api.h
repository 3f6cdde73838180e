#pragma once
/// The REST API's building blocks, independent of the HTTP server library: a request as a
/// handler sees it (already authenticated), a response, and a route (method, path pattern,
/// the least role allowed, the handler). Handlers are plain functions of Request -> Response,
/// so each resource lives in its own file and is tested without sockets.
///
/// Roles are ordered viewer < operator < admin: a route open to operators is open to admins.
/// `min_role = nullopt` means no authentication at all (only /health and /auth/token).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/result.h"
#include "index/auth.h"

namespace gw::http {

using Json = nlohmann::json;

/// Wall-clock time in Unix milliseconds; injected so tests control expiry and rate windows.
using NowFn = std::function<std::int64_t()>;
/// The system clock.
std::int64_t system_now_ms();

/// One uploaded part of a multipart/form-data body.
struct FilePart {
  std::string filename;
  std::string content_type;
  std::string content;
};

struct Request {
  std::string method;  ///< "GET", "POST", …
  std::string path;    ///< "/api/v1/queue/7/retry"
  /// Values of the pattern's {placeholders}: "/api/v1/queue/{id}/retry" -> {"id": "7"}.
  std::map<std::string, std::string> path_params;
  std::multimap<std::string, std::string> query;
  /// Request headers by lower-case name (the last value when one is repeated).
  std::map<std::string, std::string> headers;
  std::string body;
  std::string content_type;
  std::map<std::string, FilePart> files;  ///< multipart parts by field name
  std::string peer_address;               ///< "ip:port" ("[ip]:port" for IPv6), for audit rows
  std::string client_ip;                  ///< the address alone, for rate limiting
  /// The authenticated user (nullopt on unauthenticated routes) and the audit actor
  /// ("user:alice"; "anonymous" when nobody is authenticated).
  std::optional<index::User> user;
  std::int64_t token_id = 0;
  std::string actor = "anonymous";

  /// The first value of a query parameter, if present.
  std::optional<std::string> query_value(const std::string& name) const {
    auto it = query.find(name);
    if (it == query.end()) return std::nullopt;
    return it->second;
  }
  /// A header by its lower-case name, if present.
  std::optional<std::string> header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};

/// A body sent piece by piece instead of `body` (a stored file of any size, in bounded memory):
/// `read` copies the bytes at `offset` into `out` and returns how many (0 only at the end); an
/// error ends the response early (the client sees a short body and a closed connection).
struct BodyStream {
  std::uint64_t size = 0;
  std::function<core::Result<std::size_t>(std::uint64_t offset, std::span<std::uint8_t> out)> read;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (Retry-After…)
  std::shared_ptr<BodyStream> stream;  ///< when set, the body (`body` is ignored)
};

/// A JSON response.
Response json_response(int status, const Json& body);
/// 204 No Content (successful deletes).
Response no_content();
/// The error shape every failure uses: {"error": code, "message": text} (+ "details" when
/// given, e.g. every reason a certificate upload was refused). `code` is the ErrorCode's name
/// (core::error_code_name: "unauthenticated", "permission_denied", "not_found",
/// "invalid_argument", "conflict", "already_exists", "too_large", "rate_limited", "internal"…)
/// or, for what only HTTP knows, "method_not_allowed".
Response error_response(int status, const std::string& code, const std::string& message,
                        const Json& details = nullptr);
/// The response for an expected failure: the status from the one ErrorCode table
/// (core::http_status). Our own failures (500, 507) are logged with their message and answered
/// with a generic one: database or file-system details stay in the log.
Response error_response(const core::Error& error);

using Handler = std::function<Response(const Request&)>;

struct Route {
  std::string method;   ///< "GET" | "POST" | "PUT" | "DELETE"
  std::string pattern;  ///< "/api/v1/queue/{id}/retry" ({name} matches one path segment)
  std::optional<index::Role> min_role;  ///< nullopt = no authentication
  Handler handler;
  std::string summary;  ///< one line, also in docs/openapi.yaml
};

/// Whether `role` may use a route that needs `min_role` (viewer < operator < admin).
bool role_allows(index::Role role, index::Role min_role);

}  // namespace gw::http
