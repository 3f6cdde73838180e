#pragma once
/// Destinations created through the REST API (ADR 005): checked exactly like the config file's
/// (config::parse_destination, then the routing compiler for tag keywords), stored in the index
/// (index/destinations.h), and merged into the configuration the gateway runs. Each one with a
/// `match` becomes an independent route (tried after the file's routes, whatever they matched),
/// so adding one never changes where the file's routes send anything.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "index/destinations.h"

namespace gw::app {

/// 1-64 characters of [A-Za-z0-9._-]: safe in a URL path, a log line and an audit target.
bool valid_api_destination_name(std::string_view name);

/// Checks a request body (a JSON object with the keys of a config `destinations:` entry, plus
/// `match`) against the running file configuration `file`. Issue paths start with `path`
/// ("" for a request body). kConfig with every issue in `issues`.
core::Result<config::StandaloneDestination> check_api_destination(
    const nlohmann::json& body, const config::Config& file, const std::string& path,
    std::vector<config::ConfigIssue>* issues);

/// The stored form of a body that check_api_destination accepted: paths resolved, retry keys
/// the body set (in seconds), `match` as JSON text. Timestamps and authors are the caller's.
index::ApiDestination to_stored(const nlohmann::json& body,
                                const config::StandaloneDestination& checked);

/// The body that describes a stored destination (what check_api_destination reads back).
nlohmann::json to_body(const index::ApiDestination& stored);

/// The configuration to run: `file` plus every API destination, each checked again against
/// `file` (its listeners, its retry defaults) and each with a match as an independent route.
/// kConfig with every issue when a name is in both (the file's entry is named) or an API
/// destination no longer checks (its issues under "api_destinations.NAME").
core::Result<config::Config> merge_api_destinations(const config::Config& file,
                                                    const std::vector<index::ApiDestination>& api,
                                                    std::vector<config::ConfigIssue>* issues);

using config::same_destination_name;

}  // namespace gw::app
