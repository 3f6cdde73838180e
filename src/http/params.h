#pragma once
/// Reading what a client sent: query parameters, JSON bodies, times and durations. Every
/// refusal is kInvalidArgument naming the parameter or field, so a 400 says what to fix.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/api.h"

namespace gw::http {

/// An integer query parameter in [min, max]; `fallback` when absent.
core::Result<std::int64_t> query_int(const Request& request, const std::string& name,
                                     std::int64_t fallback, std::int64_t min, std::int64_t max);
/// A text query parameter ("" when absent), at most `max_length` bytes.
core::Result<std::string> query_text(const Request& request, const std::string& name,
                                     std::size_t max_length = 256);
/// Refuses query parameters the route does not know (a typo would otherwise be ignored
/// silently and return everything).
core::Status check_query_names(const Request& request,
                               std::initializer_list<std::string_view> known);

/// A path placeholder parsed as a positive id ("/queue/{id}").
core::Result<std::int64_t> path_id(const Request& request, const std::string& name);
/// A path placeholder that must be a DICOM UID (digits and dots, at most 64 characters).
core::Result<std::string> path_uid(const Request& request, const std::string& name);

/// The body as a JSON object. An empty body is `{}` when `empty_is_object`. Refuses any
/// content type but application/json and fields not in `known`.
core::Result<Json> json_body(const Request& request, std::initializer_list<std::string_view> known,
                             bool empty_is_object = false);
/// Optional typed fields of a JSON object; kInvalidArgument when present with another type.
core::Result<std::optional<std::string>> optional_string(const Json& object,
                                                         const std::string& key);
core::Result<std::optional<bool>> optional_bool(const Json& object, const std::string& key);

/// A time: ISO 8601 in UTC or with an offset ("2024-05-01", "2024-05-01T12:00:00Z",
/// "2024-05-01T12:00:00.250+02:00") or Unix milliseconds ("1714564800000").
core::Result<std::int64_t> parse_time_ms(std::string_view text);
/// "2024-05-01T12:00:00.250Z".
std::string format_time(std::int64_t unix_ms);
/// ISO 8601 text, or null for 0 (never / not set).
Json time_or_null(std::int64_t unix_ms);

/// A duration: a JSON integer of seconds, or text with a unit ("90s", "30m", "12h", "30d").
core::Result<std::chrono::seconds> parse_duration(const Json& value);

/// Whether `uid` is a syntactically valid DICOM UID (PS3.5 9.1).
bool is_dicom_uid(std::string_view uid);

}  // namespace gw::http
