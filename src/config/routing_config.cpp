// The store-and-forward sections: destinations, routes, retry and forwarding.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/ip_network.h"
#include "config/reader.h"
#include "config/suggest.h"

namespace gw::config::detail {
namespace {

constexpr std::array<std::string_view, 14> kDestinationKeys = {"name",
                                                               "ae_title",
                                                               "host",
                                                               "port",
                                                               "calling_ae_title",
                                                               "tls_enabled",
                                                               "tls_cert_path",
                                                               "tls_key_path",
                                                               "tls_ca_path",
                                                               "verify_hostname",
                                                               "max_associations",
                                                               "max_async_operations",
                                                               "tls_profile",
                                                               "retry"};
constexpr std::array<std::string_view, 4> kRetryKeys = {"max_attempts", "max_age",
                                                        "initial_backoff", "max_backoff"};
constexpr std::array<std::string_view, 5> kForwardingKeys = {
    "association_idle_timeout", "lease", "circuit_breaker_failures", "probe_interval", "batch"};
constexpr std::array<std::string_view, 5> kRouteKeys = {"name", "match", "destinations", "continue",
                                                        "default"};
constexpr std::array<std::string_view, 7> kMatchKeys = {
    "calling_ae", "called_ae", "listener", "source", "modality", "sop_class", "tags"};
constexpr std::array<std::string_view, 3> kTagOperators = {"equals", "regex", "exists"};

constexpr std::uint64_t kMaxAttempts = 100000;
constexpr std::int64_t kMaxAge = 365 * kDay;
constexpr std::int64_t kMinLease = 10;  // shorter leases expire while a large file is sent
constexpr std::uint64_t kMaxBatch = 1000;
constexpr std::size_t kMaxUidLength = 64;

/// PS3.5 UI: digits and dots, at most 64 characters, no empty component.
bool valid_uid(std::string_view uid) {
  if (uid.empty() || uid.size() > kMaxUidLength) return false;
  if (uid.front() == '.' || uid.back() == '.' || uid.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(uid.begin(), uid.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

/// "unknown NOUN `name` (did you mean `x`?)" or "(configured: a, b)" or "(none configured)".
std::string unknown_name_message(std::string_view noun, std::string_view name,
                                 std::span<const std::string_view> known) {
  std::string message = fmt::format("unknown {} `{}`", noun, name);
  if (known.empty()) return message + fmt::format(" (no {}s are configured)", noun);
  if (auto best = closest(name, known))
    return message + fmt::format(" (did you mean `{}`?)", *best);
  return message + fmt::format(" (configured: {})", join_names(known));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// retry, forwarding.

bool Reader::read_retry_keys(const Section& s, Retry& retry) {
  read_uint(s, "max_attempts", 1, kMaxAttempts, retry.max_attempts);
  read_duration(s, "max_age", 1, retry.max_age, kMaxAge);
  const bool initial = read_duration(s, "initial_backoff", 1, retry.initial_backoff);
  const bool max = read_duration(s, "max_backoff", 1, retry.max_backoff);
  return initial || max;
}

Retry Reader::read_retry(const Section& root) {
  Retry retry;
  Section s(*this, root.value("retry").value_or(YAML::Node()), "retry", kRetryKeys);
  if (read_retry_keys(s, retry) && retry.initial_backoff > retry.max_backoff) {
    add(s.path("initial_backoff"),
        fmt::format("must not be longer than max_backoff ({}s), got {}s", retry.max_backoff.count(),
                    retry.initial_backoff.count()));
  }
  return retry;
}

Forwarding Reader::read_forwarding(const Section& root) {
  Forwarding f;
  Section s(*this, root.value("forwarding").value_or(YAML::Node()), "forwarding", kForwardingKeys);
  read_duration(s, "association_idle_timeout", 0, f.association_idle_timeout);
  read_duration(s, "lease", kMinLease, f.lease);
  read_uint(s, "circuit_breaker_failures", 0, kU32Max, f.circuit_breaker_failures);
  read_duration(s, "probe_interval", 1, f.probe_interval);
  read_uint(s, "batch", 1, kMaxBatch, f.batch);
  return f;
}

// ---------------------------------------------------------------------------------------------
// destinations.

std::vector<Destination> Reader::read_destinations(const Section& root, const Retry& defaults) {
  std::vector<Destination> destinations;
  auto list = sequence(root, "destinations", "expected a list of destinations");
  if (!list) return destinations;
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("destinations", index++), kDestinationKeys);
    if (!s.valid()) continue;
    destinations.push_back(read_destination(s, defaults));
  }
  return destinations;
}

Destination Reader::read_destination(const Section& s, const Retry& defaults) {
  Destination d;
  if (require(s, "name")) read_non_empty(s, "name", d.name);
  if (require(s, "ae_title")) read_ae_title(s, "ae_title", d.ae_title);
  if (require(s, "host")) read_non_empty(s, "host", d.host);
  if (require(s, "port")) read_port(s, "port", 1, d.port);
  read_ae_title(s, "calling_ae_title", d.calling_ae_title);
  read_bool(s, "tls_enabled", d.tls_enabled);
  read_path(s, "tls_cert_path", d.tls_cert_path);
  read_path(s, "tls_key_path", d.tls_key_path);
  read_path(s, "tls_ca_path", d.tls_ca_path);
  read_bool(s, "verify_hostname", d.verify_hostname);
  read_uint(s, "max_associations", 1, kU32Max, d.max_associations);
  read_uint(s, "max_async_operations", 1, kMaxAsyncOperations, d.max_async_operations);
  read_enum<TlsProfile>(s, "tls_profile", kTlsProfiles, d.tls_profile);
  d.retry = defaults;
  Section r(*this, s.value("retry").value_or(YAML::Node()), s.path("retry"), kRetryKeys);
  if (read_retry_keys(r, d.retry) && d.retry.initial_backoff > d.retry.max_backoff) {
    add(r.path(), fmt::format("initial_backoff ({}s) must not be longer than max_backoff ({}s)",
                              d.retry.initial_backoff.count(), d.retry.max_backoff.count()));
  }
  if (d.tls_enabled) {
    check_required_file(s, "tls_ca_path", d.tls_ca_path,
                        "when tls_enabled is true (the CAs that sign the destination)");
    const bool has_cert = !d.tls_cert_path.empty();
    const bool has_key = !d.tls_key_path.empty();
    if (has_cert && !has_key) {
      add(s.path("tls_key_path"), "is required when tls_cert_path is set");
    } else if (has_key && !has_cert) {
      add(s.path("tls_cert_path"), "is required when tls_key_path is set");
    }
    if (has_cert) check_readable(s.path("tls_cert_path"), d.tls_cert_path);
    if (has_key) check_readable(s.path("tls_key_path"), d.tls_key_path);
  }
  return d;
}

StandaloneDestination Reader::read_standalone_destination(const YAML::Node& node,
                                                          const std::string& path,
                                                          const Config& context) {
  StandaloneDestination out;
  // The keys of a `destinations:` entry, plus a route's `match`.
  std::vector<std::string_view> keys(kDestinationKeys.begin(), kDestinationKeys.end());
  keys.push_back("match");
  Section s(*this, node, path, keys);
  if (!node.IsDefined() || node.IsNull()) {
    add(path, "expected a mapping of destination keys");
    return out;
  }
  if (!s.valid()) return out;
  out.destination = read_destination(s, context.retry);
  if (auto match_node = s.value("match")) {
    Section m(*this, *match_node, s.path("match"), kMatchKeys);
    if (m.valid()) {
      if (auto match = read_route_match(m, context.listeners)) out.match = std::move(*match);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// routes.

template <class Check>
void Reader::read_one_or_more(const Section& s, std::string_view key, std::string_view what,
                              Check check, std::vector<std::string>& out) {
  auto node = s.value(key);
  if (!node) return;
  const std::string path = s.path(key);
  auto take = [&](const std::string& item_path, const YAML::Node& item) {
    if (!item.IsScalar()) {
      add(item_path, fmt::format("expected {}", what));
    } else if (item.Scalar().empty()) {
      add(item_path, fmt::format("must not be empty (expected {})", what));
    } else if (check(item_path, item.Scalar())) {
      out.push_back(item.Scalar());
    }
  };
  if (node->IsScalar()) {
    take(path, *node);
  } else if (node->IsSequence()) {
    // An empty list would match everything, which is never what `[]` was meant to say.
    if (node->size() == 0) add(path, fmt::format("expected {} or a non-empty list of them", what));
    std::size_t index = 0;
    for (const auto& item : *node) take(index_path(path, index++), item);
  } else {
    add(path, fmt::format("expected {} or a list of them", what));
  }
}

std::vector<TagCondition> Reader::read_tag_conditions(const Section& m) {
  std::vector<TagCondition> conditions;
  auto node = m.value("tags");
  if (!node) return conditions;
  if (!node->IsMap()) {
    add(m.path("tags"),
        "expected a mapping of DICOM keyword to {equals: VALUE} | {regex: PATTERN} | "
        "{exists: true|false}");
    return conditions;
  }
  std::set<std::string> seen;
  for (const auto& kv : *node) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      add(m.path("tags"), "keys must be DICOM keywords such as StationName");
      continue;
    }
    TagCondition condition;
    condition.keyword = kv.first.Scalar();
    const std::string path = child_path(m.path("tags"), condition.keyword);
    if (!seen.insert(condition.keyword).second) {
      add(path, "duplicate key");
      continue;
    }
    Section op(*this, kv.second, path, kTagOperators);
    if (!op.valid()) continue;
    const auto present = std::count_if(kTagOperators.begin(), kTagOperators.end(),
                                       [&](std::string_view key) { return op.has(key); });
    if (present != 1) {
      add(path, "expected exactly one of equals, regex or exists");
      continue;
    }
    if (op.has("equals")) {
      condition.op = TagCondition::Op::kEquals;
      if (!read_string(op, "equals", condition.value)) continue;
    } else if (op.has("regex")) {
      condition.op = TagCondition::Op::kRegex;
      if (!read_string(op, "regex", condition.value)) continue;
      try {
        std::regex compiled(condition.value, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        add(op.path("regex"),
            fmt::format("invalid regular expression `{}`: {}", condition.value, e.what()));
        continue;
      }
    } else {
      condition.op = TagCondition::Op::kExists;
      if (!read_bool(op, "exists", condition.exists)) continue;
    }
    conditions.push_back(std::move(condition));
  }
  return conditions;
}

std::optional<RouteMatch> Reader::read_route_match(const Section& m,
                                                   const std::vector<Listener>& listeners) {
  const std::size_t issues_before = issues_.size();
  RouteMatch match;
  auto ae_title = [this](const std::string& path, const std::string& value) {
    if (auto problem = ae_title_problem(value)) {
      add(path, "AE title " + *problem);
      return false;
    }
    return true;
  };
  read_one_or_more(m, "calling_ae", "an AE title", ae_title, match.calling_ae);
  read_one_or_more(m, "called_ae", "an AE title", ae_title, match.called_ae);

  std::vector<std::string_view> listener_names;
  for (const Listener& l : listeners) {
    if (!l.name.empty()) listener_names.push_back(l.name);
  }
  read_one_or_more(
      m, "listener", "a listener name",
      [&](const std::string& path, const std::string& value) {
        if (std::find(listener_names.begin(), listener_names.end(), value) !=
            listener_names.end()) {
          return true;
        }
        add(path, unknown_name_message("listener", value, listener_names));
        return false;
      },
      match.listener);
  read_one_or_more(
      m, "source", "an IP address or CIDR block",
      [this](const std::string& path, const std::string& value) {
        auto network = parse_ip_network(value);
        if (!network.ok()) add(path, network.error().message);
        return network.ok();
      },
      match.source);
  read_one_or_more(
      m, "modality", "a modality code",
      [this](const std::string& path, const std::string& value) {
        if (valid_modality(value)) return true;
        add(path, fmt::format("expected a modality code such as CT or MR (upper "
                              "case, at most 16 characters), got `{}`",
                              value));
        return false;
      },
      match.modality);
  read_one_or_more(
      m, "sop_class", "a SOP Class UID",
      [this](const std::string& path, const std::string& value) {
        if (valid_uid(value)) return true;
        add(path, fmt::format("expected a SOP Class UID (digits and dots, at most "
                              "64 characters, e.g. 1.2.840.10008.5.1.4.1.1.2), "
                              "got `{}`",
                              value));
        return false;
      },
      match.sop_class);
  match.tags = read_tag_conditions(m);
  if (issues_.size() != issues_before) return std::nullopt;
  return match;
}

std::vector<Route> Reader::read_routes(const Section& root,
                                       const std::vector<Listener>& listeners) {
  std::vector<Route> routes;
  auto list = sequence(root, "routes", "expected a list of routes");
  if (!list) return routes;
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("routes", index++), kRouteKeys);
    if (!s.valid()) continue;
    Route route;
    if (require(s, "name")) read_non_empty(s, "name", route.name);
    read_bool(s, "default", route.is_default);
    if (auto match_node = s.value("match")) {
      if (route.is_default) {
        add(s.path("match"),
            "a default route has no `match`: it applies to what no other route matched");
      } else {
        Section m(*this, *match_node, s.path("match"), kMatchKeys);
        if (m.valid()) {
          route.has_match = true;
          if (auto match = read_route_match(m, listeners)) route.match = std::move(*match);
        }
      }
    }
    if (require(s, "destinations", "is required (a list of destination names)")) {
      if (auto names = sequence(s, "destinations", "expected a list of destination names")) {
        if (names->size() == 0) add(s.path("destinations"), "at least one destination is required");
        std::size_t n = 0;
        for (const auto& name : *names) {
          const std::string path = index_path(s.path("destinations"), n++);
          if (!name.IsScalar() || name.Scalar().empty()) {
            add(path, "expected a destination name");
            continue;
          }
          route.destinations.push_back(name.Scalar());
        }
      }
    }
    read_bool(s, "continue", route.continue_matching);
    routes.push_back(std::move(route));
  }
  return routes;
}

// ---------------------------------------------------------------------------------------------
// Across sections.

/// Unique destination names (without regard to case, as the API's: same_destination_name) and
/// route names, routes name existing destinations, one default route.
void Reader::cross_check_routing(const Config& config) {
  std::set<std::string> destination_names;  // exact spellings: what routes must name
  std::vector<std::string_view> known;      // in configuration order, for messages
  for (std::size_t i = 0; i < config.destinations.size(); ++i) {
    const Destination& d = config.destinations[i];
    if (d.name.empty()) continue;
    const auto earlier = std::find_if(
        config.destinations.begin(), config.destinations.begin() + static_cast<std::ptrdiff_t>(i),
        [&](const Destination& e) { return same_destination_name(e.name, d.name); });
    if (earlier == config.destinations.begin() + static_cast<std::ptrdiff_t>(i)) {
      destination_names.insert(d.name);
      known.push_back(d.name);
      continue;
    }
    const auto j = static_cast<std::size_t>(earlier - config.destinations.begin());
    add(index_path("destinations", i) + ".name",
        earlier->name == d.name
            ? fmt::format("duplicate destination name `{}` (also destinations[{}])", d.name, j)
            : fmt::format("duplicate destination name `{}`: destinations[{}] is `{}` (names are "
                          "compared without regard to case)",
                          d.name, j, earlier->name));
  }

  std::map<std::string, std::size_t> route_names;
  std::optional<std::size_t> default_route;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const Route& r = config.routes[i];
    const std::string path = index_path("routes", i);
    if (!r.name.empty()) {
      auto [it, inserted] = route_names.emplace(r.name, i);
      if (!inserted) {
        add(path + ".name",
            fmt::format("duplicate route name `{}` (also routes[{}])", r.name, it->second));
      }
    }
    for (std::size_t j = 0; j < r.destinations.size(); ++j) {
      const std::string& name = r.destinations[j];
      if (destination_names.contains(name)) continue;
      add(index_path(path + ".destinations", j), unknown_name_message("destination", name, known));
    }
    if (r.is_default) {
      if (default_route) {
        add(path + ".default",
            fmt::format("only one route may be the default (also routes[{}])", *default_route));
      } else {
        default_route = i;
      }
    }
  }
}

}  // namespace gw::config::detail
