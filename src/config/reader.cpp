#include "config/reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <memory>
#include <system_error>

#include "config/suggest.h"
#include "core/duration.h"

namespace gw::config::detail {
namespace {

/// The largest unit that divides `seconds` ("24h", "365d", "90s"), for range messages.
std::string format_duration(std::int64_t seconds) {
  if (seconds >= kDay && seconds % kDay == 0 && seconds != kDay) {
    return fmt::format("{}d", seconds / kDay);
  }
  if (seconds >= 3600 && seconds % 3600 == 0) return fmt::format("{}h", seconds / 3600);
  if (seconds >= 60 && seconds % 60 == 0) return fmt::format("{}m", seconds / 60);
  return fmt::format("{}s", seconds);
}

std::string unknown_key_message(std::string_view key, std::span<const std::string_view> allowed) {
  std::optional<std::string_view> best = closest(key, allowed);
  if (!best && key.size() >= 3) {  // `tls` for `tls_enabled`
    auto it = std::find_if(allowed.begin(), allowed.end(),
                           [&](std::string_view candidate) { return candidate.starts_with(key); });
    if (it != allowed.end()) best = *it;
  }
  if (best) return fmt::format("unknown key (did you mean `{}`?)", *best);
  return fmt::format("unknown key (expected one of: {})", join_names(allowed));
}

}  // namespace

std::string join_names(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(const std::string& parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::optional<std::uint64_t> parse_uint(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_duration(std::string_view text) {
  return core::parse_duration_seconds(text);
}

std::string describe_range(std::uint64_t min, std::uint64_t max) {
  if (max >= kU32Max) {
    if (min == 0) return "a non-negative integer";
    if (min == 1) return "a positive integer";
    return fmt::format("an integer >= {}", min);
  }
  return fmt::format("an integer {}-{}", min, max);
}

std::optional<std::string> ae_title_problem(std::string_view ae) {
  if (ae.empty()) return "must not be empty (1-16 characters)";
  if (ae.size() > 16) return fmt::format("`{}` is {} characters, at most 16", ae, ae.size());
  for (char c : ae) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "must not contain control characters";
    if (c == '\\') return "must not contain a backslash";
    if (u > 0x7e) return "must contain only ASCII characters";
  }
  if (ae.find_first_not_of(' ') == std::string_view::npos) return "must not be all spaces";
  return std::nullopt;
}

bool valid_modality(std::string_view modality) {
  if (modality.empty() || modality.size() > 16) return false;
  return std::all_of(modality.begin(), modality.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_';
  });
}

std::string format_issues(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& issue : issues) {
    if (!out.empty()) out += '\n';
    if (!issue.path.empty()) {
      out += issue.path;
      out += ": ";
    }
    out += issue.message;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Section and the typed-value primitives.

Section::Section(Reader& reader, const YAML::Node& node, std::string path,
                 std::span<const std::string_view> allowed)
    : path_(std::move(path)) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    valid_ = false;
    reader.add(path_, path_.empty() ? "the configuration must be a YAML mapping of keys"
                                    : "expected a mapping of keys");
    return;
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      reader.add(path_, "keys must be plain strings");
      continue;
    }
    std::string key = kv.first.Scalar();
    std::string key_path = child_path(path_, key);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      reader.add(std::move(key_path), unknown_key_message(key, allowed));
      continue;
    }
    const bool duplicate = std::any_of(entries_.begin(), entries_.end(),
                                       [&](const auto& entry) { return entry.first == key; });
    if (duplicate) {
      reader.add(std::move(key_path), "duplicate key");
      continue;
    }
    entries_.emplace_back(std::move(key), kv.second);
  }
}

std::optional<YAML::Node> Section::value(std::string_view key) const {
  for (const auto& [name, node] : entries_) {
    if (name == key) {
      if (node.IsNull()) return std::nullopt;
      return node;
    }
  }
  return std::nullopt;
}

bool Reader::require(const Section& s, std::string_view key, std::string_view what) {
  if (s.has(key)) return true;
  add(s.path(key), std::string(what));
  return false;
}

bool Reader::scalar(const Section& s, std::string_view key, std::string_view expected,
                    std::string& out) {
  auto node = s.value(key);
  if (!node) return false;
  if (!node->IsScalar()) {
    add(s.path(key), std::string(expected));
    return false;
  }
  out = node->Scalar();
  return true;
}

bool Reader::read_bool(const Section& s, std::string_view key, bool& out) {
  auto node = s.value(key);
  if (!node) return false;
  bool value = false;
  if (!node->IsScalar() || !YAML::convert<bool>::decode(*node, value)) {
    add(s.path(key), "expected a boolean (true or false)");
    return false;
  }
  out = value;
  return true;
}

bool Reader::read_string(const Section& s, std::string_view key, std::string& out) {
  return scalar(s, key, "expected a string", out);
}

bool Reader::read_non_empty(const Section& s, std::string_view key, std::string& out) {
  std::string value;
  if (!read_string(s, key, value)) return false;
  if (value.empty()) {
    add(s.path(key), "must not be empty");
    return false;
  }
  out = std::move(value);
  return true;
}

bool Reader::read_duration(const Section& s, std::string_view key, std::int64_t min, Seconds& out,
                           std::int64_t max) {
  constexpr std::string_view kExpected =
      "expected a duration: whole seconds (30) or a number with unit s, m, h or d (\"30s\", "
      "\"5m\", \"2h\", \"3d\")";
  std::string text;
  if (!scalar(s, key, kExpected, text)) return false;
  auto seconds = parse_duration(text);
  if (!seconds) {
    add(s.path(key), fmt::format("{}, got `{}`", kExpected, text));
    return false;
  }
  if (*seconds < min || *seconds > max) {
    add(s.path(key), fmt::format("must be between {} and {}, got `{}`", format_duration(min),
                                 format_duration(max), text));
    return false;
  }
  out = Seconds{*seconds};
  return true;
}

bool Reader::read_path(const Section& s, std::string_view key, fs::path& out) {
  std::string text;
  if (!scalar(s, key, "expected a file system path", text)) return false;
  if (text.empty()) {
    out.clear();
    return true;
  }
  fs::path path(text);
  if (path.is_relative()) path = base_dir_ / path;
  out = path.lexically_normal();
  return true;
}

namespace {

/// Spaces around an AE title are padding (PS3.8 9.3.2): peers' titles arrive without them, so
/// `"CT1 "` in the file must mean CT1.
std::string trimmed_ae(std::string_view ae) {
  const auto first = ae.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return std::string(ae.substr(first, ae.find_last_not_of(' ') - first + 1));
}

}  // namespace

bool Reader::read_ae_title(const Section& s, std::string_view key, std::string& out) {
  std::string text;
  if (!scalar(s, key, "expected an AE title (a string of 1-16 characters)", text)) return false;
  if (auto problem = ae_title_problem(text)) {
    add(s.path(key), "AE title " + *problem);
    return false;
  }
  out = trimmed_ae(text);
  return true;
}

bool Reader::read_ae_titles(const Section& s, std::string_view key, std::vector<std::string>& out) {
  auto list = sequence(s, key, "expected a list of AE titles");
  if (!list) return false;
  std::vector<std::string> titles;
  bool ok = true;
  std::size_t index = 0;
  for (const auto& item : *list) {
    const std::string path = index_path(s.path(key), index++);
    if (!item.IsScalar()) {
      add(path, "expected an AE title (a string of 1-16 characters)");
      ok = false;
      continue;
    }
    if (auto problem = ae_title_problem(item.Scalar())) {
      add(path, "AE title " + *problem);
      ok = false;
      continue;
    }
    titles.push_back(trimmed_ae(item.Scalar()));
  }
  if (ok) out = std::move(titles);
  return ok;
}

bool Reader::read_choice(const Section& s, std::string_view key,
                         std::span<const std::string_view> choices, std::string& out) {
  const std::string expected = "expected one of: " + join_names(choices);
  std::string text;
  if (!scalar(s, key, expected, text)) return false;
  if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
    add(s.path(key), fmt::format("{}; got `{}`", expected, text));
    return false;
  }
  out = std::move(text);
  return true;
}

std::optional<YAML::Node> Reader::sequence(const Section& s, std::string_view key,
                                           std::string_view what) {
  auto node = s.value(key);
  if (!node) return std::nullopt;
  if (!node->IsSequence()) {
    add(s.path(key), std::string(what));
    return std::nullopt;
  }
  return node;
}

void Reader::check_readable(const std::string& path, const fs::path& file) {
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (status.type() == fs::file_type::not_found) {
    add(path, fmt::format("file not found: {}", file.string()));
    return;
  }
  if (ec) {
    add(path, fmt::format("cannot read {}: {}", file.string(), ec.message()));
    return;
  }
  if (fs::is_directory(status)) {
    add(path, fmt::format("{} is a directory, expected a file", file.string()));
    return;
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> handle(std::fopen(file.c_str(), "rb"),
                                                         &std::fclose);
  if (!handle) {
    add(path,
        fmt::format("cannot read {}: {}", file.string(), std::generic_category().message(errno)));
  }
}

void Reader::check_required_file(const Section& s, std::string_view key, const fs::path& file,
                                 std::string_view why) {
  if (file.empty()) {
    add(s.path(key), fmt::format("is required {}", why));
    return;
  }
  check_readable(s.path(key), file);
}

}  // namespace gw::config::detail
