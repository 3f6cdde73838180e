#pragma once
/// Destinations created through the REST API (/api/v1/destinations), as the index stores them.
/// Destinations in the config file never come here; the gateway runs the union of both, and a
/// name belongs to one or the other (docs/adr/005-api-destinations.md). Fields are plain
/// columns (text, integers, NULL for "not overridden") so every backend stores them alike.

#include <cstdint>
#include <optional>
#include <string>

namespace gw::index {

/// One API destination with the keys of a config `destinations:` entry, already validated by
/// the caller (config::parse_destination). Key material is named by path only, never stored.
struct ApiDestination {
  std::string name;  ///< unique without regard to case
  std::string ae_title;
  std::string host;
  std::int64_t port = 104;
  std::string calling_ae_title;  ///< empty = the gateway's ae_title
  bool tls_enabled = false;
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string tls_ca_path;
  bool verify_hostname = true;
  std::int64_t max_associations = 2;
  std::int64_t max_async_operations = 1;
  std::string tls_profile = "bcp195-rfc8996";  ///< YAML spelling
  // The destination's own `retry:` keys; nullopt = the config file's top-level value (so a
  // reload that changes those defaults applies to this destination too).
  std::optional<std::int64_t> retry_max_attempts;
  std::optional<std::int64_t> retry_max_age_s;
  std::optional<std::int64_t> retry_initial_backoff_s;
  std::optional<std::int64_t> retry_max_backoff_s;
  std::string match;  ///< a route's `match` as JSON object text; "" = none (nothing routed)
  std::int64_t created_at_ms = 0;
  std::string created_by;  ///< audit actor ("user:alice")
  std::int64_t updated_at_ms = 0;
  std::string updated_by;

  bool operator==(const ApiDestination&) const = default;
};

}  // namespace gw::index
