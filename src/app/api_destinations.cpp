#include "app/api_destinations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "queue/routing.h"

namespace gw::app {
namespace {

using config::ConfigIssue;
using nlohmann::json;

constexpr std::size_t kMaxNameLength = 64;

/// Issue paths from the routing compiler name the probe's only route ("routes[0].match…"):
/// rewritten to start with `path`.
std::string rebase(const std::string& issue_path, const std::string& path) {
  constexpr std::string_view kProbe = "routes[0].";
  std::string rest = issue_path.starts_with(kProbe) ? issue_path.substr(kProbe.size()) : issue_path;
  return path.empty() ? rest : path + "." + rest;
}

config::Route route_for(const config::StandaloneDestination& d) {
  config::Route r;
  r.name = "api:" + d.destination.name;
  r.match = *d.match;
  r.has_match = true;
  r.destinations = {d.destination.name};
  r.independent = true;
  return r;
}

}  // namespace

bool valid_api_destination_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

core::Result<config::StandaloneDestination> check_api_destination(
    const json& body, const config::Config& file, const std::string& path,
    std::vector<ConfigIssue>* issues) {
  std::vector<ConfigIssue> found;
  auto at = [&](std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  };
  // JSON is YAML: the config reader checks the body as it checks an entry of the file.
  const auto base_dir = file.source_path.parent_path();
  auto parsed = config::parse_destination(body.dump(), file, base_dir, path, &found);
  if (const auto name = body.find("name"); name != body.end() && name->is_string() &&
                                           !name->get<std::string>().empty() &&
                                           !valid_api_destination_name(name->get<std::string>())) {
    found.push_back(
        {at("name"), "an API destination's name is 1-64 characters of A-Z a-z 0-9 . _ -"});
  }
  if (parsed.ok() && parsed->match) {
    // Tag keywords are resolved by the routing compiler: a probe with this route alone.
    config::Config probe;
    probe.listeners = file.listeners;
    probe.destinations = {parsed->destination};
    probe.routes = {route_for(*parsed)};
    std::vector<ConfigIssue> routing;
    if (auto table = queue::RoutingTable::compile(probe, &routing); !table.ok()) {
      for (auto& i : routing) found.push_back({rebase(i.path, path), std::move(i.message)});
      if (routing.empty()) found.push_back({at("match"), table.error().message});
    }
  }
  if (!found.empty()) {
    std::string message;
    for (const auto& i : found)
      message += (message.empty() ? "" : "\n") + i.path + ": " + i.message;
    if (issues != nullptr) *issues = std::move(found);
    return core::make_error(core::ErrorCode::kConfig, std::move(message));
  }
  return std::move(parsed).value();
}

index::ApiDestination to_stored(const json& body, const config::StandaloneDestination& checked) {
  const config::Destination& d = checked.destination;
  index::ApiDestination s;
  s.name = d.name;
  s.ae_title = d.ae_title;
  s.host = d.host;
  s.port = d.port;
  s.calling_ae_title = d.calling_ae_title;
  s.tls_enabled = d.tls_enabled;
  s.tls_cert_path = d.tls_cert_path.string();
  s.tls_key_path = d.tls_key_path.string();
  s.tls_ca_path = d.tls_ca_path.string();
  s.verify_hostname = d.verify_hostname;
  s.max_associations = d.max_associations;
  s.max_async_operations = d.max_async_operations;
  s.tls_profile = std::string(config::to_string(d.tls_profile));
  // Only the keys the body set: the others follow the file's top-level retry:, reloads included.
  if (const auto retry = body.find("retry"); retry != body.end() && retry->is_object()) {
    auto set = [&](const char* key) { return retry->contains(key) && !(*retry)[key].is_null(); };
    if (set("max_attempts")) s.retry_max_attempts = d.retry.max_attempts;
    if (set("max_age")) s.retry_max_age_s = d.retry.max_age.count();
    if (set("initial_backoff")) s.retry_initial_backoff_s = d.retry.initial_backoff.count();
    if (set("max_backoff")) s.retry_max_backoff_s = d.retry.max_backoff.count();
  }
  if (const auto match = body.find("match"); checked.match && match != body.end()) {
    s.match = match->dump();
  }
  return s;
}

json to_body(const index::ApiDestination& s) {
  json body = {{"name", s.name},
               {"ae_title", s.ae_title},
               {"host", s.host},
               {"port", s.port},
               {"tls_enabled", s.tls_enabled},
               {"verify_hostname", s.verify_hostname},
               {"max_associations", s.max_associations},
               {"max_async_operations", s.max_async_operations},
               {"tls_profile", s.tls_profile}};
  // Empty means "not set": the reader refuses an empty AE title.
  if (!s.calling_ae_title.empty()) body["calling_ae_title"] = s.calling_ae_title;
  if (!s.tls_cert_path.empty()) body["tls_cert_path"] = s.tls_cert_path;
  if (!s.tls_key_path.empty()) body["tls_key_path"] = s.tls_key_path;
  if (!s.tls_ca_path.empty()) body["tls_ca_path"] = s.tls_ca_path;
  json retry = json::object();
  if (s.retry_max_attempts) retry["max_attempts"] = *s.retry_max_attempts;
  if (s.retry_max_age_s) retry["max_age"] = *s.retry_max_age_s;
  if (s.retry_initial_backoff_s) retry["initial_backoff"] = *s.retry_initial_backoff_s;
  if (s.retry_max_backoff_s) retry["max_backoff"] = *s.retry_max_backoff_s;
  if (!retry.empty()) body["retry"] = retry;
  if (!s.match.empty()) body["match"] = json::parse(s.match, nullptr, /*allow_exceptions=*/false);
  return body;
}

core::Result<config::Config> merge_api_destinations(const config::Config& file,
                                                    const std::vector<index::ApiDestination>& api,
                                                    std::vector<ConfigIssue>* issues) {
  std::vector<ConfigIssue> found;
  config::Config merged = file;
  for (const auto& stored : api) {
    bool clash = false;
    for (std::size_t i = 0; i < file.destinations.size(); ++i) {
      if (!same_destination_name(file.destinations[i].name, stored.name)) continue;
      clash = true;
      found.push_back(
          {fmt::format("destinations[{}].name", i),
           fmt::format("`{}` is also the name of a destination created through the API "
                       "(/api/v1/destinations/{}): rename this one, or delete the API one first",
                       file.destinations[i].name, stored.name)});
    }
    if (clash) continue;
    std::vector<ConfigIssue> own;
    auto checked =
        check_api_destination(to_body(stored), file, "api_destinations." + stored.name, &own);
    if (!checked.ok()) {
      found.insert(found.end(), own.begin(), own.end());
      continue;
    }
    merged.destinations.push_back(checked->destination);
    if (checked->match) merged.routes.push_back(route_for(*checked));
  }
  if (!found.empty()) {
    std::string message;
    for (const auto& i : found)
      message += (message.empty() ? "" : "\n") + i.path + ": " + i.message;
    if (issues != nullptr) *issues = std::move(found);
    return core::make_error(core::ErrorCode::kConfig, std::move(message));
  }
  return merged;
}

}  // namespace gw::app
