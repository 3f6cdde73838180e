#include "http/router.h"

#include <algorithm>
#include <set>

namespace gw::http {

namespace {

bool is_placeholder(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::optional<std::vector<std::string>> split_path(const std::string& path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::vector<std::string> segments;
  std::size_t start = 1;
  if (path.size() == 1) return segments;  // "/"
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    if (end == start) return std::nullopt;  // "//" or a trailing '/'
    segments.push_back(path.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return segments;
}

core::Result<Router> Router::create(std::vector<Route> routes) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& r : routes) {
    auto segments = split_path(r.pattern);
    if (!segments) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "route pattern `" + r.pattern + "`: not an absolute path");
    }
    for (const auto& s : *segments) {
      const bool braces = s.find('{') != std::string::npos || s.find('}') != std::string::npos;
      if (braces && !is_placeholder(s)) {
        return core::make_error(core::ErrorCode::kInvalidArgument,
                                "route pattern `" + r.pattern + "`: bad placeholder `" + s + "`");
      }
    }
    if (!r.handler) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "route " + r.method + " " + r.pattern + ": no handler");
    }
    if (!seen.emplace(r.method, r.pattern).second) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "route " + r.method + " " + r.pattern + ": registered twice");
    }
  }
  return Router(std::move(routes));
}

RouteMatch Router::match(const std::string& method, const std::string& path) const {
  RouteMatch out;
  const auto segments = split_path(path);
  if (!segments) return out;
  const std::string wanted = method == "HEAD" ? std::string("GET") : method;
  std::set<std::string> allowed;
  // The most literal pattern wins ("/certs/info" before "/certs/{name}"), whatever the order.
  int best_literals = -1;
  for (const auto& route : routes_) {
    // Patterns were validated by create().
    const auto pattern = *split_path(route.pattern);
    if (pattern.size() != segments->size()) continue;
    std::map<std::string, std::string> params;
    bool matches = true;
    int literals = 0;
    for (std::size_t i = 0; i < pattern.size() && matches; ++i) {
      if (is_placeholder(pattern[i])) {
        params[pattern[i].substr(1, pattern[i].size() - 2)] = (*segments)[i];
      } else {
        matches = pattern[i] == (*segments)[i];
        ++literals;
      }
    }
    if (!matches) continue;
    allowed.insert(route.method);
    if (route.method == wanted && literals > best_literals) {
      best_literals = literals;
      out.kind = RouteMatch::Kind::kFound;
      out.route = &route;
      out.params = std::move(params);
    }
  }
  if (out.kind == RouteMatch::Kind::kFound) return out;
  if (!allowed.empty()) {
    out.kind = RouteMatch::Kind::kMethodNotAllowed;
    out.allowed.assign(allowed.begin(), allowed.end());
  }
  return out;
}

}  // namespace gw::http
