#pragma once
/// Durations as operators write them: "30" or "30s", "5m", "12h", "90d". One parser for the
/// config file, the CLI and the REST API; each caller applies its own bounds and policy (a bare
/// number allowed or not).

#include <cstdint>
#include <optional>
#include <string_view>

namespace gw::core {

/// Seconds; a bare number (optionally with a leading '+') is seconds. nullopt when the text is
/// not a whole number with an optional s/m/h/d unit. Saturates at INT64_MAX instead of
/// overflowing.
std::optional<std::int64_t> parse_duration_seconds(std::string_view text);

/// Whether the text ends with one of the units above (for callers that refuse bare numbers).
bool has_duration_unit(std::string_view text);

}  // namespace gw::core
