#pragma once
/// Internal to gw_config: the YAML reading machinery shared by the section readers.
/// reader.cpp holds the typed-value primitives; config.cpp the core sections and the entry
/// points; routing_config.cpp destinations, routes, retry and forwarding.

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace gw::config::detail {

namespace fs = std::filesystem;

constexpr std::int64_t kDay = 24 * 3600;
constexpr std::int64_t kMaxDurationSeconds = kDay;  // the default cap of read_duration
constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
/// Asynchronous operations window (limits: and destinations:); on our side each outstanding
/// operation holds a spool file or an open stored file.
constexpr std::uint64_t kMaxAsyncOperations = 256;

template <class E>
using EnumTable = std::span<const std::pair<std::string_view, E>>;

inline constexpr std::array<std::pair<std::string_view, TlsProfile>, 4> kTlsProfiles = {{
    {"bcp195-rfc8996", TlsProfile::kBcp195Rfc8996},
    {"bcp195-nd", TlsProfile::kBcp195Nd},
    {"bcp195-extended", TlsProfile::kBcp195Extended},
    {"modern", TlsProfile::kModern},
}};

std::string child_path(const std::string& parent, std::string_view key);
std::string index_path(const std::string& parent, std::size_t index);
std::string join_names(std::span<const std::string_view> names);
/// "an integer 1-65535", "a positive integer", ... for "expected ..." messages.
std::string describe_range(std::uint64_t min, std::uint64_t max);
/// Digits only (an optional leading '+'); no sign, hex, octal or separators.
std::optional<std::uint64_t> parse_uint(std::string_view text);
/// "30" (seconds), "30s", "5m", "2h", "3d". Too large values saturate so that the range check
/// reports them.
std::optional<std::int64_t> parse_duration(std::string_view text);
/// PS3.5 AE VR rules; nullopt when `ae` is a valid AE title.
std::optional<std::string> ae_title_problem(std::string_view ae);
/// Modality (0008,0060) is a CS: upper-case letters, digits, space, underscore, at most 16.
bool valid_modality(std::string_view modality);
std::string format_issues(const std::vector<ConfigIssue>& issues);

class Reader;

/// A YAML mapping whose keys were checked against an allowed set (unknown and duplicate keys
/// are reported on construction). An absent or null node reads as an empty mapping, so every
/// key keeps its default.
class Section {
 public:
  Section(Reader& reader, const YAML::Node& node, std::string path,
          std::span<const std::string_view> allowed);

  /// False when the node was not a mapping (already reported).
  bool valid() const { return valid_; }
  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return child_path(path_, key); }
  /// The value under `key`, or nullopt when the key is absent or its value is null.
  std::optional<YAML::Node> value(std::string_view key) const;
  bool has(std::string_view key) const { return value(key).has_value(); }

 private:
  std::string path_;
  bool valid_ = true;
  std::vector<std::pair<std::string, YAML::Node>> entries_;
};

/// Collects every issue while the sections are read; nothing stops at the first one.
class Reader {
 public:
  explicit Reader(fs::path base_dir) : base_dir_(std::move(base_dir)) {}

  void add(std::string path, std::string message) {
    issues_.push_back({std::move(path), std::move(message)});
  }
  std::vector<ConfigIssue>& issues() { return issues_; }

  Config read(const YAML::Node& root);
  /// A destination on its own with an optional `match` (parse_destination).
  StandaloneDestination read_standalone_destination(const YAML::Node& node, const std::string& path,
                                                    const Config& context);

 private:
  friend class Section;

  // Typed values. Each returns true when the key is present and valid (then `out` is set);
  // an absent key leaves `out` at its default; a bad value is reported and leaves `out` alone.
  bool require(const Section& s, std::string_view key, std::string_view what = "is required");
  bool read_bool(const Section& s, std::string_view key, bool& out);
  bool read_string(const Section& s, std::string_view key, std::string& out);
  bool read_non_empty(const Section& s, std::string_view key, std::string& out);
  template <class T>
  bool read_uint(const Section& s, std::string_view key, std::uint64_t min, std::uint64_t max,
                 T& out);
  bool read_port(const Section& s, std::string_view key, std::uint64_t min, std::uint16_t& out) {
    return read_uint(s, key, min, 65535, out);
  }
  bool read_duration(const Section& s, std::string_view key, std::int64_t min, Seconds& out,
                     std::int64_t max = kMaxDurationSeconds);
  bool read_path(const Section& s, std::string_view key, fs::path& out);
  bool read_ae_title(const Section& s, std::string_view key, std::string& out);
  bool read_ae_titles(const Section& s, std::string_view key, std::vector<std::string>& out);
  bool read_choice(const Section& s, std::string_view key,
                   std::span<const std::string_view> choices, std::string& out);
  template <class E>
  bool read_enum(const Section& s, std::string_view key, EnumTable<E> table, E& out);
  /// The sequence under `key` (absent: nullopt; not a sequence: reported, nullopt).
  std::optional<YAML::Node> sequence(const Section& s, std::string_view key, std::string_view what);
  bool scalar(const Section& s, std::string_view key, std::string_view expected, std::string& out);

  void check_readable(const std::string& path, const fs::path& file);
  void check_required_file(const Section& s, std::string_view key, const fs::path& file,
                           std::string_view why);

  // Core sections (config.cpp).
  std::vector<Listener> read_listeners(const Section& root);
  Accept read_accept(const Section& root);
  std::vector<Peer> read_peers(const Section& root);
  std::optional<CertificateMatch> read_certificate_match(const Section& s);
  Tls read_tls(const Section& root);
  Limits read_limits(const Section& root);
  Storage read_storage(const Section& root);
  Database read_database(const Section& root);
  Http read_http(const Section& root);
  Acme read_acme(const Section& root);
  Audit read_audit(const Section& root);
  Logging read_logging(const Section& root);
  /// Top-level `node_id`: "" or [A-Za-z0-9._-]{1,64}, not "." or ".." (it names directories).
  void read_node_id(const Section& root, std::string& out);
  void cross_check(const Config& config);

  // Store-and-forward sections (routing_config.cpp).
  Retry read_retry(const Section& root);
  bool read_retry_keys(const Section& s, Retry& retry);
  Forwarding read_forwarding(const Section& root);
  std::vector<Destination> read_destinations(const Section& root, const Retry& defaults);
  /// One entry of `destinations:` (also a standalone one: parse_destination).
  Destination read_destination(const Section& s, const Retry& defaults);
  std::vector<Route> read_routes(const Section& root, const std::vector<Listener>& listeners);
  std::optional<RouteMatch> read_route_match(const Section& m,
                                             const std::vector<Listener>& listeners);
  /// A scalar or a list of scalars under `key`, appended to `out`; each item must pass
  /// `check(path, value)`, which reports a bad one with its path and returns false.
  template <class Check>
  void read_one_or_more(const Section& s, std::string_view key, std::string_view what, Check check,
                        std::vector<std::string>& out);
  std::vector<TagCondition> read_tag_conditions(const Section& m);
  void cross_check_routing(const Config& config);

  fs::path base_dir_;
  std::vector<ConfigIssue> issues_;
};

// Member templates used by both section files.

template <class T>
bool Reader::read_uint(const Section& s, std::string_view key, std::uint64_t min, std::uint64_t max,
                       T& out) {
  const std::string expected = "expected " + describe_range(min, max);
  std::string text;
  if (!scalar(s, key, expected, text)) return false;
  auto value = parse_uint(text);
  if (!value || *value < min || *value > max) {
    add(s.path(key), expected + ", got `" + text + "`");
    return false;
  }
  out = static_cast<T>(*value);
  return true;
}

template <class E>
bool Reader::read_enum(const Section& s, std::string_view key, EnumTable<E> table, E& out) {
  std::vector<std::string_view> names;
  for (const auto& entry : table) names.push_back(entry.first);
  std::string text;
  if (!read_choice(s, key, names, text)) return false;
  for (const auto& [name, value] : table) {
    if (name == text) out = value;
  }
  return true;
}

}  // namespace gw::config::detail
