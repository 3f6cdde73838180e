#include "config/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

namespace gw::config {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Allowed keys per section (the order docs/config.md uses).

constexpr std::array<std::string_view, 15> kTopKeys = {
    "ae_title", "data_dir", "listeners", "accept", "peers", "tls",   "limits", "destinations",
    "routes",   "storage",  "database",  "http",   "acme",  "audit", "logging"};
constexpr std::array<std::string_view, 4> kListenerKeys = {"name", "bind", "port", "tls"};
constexpr std::array<std::string_view, 3> kAcceptKeys = {"calling_ae_titles", "called_ae_titles",
                                                         "require_tls_for"};
constexpr std::array<std::string_view, 2> kPeerKeys = {"ae_title", "certificate"};
constexpr std::array<std::string_view, 3> kCertificateMatchKeys = {"subject_cn", "san", "sha256"};
constexpr std::array<std::string_view, 10> kTlsKeys = {
    "enabled",   "cert_file",        "key_file", "ca_file",     "crl_file",
    "no_verify", "peer_certificate", "profile",  "min_version", "ciphers"};
constexpr std::array<std::string_view, 6> kLimitsKeys = {
    "max_associations", "max_pdu_length", "max_associate_rq_length",
    "artim_timeout",    "idle_timeout",   "shutdown_grace"};
constexpr std::array<std::string_view, 11> kDestinationKeys = {"name",
                                                               "ae_title",
                                                               "host",
                                                               "port",
                                                               "calling_ae_title",
                                                               "tls_enabled",
                                                               "tls_cert_path",
                                                               "tls_key_path",
                                                               "tls_ca_path",
                                                               "verify_hostname",
                                                               "max_associations"};
constexpr std::array<std::string_view, 4> kRouteKeys = {"name", "match", "destinations",
                                                        "continue"};
constexpr std::array<std::string_view, 3> kMatchKeys = {"calling_ae", "called_ae", "modality"};
constexpr std::array<std::string_view, 3> kStorageKeys = {"fsync", "encrypt", "duplicates"};
constexpr std::array<std::string_view, 2> kDatabaseKeys = {"url", "encryption_key_env"};
constexpr std::array<std::string_view, 4> kHttpKeys = {"enabled", "bind", "port", "tls"};
constexpr std::array<std::string_view, 3> kHttpTlsKeys = {"enabled", "cert_file", "key_file"};
constexpr std::array<std::string_view, 3> kAcmeKeys = {"certbot", "server", "renew_before_days"};
constexpr std::array<std::string_view, 1> kAuditKeys = {"syslog"};
constexpr std::array<std::string_view, 4> kSyslogKeys = {"enabled", "host", "port", "tls"};
constexpr std::array<std::string_view, 1> kLoggingKeys = {"level"};

// ---------------------------------------------------------------------------------------------
// Enumerations: one table per enum, used for parsing, messages and to_string.

template <class E>
using EnumTable = std::span<const std::pair<std::string_view, E>>;

constexpr std::array<std::pair<std::string_view, TlsProfile>, 4> kTlsProfiles = {{
    {"bcp195-rfc8996", TlsProfile::kBcp195Rfc8996},
    {"bcp195-nd", TlsProfile::kBcp195Nd},
    {"bcp195-extended", TlsProfile::kBcp195Extended},
    {"modern", TlsProfile::kModern},
}};
constexpr std::array<std::pair<std::string_view, PeerCertificate>, 3> kPeerCertificates = {{
    {"required", PeerCertificate::kRequired},
    {"optional", PeerCertificate::kOptional},
    {"none", PeerCertificate::kNone},
}};
constexpr std::array<std::pair<std::string_view, DuplicatePolicy>, 3> kDuplicatePolicies = {{
    {"keep-first", DuplicatePolicy::kKeepFirst},
    {"overwrite", DuplicatePolicy::kOverwrite},
    {"reject", DuplicatePolicy::kReject},
}};
constexpr std::array<std::string_view, 2> kTlsVersions = {"1.2", "1.3"};
constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};

template <class E>
std::string_view enum_name(EnumTable<E> table, E value) {
  for (const auto& [name, v] : table) {
    if (v == value) return name;
  }
  return "?";
}

std::string join_names(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small pure helpers.

constexpr std::int64_t kMaxDurationSeconds = 24 * 3600;
constexpr std::uint64_t kMaxPdu = 16 * 1024 * 1024;  // PS3.8 allows 2^32-1; we cap
constexpr std::uint64_t kMinPdu = 4096;
constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(const std::string& parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// Levenshtein distance, ignoring ASCII case.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

/// The candidate closest to `word` when it is close enough to be a likely typo.
template <class Range>
std::optional<std::string_view> closest(std::string_view word, const Range& candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (std::string_view candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  if (best && best_distance <= std::max<std::size_t>(2, word.size() / 3)) return best;
  return std::nullopt;
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

/// Digits only (an optional leading '+'); no sign, hex, octal or separators.
std::optional<std::uint64_t> parse_uint(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

/// "30" (seconds), "30s", "5m", "2h". Values too large to represent saturate so that the range
/// check reports them.
std::optional<std::int64_t> parse_duration(std::string_view text) {
  std::uint64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        unit = 1;
        text.remove_suffix(1);
        break;
      case 'm':
        unit = 60;
        text.remove_suffix(1);
        break;
      case 'h':
        unit = 3600;
        text.remove_suffix(1);
        break;
      default:
        break;
    }
  }
  auto value = parse_uint(text);
  if (!value) return std::nullopt;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (*value > kMax / unit) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(*value * unit);
}

std::string describe_range(std::uint64_t min, std::uint64_t max) {
  if (max >= kU32Max) {
    if (min == 0) return "a non-negative integer";
    if (min == 1) return "a positive integer";
    return fmt::format("an integer >= {}", min);
  }
  return fmt::format("an integer {}-{}", min, max);
}

/// PS3.5 AE VR: 16 bytes at most, default character repertoire, no backslash or control
/// characters, and not only spaces (spaces are insignificant padding).
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

/// Modality (0008,0060) is a CS: upper-case letters, digits, space, underscore, at most 16.
bool valid_modality(std::string_view modality) {
  if (modality.empty() || modality.size() > 16) return false;
  return std::all_of(modality.begin(), modality.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_';
  });
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// "DNS:Host.Example" -> "DNS:Host.Example" with the type spelled canonically (DNS, IP, URI,
/// email; case-insensitive on input); nullopt when the type is unknown or the value empty.
std::optional<std::string> canonical_san(std::string_view text) {
  constexpr std::array<std::string_view, 4> kTypes = {"DNS", "IP", "URI", "email"};
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  const std::string_view type = text.substr(0, colon);
  for (std::string_view t : kTypes) {
    if (t.size() == type.size() && edit_distance(t, type) == 0) {
      return std::string(t) + std::string(text.substr(colon));
    }
  }
  return std::nullopt;
}

/// "aa:bb:…" or "aabb…" (64 hex digits, optional ':' between pairs) -> "AA:BB:…".
std::optional<std::string> canonical_sha256(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c == ':') continue;
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!digit) return std::nullopt;
    hex += (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  if (hex.size() != 64) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) out += ':';
    out += hex.substr(i, 2);
  }
  return out;
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
// Reading.

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
  std::optional<YAML::Node> value(std::string_view key) const {
    for (const auto& [name, node] : entries_) {
      if (name == key) {
        if (node.IsNull()) return std::nullopt;
        return node;
      }
    }
    return std::nullopt;
  }
  bool has(std::string_view key) const { return value(key).has_value(); }

 private:
  std::string path_;
  bool valid_ = true;
  std::vector<std::pair<std::string, YAML::Node>> entries_;
};

class Reader {
 public:
  explicit Reader(fs::path base_dir) : base_dir_(std::move(base_dir)) {}

  void add(std::string path, std::string message) {
    issues_.push_back({std::move(path), std::move(message)});
  }
  std::vector<ConfigIssue>& issues() { return issues_; }

  Config read(const YAML::Node& root);

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
  bool read_duration(const Section& s, std::string_view key, std::int64_t min, Seconds& out);
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

  std::vector<Listener> read_listeners(const Section& root);
  Accept read_accept(const Section& root);
  std::vector<Peer> read_peers(const Section& root);
  std::optional<CertificateMatch> read_certificate_match(const Section& s);
  Tls read_tls(const Section& root);
  Limits read_limits(const Section& root);
  std::vector<Destination> read_destinations(const Section& root);
  std::vector<Route> read_routes(const Section& root);
  Storage read_storage(const Section& root);
  Database read_database(const Section& root);
  Http read_http(const Section& root);
  Acme read_acme(const Section& root);
  Audit read_audit(const Section& root);
  Logging read_logging(const Section& root);
  void cross_check(const Config& config);

  fs::path base_dir_;
  std::vector<ConfigIssue> issues_;
};

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

template <class T>
bool Reader::read_uint(const Section& s, std::string_view key, std::uint64_t min, std::uint64_t max,
                       T& out) {
  const std::string expected = "expected " + describe_range(min, max);
  std::string text;
  if (!scalar(s, key, expected, text)) return false;
  auto value = parse_uint(text);
  if (!value || *value < min || *value > max) {
    add(s.path(key), fmt::format("{}, got `{}`", expected, text));
    return false;
  }
  out = static_cast<T>(*value);
  return true;
}

bool Reader::read_duration(const Section& s, std::string_view key, std::int64_t min, Seconds& out) {
  constexpr std::string_view kExpected =
      "expected a duration: whole seconds (30) or a number with unit s, m or h (\"30s\", "
      "\"5m\", \"2h\")";
  std::string text;
  if (!scalar(s, key, kExpected, text)) return false;
  auto seconds = parse_duration(text);
  if (!seconds) {
    add(s.path(key), fmt::format("{}, got `{}`", kExpected, text));
    return false;
  }
  if (*seconds < min || *seconds > kMaxDurationSeconds) {
    add(s.path(key), fmt::format("must be between {}s and 24h, got `{}`", min, text));
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

bool Reader::read_ae_title(const Section& s, std::string_view key, std::string& out) {
  std::string text;
  if (!scalar(s, key, "expected an AE title (a string of 1-16 characters)", text)) return false;
  if (auto problem = ae_title_problem(text)) {
    add(s.path(key), "AE title " + *problem);
    return false;
  }
  out = std::move(text);
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
    titles.push_back(item.Scalar());
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

// ---------------------------------------------------------------------------------------------
// Sections.

std::vector<Listener> Reader::read_listeners(const Section& root) {
  std::vector<Listener> listeners;
  if (!require(root, "listeners", "is required (a list with at least one listener)")) {
    return listeners;
  }
  auto list = sequence(root, "listeners", "expected a list of listeners");
  if (!list) return listeners;
  if (list->size() == 0) add("listeners", "at least one listener is required");
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("listeners", index++), kListenerKeys);
    if (!s.valid()) continue;
    Listener listener;
    if (require(s, "name")) read_non_empty(s, "name", listener.name);
    read_non_empty(s, "bind", listener.bind);
    if (require(s, "port")) read_port(s, "port", 0, listener.port);
    read_bool(s, "tls", listener.tls);
    listeners.push_back(std::move(listener));
  }
  return listeners;
}

Accept Reader::read_accept(const Section& root) {
  Accept accept;
  Section s(*this, root.value("accept").value_or(YAML::Node()), "accept", kAcceptKeys);
  read_ae_titles(s, "calling_ae_titles", accept.calling_ae_titles);
  read_ae_titles(s, "called_ae_titles", accept.called_ae_titles);
  read_ae_titles(s, "require_tls_for", accept.require_tls_for);
  return accept;
}

std::optional<CertificateMatch> Reader::read_certificate_match(const Section& s) {
  constexpr std::string_view kOne =
      "expected exactly one of subject_cn, san (\"DNS:host\", \"IP:…\", \"URI:…\", "
      "\"email:…\") or sha256";
  int present = 0;
  for (std::string_view key : kCertificateMatchKeys) present += s.has(key) ? 1 : 0;
  if (present != 1) {
    add(s.path(), std::string(kOne));
    return std::nullopt;
  }
  CertificateMatch match;
  std::string text;
  if (s.has("subject_cn")) {
    if (!read_non_empty(s, "subject_cn", text)) return std::nullopt;
    match.kind = CertificateMatch::Kind::kSubjectCn;
    match.value = std::move(text);
  } else if (s.has("san")) {
    if (!read_non_empty(s, "san", text)) return std::nullopt;
    auto san = canonical_san(text);
    if (!san) {
      add(s.path("san"),
          fmt::format("expected TYPE:VALUE with TYPE one of DNS, IP, URI, email, got `{}`", text));
      return std::nullopt;
    }
    match.kind = CertificateMatch::Kind::kSan;
    match.value = std::move(*san);
  } else {
    if (!read_non_empty(s, "sha256", text)) return std::nullopt;
    auto fingerprint = canonical_sha256(text);
    if (!fingerprint) {
      add(s.path("sha256"),
          fmt::format("expected a SHA-256 fingerprint (64 hex digits, ':' between pairs "
                      "allowed, as `openssl x509 -fingerprint -sha256` prints), got `{}`",
                      text));
      return std::nullopt;
    }
    match.kind = CertificateMatch::Kind::kSha256;
    match.value = std::move(*fingerprint);
  }
  return match;
}

std::vector<Peer> Reader::read_peers(const Section& root) {
  std::vector<Peer> peers;
  auto list = sequence(root, "peers", "expected a list of {ae_title, certificate} bindings");
  if (!list) return peers;
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("peers", index++), kPeerKeys);
    if (!s.valid()) continue;
    Peer peer;
    bool ok = require(s, "ae_title") && read_ae_title(s, "ae_title", peer.ae_title);
    if (require(s, "certificate", "is required ({subject_cn: …} | {san: …} | {sha256: …})")) {
      Section c(*this, *s.value("certificate"), s.path("certificate"), kCertificateMatchKeys);
      if (!c.valid()) continue;
      auto match = read_certificate_match(c);
      if (!match) continue;
      peer.certificate = std::move(*match);
    } else {
      ok = false;
    }
    if (ok) peers.push_back(std::move(peer));
  }
  return peers;
}

Tls Reader::read_tls(const Section& root) {
  Tls tls;
  Section s(*this, root.value("tls").value_or(YAML::Node()), "tls", kTlsKeys);
  read_bool(s, "enabled", tls.enabled);
  read_path(s, "cert_file", tls.cert_file);
  read_path(s, "key_file", tls.key_file);
  read_path(s, "ca_file", tls.ca_file);
  read_path(s, "crl_file", tls.crl_file);
  read_bool(s, "no_verify", tls.no_verify);
  read_enum<PeerCertificate>(s, "peer_certificate", kPeerCertificates, tls.peer_certificate);
  read_enum<TlsProfile>(s, "profile", kTlsProfiles, tls.profile);
  read_choice(s, "min_version", kTlsVersions, tls.min_version);
  read_string(s, "ciphers", tls.ciphers);
  if (tls.enabled) {
    constexpr std::string_view kWhy = "when tls.enabled is true";
    check_required_file(s, "cert_file", tls.cert_file, kWhy);
    check_required_file(s, "key_file", tls.key_file, kWhy);
    if (tls.peer_certificate != PeerCertificate::kNone && !tls.no_verify) {
      check_required_file(s, "ca_file", tls.ca_file,
                          "to verify peer certificates (or set peer_certificate: none)");
    } else if (!tls.ca_file.empty()) {
      check_readable(s.path("ca_file"), tls.ca_file);
    }
    if (!tls.crl_file.empty()) check_readable(s.path("crl_file"), tls.crl_file);
  }
  return tls;
}

Limits Reader::read_limits(const Section& root) {
  Limits limits;
  Section s(*this, root.value("limits").value_or(YAML::Node()), "limits", kLimitsKeys);
  read_uint(s, "max_associations", 1, kU32Max, limits.max_associations);
  read_uint(s, "max_pdu_length", kMinPdu, kMaxPdu, limits.max_pdu_length);
  read_uint(s, "max_associate_rq_length", 1, kU32Max, limits.max_associate_rq_length);
  read_duration(s, "artim_timeout", 1, limits.artim_timeout);
  read_duration(s, "idle_timeout", 1, limits.idle_timeout);
  read_duration(s, "shutdown_grace", 0, limits.shutdown_grace);
  return limits;
}

std::vector<Destination> Reader::read_destinations(const Section& root) {
  std::vector<Destination> destinations;
  auto list = sequence(root, "destinations", "expected a list of destinations");
  if (!list) return destinations;
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("destinations", index++), kDestinationKeys);
    if (!s.valid()) continue;
    Destination d;
    if (require(s, "name")) read_non_empty(s, "name", d.name);
    if (require(s, "ae_title")) read_ae_title(s, "ae_title", d.ae_title);
    if (require(s, "host")) read_non_empty(s, "host", d.host);
    if (require(s, "port")) read_port(s, "port", 1, d.port);
    read_ae_title(s, "calling_ae_title", d.calling_ae_title);
    read_bool(s, "tls_enabled", d.tls_enabled);
    read_path(s, "tls_cert_path", d.tls_cert_path);
    read_path(s, "tls_key_path", d.tls_key_path);
    read_path(s, "tls_ca_path", d.tls_ca_path);
    read_bool(s, "verify_hostname", d.verify_hostname);
    read_uint(s, "max_associations", 1, kU32Max, d.max_associations);
    if (d.tls_enabled) {
      check_required_file(s, "tls_ca_path", d.tls_ca_path,
                          "when tls_enabled is true (the CAs that sign the destination)");
      const bool has_cert = !d.tls_cert_path.empty();
      const bool has_key = !d.tls_key_path.empty();
      if (has_cert && !has_key) {
        add(s.path("tls_key_path"), "is required when tls_cert_path is set");
      } else if (has_key && !has_cert) {
        add(s.path("tls_cert_path"), "is required when tls_key_path is set");
      }
      if (has_cert) check_readable(s.path("tls_cert_path"), d.tls_cert_path);
      if (has_key) check_readable(s.path("tls_key_path"), d.tls_key_path);
    }
    destinations.push_back(std::move(d));
  }
  return destinations;
}

std::vector<Route> Reader::read_routes(const Section& root) {
  std::vector<Route> routes;
  auto list = sequence(root, "routes", "expected a list of routes");
  if (!list) return routes;
  std::size_t index = 0;
  for (const auto& item : *list) {
    Section s(*this, item, index_path("routes", index++), kRouteKeys);
    if (!s.valid()) continue;
    Route route;
    if (require(s, "name")) read_non_empty(s, "name", route.name);
    if (auto match_node = s.value("match")) {
      Section m(*this, *match_node, s.path("match"), kMatchKeys);
      if (m.valid()) {
        route.has_match = true;
        std::string calling_ae;
        std::string called_ae;
        if (read_ae_title(m, "calling_ae", calling_ae)) route.match.calling_ae = {calling_ae};
        if (read_ae_title(m, "called_ae", called_ae)) route.match.called_ae = {called_ae};
        std::string modality;
        if (read_string(m, "modality", modality)) {
          if (valid_modality(modality)) {
            route.match.modality = {std::move(modality)};
          } else {
            add(m.path("modality"),
                fmt::format("expected a modality code such as CT or MR (upper case, at most 16 "
                            "characters), got `{}`",
                            modality));
          }
        }
      }
    }
    if (require(s, "destinations", "is required (a list of destination names)")) {
      if (auto names = sequence(s, "destinations", "expected a list of destination names")) {
        if (names->size() == 0) add(s.path("destinations"), "at least one destination is required");
        std::size_t n = 0;
        for (const auto& name : *names) {
          const std::string path = index_path(s.path("destinations"), n++);
          if (!name.IsScalar() || name.Scalar().empty()) {
            add(path, "expected a destination name");
            continue;
          }
          route.destinations.push_back(name.Scalar());
        }
      }
    }
    read_bool(s, "continue", route.continue_matching);
    routes.push_back(std::move(route));
  }
  return routes;
}

Storage Reader::read_storage(const Section& root) {
  Storage storage;
  Section s(*this, root.value("storage").value_or(YAML::Node()), "storage", kStorageKeys);
  read_bool(s, "fsync", storage.fsync);
  read_bool(s, "encrypt", storage.encrypt);
  read_enum<DuplicatePolicy>(s, "duplicates", kDuplicatePolicies, storage.duplicates);
  return storage;
}

Database Reader::read_database(const Section& root) {
  Database db;
  Section s(*this, root.value("database").value_or(YAML::Node()), "database", kDatabaseKeys);
  std::string url;
  if (read_string(s, "url", url)) {
    // The URL may carry a password: never echo it in a message.
    constexpr std::string_view kSqlite = "sqlite://";
    if (url.empty() || url.starts_with("postgresql://") || url.starts_with("postgres://")) {
      db.url = std::move(url);
    } else if (url.starts_with(kSqlite)) {
      if (url.size() == kSqlite.size()) {
        add(s.path("url"), "sqlite:// needs a path, e.g. sqlite:///var/lib/dicom-gw/index.db");
      } else {
        db.url = std::move(url);
      }
    } else {
      add(s.path("url"),
          "expected sqlite:///path/index.db, postgresql://… (or postgres://…), or empty for "
          "index.db in data_dir");
    }
  }
  std::string env;
  if (read_string(s, "encryption_key_env", env)) {
    if (valid_env_name(env)) {
      db.encryption_key_env = std::move(env);
    } else {
      add(s.path("encryption_key_env"),
          fmt::format("expected an environment variable name (letters, digits, _), got `{}`", env));
    }
  }
  return db;
}

Http Reader::read_http(const Section& root) {
  Http http;
  Section s(*this, root.value("http").value_or(YAML::Node()), "http", kHttpKeys);
  read_bool(s, "enabled", http.enabled);
  read_non_empty(s, "bind", http.bind);
  read_port(s, "port", 1, http.port);
  Section t(*this, s.value("tls").value_or(YAML::Node()), s.path("tls"), kHttpTlsKeys);
  read_bool(t, "enabled", http.tls.enabled);
  read_path(t, "cert_file", http.tls.cert_file);
  read_path(t, "key_file", http.tls.key_file);
  if (http.enabled && http.tls.enabled) {
    constexpr std::string_view kWhy = "when http.tls.enabled is true";
    check_required_file(t, "cert_file", http.tls.cert_file, kWhy);
    check_required_file(t, "key_file", http.tls.key_file, kWhy);
  }
  return http;
}

Acme Reader::read_acme(const Section& root) {
  Acme acme;
  Section s(*this, root.value("acme").value_or(YAML::Node()), "acme", kAcmeKeys);
  std::string certbot;
  if (read_non_empty(s, "certbot", certbot)) acme.certbot = certbot;
  std::string server;
  if (read_non_empty(s, "server", server)) {
    if (server.starts_with("https://") || server.starts_with("http://")) {
      acme.server = std::move(server);
    } else {
      add(s.path("server"), fmt::format("expected an https:// URL, got `{}`", server));
    }
  }
  read_uint(s, "renew_before_days", 1, 365, acme.renew_before_days);
  return acme;
}

Audit Reader::read_audit(const Section& root) {
  Audit audit;
  Section s(*this, root.value("audit").value_or(YAML::Node()), "audit", kAuditKeys);
  Section sys(*this, s.value("syslog").value_or(YAML::Node()), s.path("syslog"), kSyslogKeys);
  read_bool(sys, "enabled", audit.syslog.enabled);
  read_string(sys, "host", audit.syslog.host);
  read_port(sys, "port", 1, audit.syslog.port);
  read_bool(sys, "tls", audit.syslog.tls);
  if (audit.syslog.enabled && audit.syslog.host.empty() && !sys.has("host")) {
    add(sys.path("host"), "is required when audit.syslog.enabled is true");
  }
  return audit;
}

Logging Reader::read_logging(const Section& root) {
  Logging logging;
  Section s(*this, root.value("logging").value_or(YAML::Node()), "logging", kLoggingKeys);
  read_choice(s, "level", kLogLevels, logging.level);
  return logging;
}

/// Rules that span sections: unique names, TLS listeners need the tls section, routes name
/// existing destinations.
void Reader::cross_check(const Config& config) {
  std::map<std::string, std::size_t> listener_names;
  std::map<std::pair<std::string, std::uint16_t>, std::size_t> listener_addresses;
  for (std::size_t i = 0; i < config.listeners.size(); ++i) {
    const Listener& l = config.listeners[i];
    const std::string path = index_path("listeners", i);
    if (!l.name.empty()) {
      auto [it, inserted] = listener_names.emplace(l.name, i);
      if (!inserted) {
        add(path + ".name",
            fmt::format("duplicate listener name `{}` (also listeners[{}])", l.name, it->second));
      }
    }
    if (l.port != 0) {
      auto [it, inserted] = listener_addresses.emplace(std::pair(l.bind, l.port), i);
      if (!inserted) {
        add(path + ".port",
            fmt::format("{}:{} is already used by listeners[{}]", l.bind, l.port, it->second));
      }
    }
    if (l.tls && !config.tls.enabled) {
      add(path + ".tls", "a TLS listener requires tls.enabled: true (and its certificate files)");
    }
  }

  const bool any_tls_listener = std::any_of(config.listeners.begin(), config.listeners.end(),
                                            [](const Listener& l) { return l.tls; });
  if (!config.peers.empty() && !any_tls_listener) {
    add("peers",
        "AE titles bound to certificates can only call over TLS: add a listener with tls: true");
  }
  if (!config.peers.empty() && config.tls.peer_certificate == PeerCertificate::kNone) {
    add("peers", "needs client certificates: tls.peer_certificate must not be `none`");
  }

  std::map<std::string, std::size_t> destination_names;
  for (std::size_t i = 0; i < config.destinations.size(); ++i) {
    const Destination& d = config.destinations[i];
    if (d.name.empty()) continue;
    auto [it, inserted] = destination_names.emplace(d.name, i);
    if (!inserted) {
      add(index_path("destinations", i) + ".name",
          fmt::format("duplicate destination name `{}` (also destinations[{}])", d.name,
                      it->second));
    }
  }

  std::map<std::string, std::size_t> route_names;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const Route& r = config.routes[i];
    const std::string path = index_path("routes", i);
    if (!r.name.empty()) {
      auto [it, inserted] = route_names.emplace(r.name, i);
      if (!inserted) {
        add(path + ".name",
            fmt::format("duplicate route name `{}` (also routes[{}])", r.name, it->second));
      }
    }
    for (std::size_t j = 0; j < r.destinations.size(); ++j) {
      const std::string& name = r.destinations[j];
      if (destination_names.contains(name)) continue;
      std::string message = fmt::format("unknown destination `{}`", name);
      std::vector<std::string_view> known;
      for (const auto& entry : destination_names) known.push_back(entry.first);
      if (auto best = closest(name, known)) message += fmt::format(" (did you mean `{}`?)", *best);
      add(index_path(path + ".destinations", j), std::move(message));
    }
  }
}

Config Reader::read(const YAML::Node& root) {
  Config config;
  Section s(*this, root, "", kTopKeys);
  if (!s.valid()) return config;
  read_ae_title(s, "ae_title", config.ae_title);
  if (require(s, "data_dir")) {
    read_path(s, "data_dir", config.data_dir);
    if (config.data_dir.empty()) add("data_dir", "must not be empty");
  }
  config.listeners = read_listeners(s);
  config.accept = read_accept(s);
  config.peers = read_peers(s);
  config.tls = read_tls(s);
  config.limits = read_limits(s);
  config.destinations = read_destinations(s);
  config.routes = read_routes(s);
  config.storage = read_storage(s);
  config.database = read_database(s);
  config.http = read_http(s);
  config.acme = read_acme(s);
  config.audit = read_audit(s);
  config.logging = read_logging(s);
  cross_check(config);
  return config;
}

core::Result<Config> fail(std::vector<ConfigIssue> found, std::vector<ConfigIssue>* issues) {
  std::string message = format_issues(found);
  if (issues != nullptr) *issues = std::move(found);
  return core::make_error(core::ErrorCode::kConfig, std::move(message));
}

}  // namespace

std::string_view to_string(TlsProfile profile) {
  return enum_name<TlsProfile>(kTlsProfiles, profile);
}
std::string_view to_string(PeerCertificate policy) {
  return enum_name<PeerCertificate>(kPeerCertificates, policy);
}
std::string_view to_string(DuplicatePolicy policy) {
  return enum_name<DuplicatePolicy>(kDuplicatePolicies, policy);
}

core::Result<Config> parse_config(const std::string& yaml_text, const fs::path& base_dir,
                                  std::vector<ConfigIssue>* issues) {
  if (issues != nullptr) issues->clear();
  Reader reader(base_dir);
  Config config;
  // yaml-cpp reports through exceptions; none may leave this function.
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(yaml_text);
    if (documents.size() > 1) {
      reader.add("", "expected a single YAML document, found several (`---`)");
    } else {
      config = reader.read(documents.empty() ? YAML::Node() : documents.front());
    }
  } catch (const YAML::ParserException& e) {
    reader.add("", fmt::format("YAML syntax error at line {}, column {}: {}", e.mark.line + 1,
                               e.mark.column + 1, e.msg));
  } catch (const YAML::Exception& e) {
    reader.add("", fmt::format("YAML error: {}", e.what()));
  } catch (const std::exception& e) {
    reader.add("", fmt::format("cannot read the configuration: {}", e.what()));
  }
  if (!reader.issues().empty()) return fail(std::move(reader.issues()), issues);
  return config;
}

core::Result<Config> load_config(const fs::path& file, std::vector<ConfigIssue>* issues) {
  if (issues != nullptr) issues->clear();
  std::error_code ec;
  fs::path absolute = fs::absolute(file, ec);
  if (ec) absolute = file;
  auto cannot_read = [&](const std::string& reason) {
    return fail({{"", fmt::format("config: cannot read {}: {}", file.string(), reason)}}, issues);
  };
  if (fs::is_directory(absolute, ec)) {
    return cannot_read(std::generic_category().message(EISDIR));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> handle(std::fopen(absolute.c_str(), "rb"),
                                                         &std::fclose);
  if (!handle) return cannot_read(std::generic_category().message(errno));
  std::string text;
  std::array<char, 8192> buffer{};
  for (;;) {
    const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), handle.get());
    text.append(buffer.data(), n);
    if (n < buffer.size()) break;
  }
  if (std::ferror(handle.get()) != 0) return cannot_read(std::generic_category().message(EIO));

  auto config = parse_config(text, absolute.parent_path(), issues);
  if (!config.ok()) return config;
  config->source_path = absolute.lexically_normal();
  return config;
}

}  // namespace gw::config
