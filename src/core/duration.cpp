#include "core/duration.h"

#include <charconv>
#include <limits>

namespace gw::core {

namespace {

std::uint64_t unit_seconds(char c) {
  switch (c) {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 3600;
    case 'd':
      return 24 * 3600;
    default:
      return 0;
  }
}

}  // namespace

bool has_duration_unit(std::string_view text) {
  return !text.empty() && unit_seconds(text.back()) != 0;
}

std::optional<std::int64_t> parse_duration_seconds(std::string_view text) {
  std::uint64_t unit = 1;
  if (has_duration_unit(text)) {
    unit = unit_seconds(text.back());
    text.remove_suffix(1);
  }
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (value > kMax / unit) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(value * unit);
}

}  // namespace gw::core
