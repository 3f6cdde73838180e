#include "audit/syslog_message.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/utf8.h"

namespace gw::audit {

namespace {

using Json = nlohmann::json;

std::string ascii_json(const Json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
}

/// The details as ASCII JSON text of at most `budget` octets ("{}" when empty): over it, the
/// longest lists are cut (halved until it fits) and "truncated": true is added.
std::string details_text(const std::string& details, std::size_t budget) {
  if (details.empty()) return "{}";
  Json parsed = Json::parse(details, nullptr, /*allow_exceptions=*/false);
  // The index stores JSON objects only; anything else is sent as a JSON string, unchanged.
  if (parsed.is_discarded()) parsed = details;
  std::string text = ascii_json(parsed);
  if (text.size() <= budget) return text;
  if (!parsed.is_object()) return R"({"truncated":true})";
  parsed["truncated"] = true;
  for (int round = 0; round < 64; ++round) {  // each round halves the longest list
    Json* longest = nullptr;
    for (auto& [key, value] : parsed.items()) {
      if (value.is_array() && !value.empty() &&
          (longest == nullptr || value.size() > longest->size())) {
        longest = &value;
      }
    }
    if (longest == nullptr) break;
    longest->erase(longest->begin() + static_cast<std::ptrdiff_t>(longest->size() / 2),
                   longest->end());
    text = ascii_json(parsed);
    if (text.size() <= budget) return text;
  }
  return R"({"truncated":true})";
}

}  // namespace

int syslog_severity(std::string_view outcome) {
  return outcome == "ok" ? kSeverityNotice : kSeverityWarning;
}

int syslog_pri(std::string_view outcome) { return kSyslogFacility * 8 + syslog_severity(outcome); }

std::string syslog_timestamp(std::int64_t at_ms) {
  std::int64_t seconds = at_ms / 1000;
  std::int64_t millis = at_ms % 1000;
  if (millis < 0) {  // before 1970: floor, not truncation
    millis += 1000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "-";
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

std::string escape_param_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  while (!value.empty()) {
    const std::size_t n = core::utf8_sequence(value);
    if (n == 0) {
      out += core::kUtf8Replacement;
      value.remove_prefix(1);
      continue;
    }
    const char c = value.front();
    if (n == 1 && (c == '"' || c == '\\' || c == ']')) out += '\\';
    out.append(value.substr(0, n));
    value.remove_prefix(n);
  }
  return out;
}

std::string header_field(std::string_view value, std::size_t max_octets) {
  if (value.empty()) return "-";
  std::string out(value.substr(0, max_octets));
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126) c = '_';
  }
  return out;
}

std::string format_syslog_message(const index::AuditEvent& event, const SyslogOrigin& origin) {
  // Field limits: RFC 5424 6.2.
  std::string out = fmt::format("<{}>1 {} {} {} {} {} [{}", syslog_pri(event.outcome),
                                syslog_timestamp(event.at_ms), header_field(origin.hostname, 255),
                                header_field(kSyslogAppName, 48), header_field(origin.procid, 128),
                                header_field(event.action, 32), kSyslogSdId);
  const auto param = [&out](std::string_view name, std::string_view value) {
    out += ' ';
    out += name;
    out += "=\"";
    out += escape_param_value(value);
    out += '"';
  };
  param("id", std::to_string(event.id));
  param("actor", event.actor);
  param("action", event.action);
  param("target", event.target);
  param("outcome", event.outcome);
  if (!event.peer_address.empty()) param("peer", event.peer_address);
  out += "] ";
  out += details_text(event.details, kMaxMessageOctets - std::min(kMaxMessageOctets, out.size()));
  return out;
}

void append_octet_counted(std::string& out, std::string_view message) {
  out += std::to_string(message.size());
  out += ' ';
  out.append(message);
}

}  // namespace gw::audit
