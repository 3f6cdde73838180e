#pragma once
/// The route table: finds the route for a method and a path. Patterns are literal segments and
/// {name} placeholders, each matching exactly one non-empty segment; nothing else (no regex, no
/// prefix match), so what the table holds is exactly what docs/openapi.yaml lists.

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "http/api.h"

namespace gw::http {

struct RouteMatch {
  enum class Kind {
    kFound,             ///< `route` and `params` are set
    kNotFound,          ///< no pattern matches the path: 404
    kMethodNotAllowed,  ///< a pattern matches, not with this method: 405 with `allowed`
  };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  std::vector<std::string> allowed;  ///< methods the path has ("GET", "POST"), sorted
};

class Router {
 public:
  /// kInvalidArgument for a malformed pattern ("/a/{", "a/b", an empty segment) or a
  /// (method, pattern) registered twice.
  static core::Result<Router> create(std::vector<Route> routes);

  /// HEAD is answered by the GET route (the server drops the body).
  RouteMatch match(const std::string& method, const std::string& path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  explicit Router(std::vector<Route> routes) : routes_(std::move(routes)) {}

  std::vector<Route> routes_;
};

/// Splits "/api/v1/queue/7" into {"api", "v1", "queue", "7"}; nullopt for a path that does not
/// start with '/' or holds an empty segment ("//", a trailing '/').
std::optional<std::vector<std::string>> split_path(const std::string& path);

}  // namespace gw::http
