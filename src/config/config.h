#pragma once
/// The gateway's configuration: YAML (default /etc/dicom-gw/config.yaml) -> a typed, validated
/// Config. Loading reports *every* problem at once, each with its key path
/// ("listeners[1].port: must be 1-65535"), and refuses unknown keys. Key names follow
/// shared DESIGN.md and the user's seed documents; see docs/config.md.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gw::config {

/// The range of limits.max_pdu_length and of the SCU tools' --max-pdu (PS3.8 allows up to
/// 2^32-1, and 0 for "unlimited"; we cap, so a peer cannot make us allocate more).
inline constexpr std::uint32_t kMinMaxPduLength = 4096;
inline constexpr std::uint32_t kMaxMaxPduLength = 16 * 1024 * 1024;

using Seconds = std::chrono::seconds;

struct Listener {
  std::string name;
  std::string bind = "0.0.0.0";
  std::uint16_t port = 0;  ///< 0 = ephemeral (tests); the bound port is logged and in /status
  bool tls = false;
};

struct Accept {
  std::vector<std::string> calling_ae_titles;  ///< allow-list; empty = anyone
  std::vector<std::string> called_ae_titles;   ///< empty = any called AE title is accepted
  std::vector<std::string> require_tls_for;    ///< AE titles that must come over TLS
};

enum class PeerCertificate { kRequired, kOptional, kNone };

/// How a `peers:` entry recognizes a certificate: exactly one of subject_cn, san, sha256.
struct CertificateMatch {
  enum class Kind { kSubjectCn, kSan, kSha256 };
  Kind kind = Kind::kSubjectCn;
  /// subject_cn: as written. san: "<TYPE>:<value>" with TYPE one of DNS, IP, URI, email
  /// (canonical spelling). sha256: upper-case hex pairs joined by ':' (95 characters).
  std::string value;
};

/// An AE title bound to a client certificate (`peers:`). A certificate that matches some entry
/// may only call with the AE titles bound to it; an AE title that appears here may only call
/// over TLS with a matching certificate.
struct Peer {
  std::string ae_title;
  CertificateMatch certificate;
};
enum class TlsProfile { kBcp195Rfc8996, kBcp195Nd, kBcp195Extended, kModern };

struct Tls {
  bool enabled = false;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path ca_file;
  std::filesystem::path crl_file;  ///< optional
  bool no_verify = false;
  PeerCertificate peer_certificate = PeerCertificate::kRequired;
  TlsProfile profile = TlsProfile::kBcp195Rfc8996;
  std::string min_version = "1.2";  ///< "1.2" | "1.3"
  std::string ciphers;              ///< optional TLS 1.2 cipher list override
};

/// Association and resource limits (not in the seeds; every key has a default).
struct Limits {
  std::uint32_t max_associations = 64;  ///< over it: A-ASSOCIATE-RJ local limit exceeded
  /// Connections beyond the associations (TLS handshake, A-ASSOCIATE-RQ not read yet, being
  /// rejected): over max_associations + this, a new connection is closed at once.
  std::uint32_t max_pending_connections = 64;
  std::uint32_t max_pdu_length = 262144;  ///< our receive limit, advertised in A-ASSOCIATE-AC
  std::uint32_t max_associate_rq_length = 65536;  ///< largest A-ASSOCIATE-RQ PDU accepted
  /// Stores one association may have in progress when its peer proposes an asynchronous
  /// operations window (PS3.7 D.3.3.3). 1: answer every request before reading the next.
  std::uint32_t max_async_operations = 16;
  Seconds artim_timeout{30};   ///< for the A-ASSOCIATE-RQ and for the close after release/abort
  Seconds idle_timeout{300};   ///< no PDU from the peer for this long -> A-ABORT
  Seconds shutdown_grace{30};  ///< SIGTERM: time to finish in-flight instances
};

/// When and how often a failed delivery is tried again (top-level `retry:`; a destination's own
/// `retry:` overrides any of these keys for that destination).
struct Retry {
  std::uint32_t max_attempts = 20;  ///< attempts (claims) before a transient failure is dead
  Seconds max_age{72 * 3600};       ///< since the row was queued; older transient failures: dead
  Seconds initial_backoff{5};       ///< first wait; doubles each attempt, with jitter
  Seconds max_backoff{600};         ///< cap on one wait
};

/// How forwarders behave (top-level `forwarding:`; not in the seeds, every key has a default).
struct Forwarding {
  Seconds association_idle_timeout{10};        ///< close a reused association idle this long
  Seconds lease{300};                          ///< a claimed row's lease; renewed while working
  std::uint32_t circuit_breaker_failures = 5;  ///< consecutive transient failures -> pause
  Seconds probe_interval{30};                  ///< while paused: C-ECHO the destination this often
  std::uint32_t batch = 32;                    ///< rows claimed at a time by one association
};

struct Destination {
  std::string name;
  std::string ae_title;
  std::string host;
  std::uint16_t port = 104;
  std::string calling_ae_title;  ///< empty = the gateway's ae_title
  bool tls_enabled = false;
  std::filesystem::path tls_cert_path;
  std::filesystem::path tls_key_path;
  std::filesystem::path tls_ca_path;
  bool verify_hostname = true;
  std::uint32_t max_associations = 2;
  /// C-STOREs one association may have outstanding: > 1 proposes an asynchronous operations
  /// window (PS3.7 D.3.3.3); the destination may grant fewer, or none. 1 proposes nothing.
  std::uint32_t max_async_operations = 1;
  TlsProfile tls_profile = TlsProfile::kBcp195Rfc8996;  ///< YAML `tls_profile`
  Retry retry;  ///< the top-level `retry:` with this destination's overrides applied
};

/// A condition on one data element, named by its DICOM keyword (YAML: `tags: {Keyword: {...}}`).
struct TagCondition {
  enum class Op { kEquals, kRegex, kExists };
  std::string keyword;  ///< "StationName" (resolved against DCMTK's dictionary by routing)
  Op op = Op::kEquals;
  std::string value;   ///< kEquals: the value; kRegex: ECMAScript pattern (whole value must match)
  bool exists = true;  ///< kExists: true = present (even empty), false = absent
};

/// Every non-empty field must hold (AND); a list field holds when any of its values matches
/// (OR). YAML accepts a scalar or a list for each list field.
struct RouteMatch {
  std::vector<std::string> calling_ae;
  std::vector<std::string> called_ae;
  std::vector<std::string> listener;  ///< listener names
  std::vector<std::string> source;    ///< IPv4/IPv6 addresses or CIDR blocks ("10.1.0.0/16")
  std::vector<std::string> modality;
  std::vector<std::string> sop_class;  ///< SOP Class UIDs
  std::vector<TagCondition> tags;
};

struct Route {
  std::string name;
  RouteMatch match;  ///< empty = match everything
  bool has_match = false;
  std::vector<std::string> destinations;
  bool continue_matching = false;  ///< YAML key `continue`
  bool is_default = false;  ///< YAML `default: true`: applies only when no other route matched
  /// Not from the file: an API destination's `match` (ADR 005). Tried after every other route,
  /// whatever matched before, and never counts as a match for the default route, so it adds a
  /// destination without changing where the file's routes send anything.
  bool independent = false;
};

enum class DuplicatePolicy { kKeepFirst, kOverwrite, kReject };

struct Storage {
  bool fsync = true;
  bool encrypt = false;
  DuplicatePolicy duplicates = DuplicatePolicy::kKeepFirst;
  /// Free space the data directory's file system keeps: below it new instances are refused
  /// (0xA700) so that the index, the queue, the audit trail and the logs can still be written
  /// while the queue drains. 0 = no reserve (the disk may fill up completely).
  std::uint64_t min_free_mb = 1024;
};

struct Database {
  std::string url;  ///< "" = sqlite index.db in data_dir; "sqlite:///path"; "postgresql://…"
  /// The master key for encryption at rest (ADR 010): this environment variable, else
  /// encryption_key_file; during a rotation the previous key from <env>_PREVIOUS, else
  /// previous_encryption_key_file. Key files must be owner-only (0400/0600).
  std::string encryption_key_env = "DICOM_GW_DB_ENCRYPTION_KEY";
  std::filesystem::path encryption_key_file;
  std::filesystem::path previous_encryption_key_file;
  /// PostgreSQL: a file whose first line is the password (overrides the URL's and PGPASSWORD).
  std::filesystem::path password_file;
  std::size_t pool_size = 8;  ///< PostgreSQL: connections at most, 1-64
};

struct HttpTls {
  bool enabled = false;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

struct Http {
  bool enabled = true;
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8080;
  HttpTls tls;
  /// Browser origins allowed to call the API from another site (CORS), exact and lower-case:
  /// "https://admin.example.org[:port]". Empty (the default): no CORS headers at all.
  std::vector<std::string> cors_origins;
  /// Reverse proxies (IP addresses or CIDR blocks, validated) whose X-Forwarded-For names the
  /// client for rate limiting and audit rows. Empty (the default): the TCP peer is the client.
  std::vector<std::string> trusted_proxies;
};

struct Acme {
  std::filesystem::path certbot = "/usr/bin/certbot";
  std::string server = "https://acme-v02.api.letsencrypt.org/directory";
  int renew_before_days = 30;
};

/// What a syslog message carries: the audit row as JSON (a SIEM, a log archive) or a DICOM
/// PS3.15 A.5 audit message (an IHE ATNA audit record repository, ITI-20).
enum class SyslogFormat { kJson, kDicom };

/// Audit export to a syslog collector (audit/syslog_export.h). The TLS files default to the
/// top-level `tls:` ones; the profile is always tls.profile (min_version, ciphers).
struct Syslog {
  bool enabled = false;
  std::string host;
  std::uint16_t port = 6514;
  bool tls = true;
  std::filesystem::path ca_file;    ///< trust for the collector; "" = tls.ca_file
  std::filesystem::path cert_file;  ///< our client certificate; "" = tls.cert_file
  std::filesystem::path key_file;   ///< with cert_file; "" = tls.key_file
  SyslogFormat format = SyslogFormat::kJson;
  std::string audit_source_id;     ///< DICOM format: AuditSourceID; "" = this host's name
  std::string enterprise_site_id;  ///< DICOM format: AuditEnterpriseSiteID; "" = left out
};

struct Audit {
  Syslog syslog;
};

struct Logging {
  std::string level = "info";  ///< trace | debug | info | warn | error | off
};

struct Config {
  std::string ae_title = "DICOM_GW";
  std::filesystem::path data_dir;  ///< required
  /// Several nodes on one data_dir and database: this node's name ([A-Za-z0-9._-]{1,64}), its
  /// own spool/ and storage/ subdirectories and its outbox lease owner. "" = the only node.
  std::string node_id;
  std::vector<Listener> listeners;  ///< required, at least one
  Accept accept;
  std::vector<Peer> peers;  ///< AE title <-> certificate bindings
  Tls tls;
  Limits limits;
  std::vector<Destination> destinations;
  std::vector<Route> routes;
  Retry retry;
  Forwarding forwarding;
  Storage storage;
  Database database;
  Http http;
  Acme acme;
  Audit audit;
  Logging logging;
  std::filesystem::path source_path;  ///< the file it was loaded from (for reload)
};

/// One problem with its key path ("listeners[0].port") and a plain-words message.
struct ConfigIssue {
  std::string path;
  std::string message;
};

/// Canonical YAML spellings ("bcp195-rfc8996", "required", "keep-first"), as docs/config.md
/// lists them; for logs, /status and `config check` output.
std::string_view to_string(TlsProfile profile);
std::string_view to_string(PeerCertificate policy);
std::string_view to_string(DuplicatePolicy policy);

/// Whether two destination names are the same for the gateway (ASCII, without regard to case:
/// outbox rows and URLs must never be ambiguous).
bool same_destination_name(std::string_view a, std::string_view b);

/// A destination on its own, outside `destinations:` (the REST API's, stored in the index): the
/// keys of a `destinations:` entry plus an optional `match` with a route's grammar.
struct StandaloneDestination {
  Destination destination;
  std::optional<RouteMatch> match;  ///< nullopt: no `match` key (receives nothing by routing)
};

/// Checks one destination exactly as load_config checks an entry of `destinations:`, and its
/// `match` as a route's (tag keywords are resolved later, by queue::RoutingTable::compile).
/// `text`: a YAML or JSON mapping. `context` gives the listener names `match.listener` may use
/// and the `retry:` defaults; relative paths resolve against `base_dir`. Issue paths start
/// with `path` ("" gives "port", "match.calling_ae[0]"). Names are not checked for clashes.
core::Result<StandaloneDestination> parse_destination(const std::string& text,
                                                      const Config& context,
                                                      const std::filesystem::path& base_dir,
                                                      const std::string& path,
                                                      std::vector<ConfigIssue>* issues = nullptr);

/// Loads and validates; on failure the error message lists every issue, one per line, and
/// `issues` (when given) receives them individually.
core::Result<Config> load_config(const std::filesystem::path& file,
                                 std::vector<ConfigIssue>* issues = nullptr);
/// Same, from YAML text (relative paths resolve against `base_dir`).
core::Result<Config> parse_config(const std::string& yaml_text,
                                  const std::filesystem::path& base_dir,
                                  std::vector<ConfigIssue>* issues = nullptr);

}  // namespace gw::config
