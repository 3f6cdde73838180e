#include "http/params.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "core/duration.h"

namespace gw::http {

namespace {

using core::ErrorCode;
using core::make_error;

core::Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

/// The whole of `text` as a decimal integer (an optional leading '-').
std::optional<std::int64_t> to_int(std::string_view text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

/// Exactly `n` digits at text[pos].
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t n) {
  if (pos + n > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

/// Quoted for messages, cut to something readable.
std::string shown(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out(text.substr(0, kMax));
  if (text.size() > kMax) out += "…";
  return "`" + out + "`";
}

}  // namespace

core::Result<std::int64_t> query_int(const Request& request, const std::string& name,
                                     std::int64_t fallback, std::int64_t min, std::int64_t max) {
  const auto text = request.query_value(name);
  if (!text) return fallback;
  const auto value = to_int(*text);
  if (!value || *value < min || *value > max) {
    return invalid("query parameter `" + name + "`: expected an integer from " +
                   std::to_string(min) + " to " + std::to_string(max) + ", got " + shown(*text));
  }
  return *value;
}

core::Result<std::string> query_text(const Request& request, const std::string& name,
                                     std::size_t max_length) {
  auto text = request.query_value(name);
  if (!text) return std::string();
  if (text->size() > max_length) {
    return invalid("query parameter `" + name + "`: longer than " + std::to_string(max_length) +
                   " characters");
  }
  return std::move(*text);
}

core::Status check_query_names(const Request& request,
                               std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : request.query) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return invalid(
          "query parameter " + shown(name) + ": unknown here" +
          (list.empty() ? std::string(" (this route takes none)") : " (known: " + list + ")"));
    }
  }
  return {};
}

core::Result<std::int64_t> path_id(const Request& request, const std::string& name) {
  const auto it = request.path_params.find(name);
  const std::string text = it == request.path_params.end() ? "" : it->second;
  const auto value = to_int(text);
  if (!value || *value <= 0)
    return invalid(name + ": expected a positive integer, got " + shown(text));
  return *value;
}

core::Result<std::string> path_uid(const Request& request, const std::string& name) {
  const auto it = request.path_params.find(name);
  const std::string text = it == request.path_params.end() ? "" : it->second;
  if (!is_dicom_uid(text)) {
    return invalid(name + ": expected a DICOM UID (digits and dots, at most 64), got " +
                   shown(text));
  }
  return text;
}

core::Result<Json> json_body(const Request& request, std::initializer_list<std::string_view> known,
                             bool empty_is_object) {
  if (request.body.empty() && empty_is_object) return Json::object();
  // The media type without parameters ("application/json; charset=utf-8").
  std::string type = request.content_type.substr(0, request.content_type.find(';'));
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (type != "application/json") {
    return invalid("the body must be JSON (Content-Type: application/json), got " +
                   shown(request.content_type.empty() ? "no Content-Type" : request.content_type));
  }
  Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return invalid("the body is not valid JSON");
  if (!body.is_object()) return invalid("the body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return invalid("field " + shown(key) + ": unknown (known: " + list + ")");
    }
  }
  return body;
}

core::Result<std::optional<std::string>> optional_string(const Json& object,
                                                         const std::string& key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return invalid("field `" + key + "`: expected a string");
  return std::optional<std::string>(it->get<std::string>());
}

core::Result<std::optional<bool>> optional_bool(const Json& object, const std::string& key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return invalid("field `" + key + "`: expected true or false");
  return std::optional<bool>(it->get<bool>());
}

core::Result<std::int64_t> parse_time_ms(std::string_view text) {
  auto bad = [&]() {
    return invalid("expected ISO 8601 (2024-05-01T12:00:00Z) or Unix milliseconds, got " +
                   shown(text));
  };
  if (text.size() <= 16 && !text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return *to_int(text);
  }
  // YYYY-MM-DD
  const auto year = digits(text, 0, 4);
  const auto month = digits(text, 5, 2);
  const auto day = digits(text, 8, 2);
  if (!year || !month || !day || text.size() < 10 || text[4] != '-' || text[7] != '-') return bad();
  const std::chrono::year_month_day ymd{std::chrono::year(*year),
                                        std::chrono::month(static_cast<unsigned>(*month)),
                                        std::chrono::day(static_cast<unsigned>(*day))};
  if (!ymd.ok()) return bad();
  std::int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::sys_days(ymd).time_since_epoch())
                        .count();
  std::size_t pos = 10;
  if (pos < text.size()) {
    // THH:MM[:SS[.fraction]]
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad();
    const auto hour = digits(text, pos + 1, 2);
    const auto minute = digits(text, pos + 4, 2);
    if (!hour || !minute || text.size() < pos + 6 || text[pos + 3] != ':' || *hour > 23 ||
        *minute > 59) {
      return bad();
    }
    ms += (*hour * 3600LL + *minute * 60LL) * 1000;
    pos += 6;
    if (pos < text.size() && text[pos] == ':') {
      const auto second = digits(text, pos + 1, 2);
      if (!second || *second > 60) return bad();
      ms += *second * 1000LL;
      pos += 3;
      if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
        ++pos;
        std::size_t n = 0;
        std::int64_t fraction_ms = 0;
        for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++n) {
          if (n < 3) fraction_ms = fraction_ms * 10 + (text[pos] - '0');
        }
        if (n == 0) return bad();
        for (std::size_t i = n; i < 3; ++i) fraction_ms *= 10;
        ms += fraction_ms;
      }
    }
    // Z | ±HH:MM | ±HHMM | nothing (UTC)
    if (pos < text.size()) {
      if ((text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) {
        pos = text.size();
      } else if (text[pos] == '+' || text[pos] == '-') {
        const int sign = text[pos] == '+' ? 1 : -1;
        const auto oh = digits(text, pos + 1, 2);
        const bool colon = pos + 3 < text.size() && text[pos + 3] == ':';
        const auto om = digits(text, pos + (colon ? 4 : 3), 2);
        if (!oh || !om || *oh > 23 || *om > 59 || pos + (colon ? 6 : 5) != text.size()) {
          return bad();
        }
        ms -= sign * (*oh * 3600LL + *om * 60LL) * 1000;
        pos = text.size();
      } else {
        return bad();
      }
    }
  }
  return ms;
}

std::string format_time(std::int64_t unix_ms) {
  const std::int64_t seconds = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  const int millis = static_cast<int>(unix_ms - seconds * 1000);
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

Json time_or_null(std::int64_t unix_ms) {
  if (unix_ms == 0) return nullptr;
  return format_time(unix_ms);
}

core::Result<std::chrono::seconds> parse_duration(const Json& value) {
  if (value.is_number_integer()) return std::chrono::seconds(value.get<std::int64_t>());
  if (!value.is_string()) return invalid("expected seconds (an integer) or text like \"12h\"");
  const std::string text = value.get<std::string>();
  const auto seconds = core::has_duration_unit(text) && text.front() >= '0' && text.front() <= '9'
                           ? core::parse_duration_seconds(text)
                           : std::nullopt;
  // The bound keeps later arithmetic from overflowing; callers apply their own maximum.
  if (!seconds || *seconds > 100LL * 365 * 86400) {
    return invalid("expected a duration like 90s, 30m, 12h or 30d, got " + shown(text));
  }
  return std::chrono::seconds(*seconds);
}

bool is_dicom_uid(std::string_view uid) {
  if (uid.empty() || uid.size() > 64) return false;
  if (uid.front() == '.' || uid.back() == '.') return false;
  char previous = '.';
  for (char c : uid) {
    if (c == '.') {
      if (previous == '.') return false;  // empty component
    } else if (c < '0' || c > '9') {
      return false;
    }
    previous = c;
  }
  return true;
}

}  // namespace gw::http
