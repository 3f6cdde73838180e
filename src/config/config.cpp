#include "config/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <system_error>
#include <utility>

#include "config/ip_network.h"
#include "config/reader.h"
#include "config/suggest.h"

namespace gw::config {
namespace detail {
namespace {

// ---------------------------------------------------------------------------------------------
// Allowed keys per section (the order docs/config.md uses). Destinations, routes, retry and
// forwarding: routing_config.cpp.

constexpr std::array<std::string_view, 18> kTopKeys = {
    "ae_title", "data_dir", "node_id",      "listeners", "accept", "peers",
    "tls",      "limits",   "destinations", "routes",    "retry",  "forwarding",
    "storage",  "database", "http",         "acme",      "audit",  "logging"};
constexpr std::array<std::string_view, 4> kListenerKeys = {"name", "bind", "port", "tls"};
constexpr std::array<std::string_view, 3> kAcceptKeys = {"calling_ae_titles", "called_ae_titles",
                                                         "require_tls_for"};
constexpr std::array<std::string_view, 10> kTlsKeys = {
    "enabled",   "cert_file",        "key_file", "ca_file",     "crl_file",
    "no_verify", "peer_certificate", "profile",  "min_version", "ciphers"};
constexpr std::array<std::string_view, 8> kLimitsKeys = {
    "max_associations",     "max_pending_connections", "max_pdu_length", "max_associate_rq_length",
    "max_async_operations", "artim_timeout",           "idle_timeout",   "shutdown_grace"};
constexpr std::array<std::string_view, 4> kStorageKeys = {"fsync", "encrypt", "duplicates",
                                                          "min_free_mb"};
constexpr std::array<std::string_view, 6> kDatabaseKeys = {
    "url",       "encryption_key_env",           "encryption_key_file",
    "pool_size", "previous_encryption_key_file", "password_file"};
constexpr std::array<std::string_view, 6> kHttpKeys = {
    "enabled", "bind", "port", "tls", "cors_origins", "trusted_proxies"};
constexpr std::array<std::string_view, 3> kHttpTlsKeys = {"enabled", "cert_file", "key_file"};
constexpr std::array<std::string_view, 3> kAcmeKeys = {"certbot", "server", "renew_before_days"};
constexpr std::array<std::string_view, 1> kAuditKeys = {"syslog"};
constexpr std::array<std::string_view, 10> kSyslogKeys = {"enabled",
                                                          "host",
                                                          "port",
                                                          "tls",
                                                          "ca_file",
                                                          "cert_file",
                                                          "key_file",
                                                          "format",
                                                          "audit_source_id",
                                                          "enterprise_site_id"};
constexpr std::array<std::pair<std::string_view, SyslogFormat>, 2> kSyslogFormats = {{
    {"json", SyslogFormat::kJson},
    {"dicom", SyslogFormat::kDicom},
}};
constexpr std::array<std::string_view, 1> kLoggingKeys = {"level"};

// ---------------------------------------------------------------------------------------------
// Enumerations: one table per enum, used for parsing, messages and to_string.

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

// ---------------------------------------------------------------------------------------------
// Small pure helpers.

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// What a listener may bind: an IPv4 or IPv6 literal (an IPv6 zone, "fe80::1%eth0", is left
/// to the listener), as dicom::Listener::create parses it.
bool is_ip_address(const std::string& text) {
  std::array<unsigned char, sizeof(in6_addr)> buf{};
  if (::inet_pton(AF_INET, text.c_str(), buf.data()) == 1) return true;
  const std::string address = text.substr(0, text.find('%'));
  return ::inet_pton(AF_INET6, address.c_str(), buf.data()) == 1;
}

/// A browser origin, lower-cased: http(s)://host[:port], host a DNS name, IPv4 or [IPv6].
std::optional<std::string> canonical_origin(std::string_view text) {
  std::string origin(text);
  std::transform(origin.begin(), origin.end(), origin.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::regex kOrigin(
      R"(https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?)");
  if (!std::regex_match(origin, kOrigin)) return std::nullopt;
  return origin;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Core sections.

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
    if (read_non_empty(s, "bind", listener.bind) && !is_ip_address(listener.bind)) {
      add(s.path("bind"), fmt::format("expected an IP address such as 0.0.0.0, :: or 127.0.0.1 "
                                      "(not a host name), got `{}`",
                                      listener.bind));
    }
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
  read_uint(s, "max_pending_connections", 1, kU32Max, limits.max_pending_connections);
  read_uint(s, "max_pdu_length", kMinMaxPduLength, kMaxMaxPduLength, limits.max_pdu_length);
  read_uint(s, "max_associate_rq_length", 1, kU32Max, limits.max_associate_rq_length);
  read_uint(s, "max_async_operations", 1, kMaxAsyncOperations, limits.max_async_operations);
  read_duration(s, "artim_timeout", 1, limits.artim_timeout);
  read_duration(s, "idle_timeout", 1, limits.idle_timeout);
  read_duration(s, "shutdown_grace", 0, limits.shutdown_grace);
  return limits;
}

Storage Reader::read_storage(const Section& root) {
  Storage storage;
  Section s(*this, root.value("storage").value_or(YAML::Node()), "storage", kStorageKeys);
  read_bool(s, "fsync", storage.fsync);
  read_bool(s, "encrypt", storage.encrypt);
  read_enum<DuplicatePolicy>(s, "duplicates", kDuplicatePolicies, storage.duplicates);
  read_uint(s, "min_free_mb", 0, std::uint64_t{1} << 30, storage.min_free_mb);
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
    // Never echo the value: an operator may have pasted the key itself here. Characters a name
    // cannot hold, or 32 or more characters unless upper case with _ (a hex or base64url key
    // passes as a name), look like a key.
    const bool name_chars = std::all_of(env.begin(), env.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    const bool long_not_a_name =
        env.size() >= 32 &&
        (env.find('_') == std::string::npos ||
         std::any_of(env.begin(), env.end(), [](char c) { return c >= 'a' && c <= 'z'; }));
    if (!name_chars || long_not_a_name) {
      add(s.path("encryption_key_env"),
          "this looks like a key rather than an environment variable name (the value is not "
          "repeated here): put the key in the environment variable (or in "
          "database.encryption_key_file) and give the variable's name here, e.g. "
          "DICOM_GW_DB_ENCRYPTION_KEY");
    } else if (!valid_env_name(env)) {
      add(s.path("encryption_key_env"),
          "expected an environment variable name (letters, digits, _, not starting with a digit)");
    } else {
      db.encryption_key_env = std::move(env);
    }
  }
  // Encryption keys from files (ADR 010); the permissions are checked when they are read.
  if (read_path(s, "encryption_key_file", db.encryption_key_file)) {
    check_readable(s.path("encryption_key_file"), db.encryption_key_file);
  }
  if (read_path(s, "previous_encryption_key_file", db.previous_encryption_key_file)) {
    check_readable(s.path("previous_encryption_key_file"), db.previous_encryption_key_file);
  }
  // PostgreSQL: the password from a file (read at start, never logged) and the pool size.
  if (read_path(s, "password_file", db.password_file)) {
    check_readable(s.path("password_file"), db.password_file);
  }
  read_uint(s, "pool_size", 1, 64, db.pool_size);
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
  if (auto origins = sequence(s, "cors_origins", "expected a list of origins")) {
    for (std::size_t i = 0; i < origins->size(); ++i) {
      const std::string path = fmt::format("{}[{}]", s.path("cors_origins"), i);
      const YAML::Node item = (*origins)[i];
      auto origin = item.IsScalar() ? canonical_origin(item.Scalar()) : std::nullopt;
      if (!origin) {
        add(path,
            "expected an origin such as `https://admin.example.org` or "
            "`http://127.0.0.1:3000` (scheme, host, optional port; no path, no wildcard)");
        continue;
      }
      http.cors_origins.push_back(std::move(*origin));
    }
  }
  if (auto proxies =
          sequence(s, "trusted_proxies", "expected a list of IP addresses or CIDR blocks")) {
    for (std::size_t i = 0; i < proxies->size(); ++i) {
      const std::string path = fmt::format("{}[{}]", s.path("trusted_proxies"), i);
      const YAML::Node item = (*proxies)[i];
      if (!item.IsScalar()) {
        add(path, "expected an IP address or CIDR block (127.0.0.1, 10.0.0.0/8, ::1)");
        continue;
      }
      if (auto network = parse_ip_network(item.Scalar()); !network.ok()) {
        add(path, network.error().message);
        continue;
      }
      http.trusted_proxies.push_back(item.Scalar());
    }
  }
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
  read_path(sys, "ca_file", audit.syslog.ca_file);
  read_path(sys, "cert_file", audit.syslog.cert_file);
  read_path(sys, "key_file", audit.syslog.key_file);
  read_enum<SyslogFormat>(sys, "format", kSyslogFormats, audit.syslog.format);
  read_string(sys, "audit_source_id", audit.syslog.audit_source_id);
  read_string(sys, "enterprise_site_id", audit.syslog.enterprise_site_id);
  if (audit.syslog.enabled && audit.syslog.host.empty()) {
    add(sys.path("host"), "is required when audit.syslog.enabled is true");
  }
  if (audit.syslog.enabled && audit.syslog.tls) {
    // Whether a CA is set at all (here or in tls:) is checked in cross_check().
    if (!audit.syslog.ca_file.empty()) check_readable(sys.path("ca_file"), audit.syslog.ca_file);
    if (audit.syslog.cert_file.empty() != audit.syslog.key_file.empty()) {
      add(sys.path(audit.syslog.cert_file.empty() ? "cert_file" : "key_file"),
          "cert_file and key_file go together (or leave both out to use tls.cert_file/key_file)");
    } else if (!audit.syslog.cert_file.empty()) {
      check_readable(sys.path("cert_file"), audit.syslog.cert_file);
      check_readable(sys.path("key_file"), audit.syslog.key_file);
    }
  }
  return audit;
}

Logging Reader::read_logging(const Section& root) {
  Logging logging;
  Section s(*this, root.value("logging").value_or(YAML::Node()), "logging", kLoggingKeys);
  read_choice(s, "level", kLogLevels, logging.level);
  return logging;
}

void Reader::read_node_id(const Section& root, std::string& out) {
  std::string id;
  if (!read_string(root, "node_id", id)) return;
  const bool valid_chars = std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
  if (id.size() > 64 || !valid_chars || id == "." || id == "..") {
    add("node_id", "must be 1-64 characters of A-Z a-z 0-9 . _ - (not \".\" or \"..\"), or \"\"");
    return;
  }
  out = std::move(id);
}

/// Rules that span sections: unique listener names and addresses, TLS listeners need the tls
/// section, peers need a TLS listener. Destinations and routes: cross_check_routing.
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
  if (!config.peers.empty() && config.tls.no_verify) {
    add("peers",
        "needs verified client certificates: with tls.no_verify: true any self-signed "
        "certificate could claim a bound name");
  }
  const Syslog& sys = config.audit.syslog;
  if (sys.enabled && sys.tls && sys.ca_file.empty() && config.tls.ca_file.empty()) {
    add("audit.syslog.ca_file",
        "is required when audit.syslog.tls is true and tls.ca_file is not set (the CA bundle "
        "that signs the collector's certificate)");
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
  read_node_id(s, config.node_id);
  config.listeners = read_listeners(s);
  config.accept = read_accept(s);
  config.peers = read_peers(s);
  config.tls = read_tls(s);
  config.limits = read_limits(s);
  // Read before the destinations: each destination's `retry:` overrides these keys, wherever
  // `retry:` appears in the file.
  config.retry = read_retry(s);
  config.destinations = read_destinations(s, config.retry);
  config.routes = read_routes(s, config.listeners);
  config.forwarding = read_forwarding(s);
  config.storage = read_storage(s);
  config.database = read_database(s);
  config.http = read_http(s);
  config.acme = read_acme(s);
  config.audit = read_audit(s);
  config.logging = read_logging(s);
  cross_check(config);
  cross_check_routing(config);
  return config;
}

}  // namespace detail

namespace {

namespace fs = std::filesystem;
using detail::format_issues;

core::Result<Config> fail(std::vector<ConfigIssue> found, std::vector<ConfigIssue>* issues) {
  std::string message = format_issues(found);
  if (issues != nullptr) *issues = std::move(found);
  return core::make_error(core::ErrorCode::kConfig, std::move(message));
}

}  // namespace

std::string_view to_string(TlsProfile profile) {
  return detail::enum_name<TlsProfile>(detail::kTlsProfiles, profile);
}
std::string_view to_string(PeerCertificate policy) {
  return detail::enum_name<PeerCertificate>(detail::kPeerCertificates, policy);
}
bool same_destination_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view to_string(DuplicatePolicy policy) {
  return detail::enum_name<DuplicatePolicy>(detail::kDuplicatePolicies, policy);
}

core::Result<Config> parse_config(const std::string& yaml_text, const fs::path& base_dir,
                                  std::vector<ConfigIssue>* issues) {
  if (issues != nullptr) issues->clear();
  detail::Reader reader(base_dir);
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

core::Result<StandaloneDestination> parse_destination(const std::string& text,
                                                      const Config& context,
                                                      const fs::path& base_dir,
                                                      const std::string& path,
                                                      std::vector<ConfigIssue>* issues) {
  if (issues != nullptr) issues->clear();
  detail::Reader reader(base_dir);
  StandaloneDestination out;
  try {
    out = reader.read_standalone_destination(YAML::Load(text), path, context);
  } catch (const YAML::ParserException& e) {
    reader.add(path, fmt::format("syntax error at line {}, column {}: {}", e.mark.line + 1,
                                 e.mark.column + 1, e.msg));
  } catch (const std::exception& e) {
    reader.add(path, fmt::format("cannot read the destination: {}", e.what()));
  }
  if (!reader.issues().empty()) {
    std::string message = format_issues(reader.issues());
    if (issues != nullptr) *issues = std::move(reader.issues());
    return core::make_error(core::ErrorCode::kConfig, std::move(message));
  }
  return out;
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
