#pragma once
/// What the REST API needs from the running gateway, implemented by the App (the composition
/// root): a snapshot of its state for /status and /metrics, and a nudge for the forwarders when
/// the API made queued rows due. Plain data only, so gw_http does not depend on the DICOM
/// listeners or the forwarders, and tests can supply a fake.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "index/auth.h"
#include "storage/content_reader.h"

namespace gw::http {

struct ListenerSnapshot {
  std::string name;
  std::string bind;
  std::uint16_t port = 0;
  bool tls = false;
};

/// The DICOM TLS listeners' own certificate (what a peer sees).
struct CertificateSnapshot {
  std::string subject;
  std::string serial;
  std::string not_after;  ///< ISO 8601
  std::int64_t days_until_expiry = 0;
};

/// Counters since the process started (monotonic).
struct ScpSnapshot {
  std::uint64_t active_associations = 0;
  std::uint64_t associations_accepted = 0;
  std::uint64_t associations_rejected = 0;
  std::uint64_t associations_rejected_identity = 0;
  std::uint64_t associations_aborted = 0;
  std::uint64_t connections_refused = 0;  ///< closed at accept: too many connections open
  std::uint64_t echoes = 0;
  std::uint64_t stores_ok = 0;
  std::uint64_t stores_failed = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t tls_handshake_failures = 0;
  /// (label, count) for every label, zeros included: dicom::RejectCategory and
  /// tls::HandshakeReason spelled as the metrics' `reason` label.
  std::vector<std::pair<std::string, std::uint64_t>> rejected_by_reason;
  std::vector<std::pair<std::string, std::uint64_t>> tls_failures_by_reason;
};

/// The background audit writer (DICOM activity rows, ADR 006).
struct AuditSnapshot {
  std::uint64_t written = 0;
  std::uint64_t dropped = 0;  ///< queue full: lost rows
  std::uint64_t failed = 0;   ///< the index refused them
  std::uint64_t queued = 0;
  /// audit.syslog (audit/syslog_export.h); all zero when it is disabled.
  bool syslog_enabled = false;
  bool syslog_connected = false;
  std::uint64_t syslog_sent = 0;                 ///< rows the collector acknowledged
  std::uint64_t syslog_connection_failures = 0;  ///< connect, handshake or send failures
  std::int64_t syslog_backlog = 0;               ///< rows in the table not yet sent
};

struct IngestSnapshot {
  bool shared_flush = false;  ///< one syncfs per file and row (ADR 012), else per-file flushes
  bool stopped = false;       ///< a storage flush failed: instances are refused until a restart
  std::uint64_t stored = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes_stored = 0;
  std::uint64_t routed = 0;
  std::uint64_t min_free_bytes = 0;     ///< storage.min_free_mb in bytes (0: no reserve)
  bool below_reserve = false;           ///< the last instance found less free space than that
  std::uint64_t refused_low_space = 0;  ///< instances refused for it
};

struct DestinationSnapshot {
  std::string name;
  bool paused = false;
  std::string pause_reason;
  std::uint32_t consecutive_failures = 0;
  std::uint32_t open_associations = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t warnings = 0;
  std::uint64_t failed = 0;
  std::uint64_t retried = 0;
  std::uint64_t dead = 0;
  std::uint64_t bytes = 0;
  std::uint64_t associations_opened = 0;
  std::uint64_t claimed_ahead = 0;  ///< rows claimed while a window was still outstanding
};

/// Encryption at rest as the gateway runs it (ADR 010); the index adds key versions and rows.
struct EncryptionSnapshot {
  bool files = false;             ///< storage.encrypt
  std::string volume_device;      ///< "major:minor" of data_dir's file system; "" unknown
  bool volume_dm_crypt = false;   ///< data_dir sits on a dm-crypt (LUKS) volume
  std::string volume_crypt_type;  ///< "LUKS2"…
};

struct GatewaySnapshot {
  std::string version;
  std::string ae_title;
  std::int64_t started_at_ms = 0;
  std::vector<ListenerSnapshot> listeners;
  std::optional<CertificateSnapshot> tls_certificate;
  ScpSnapshot scp;
  IngestSnapshot ingest;
  AuditSnapshot audit;
  std::vector<DestinationSnapshot> destinations;  ///< configured ones, sorted by name
  /// The file system holding data_dir (statvfs); 0 when unknown.
  std::uint64_t storage_total_bytes = 0;
  std::uint64_t storage_available_bytes = 0;
  EncryptionSnapshot encryption;
};

/// A destination as configured (config file), for GET /api/v1/destinations. Key *paths* only:
/// the API never reads or returns key material.
struct DestinationConfigSnapshot {
  std::string name;
  std::string ae_title;
  std::string calling_ae_title;  ///< empty = the gateway's ae_title
  std::string host;
  std::uint16_t port = 0;
  bool tls_enabled = false;
  bool verify_hostname = true;
  std::uint32_t max_associations = 0;
  std::uint32_t max_async_operations = 0;
  std::string tls_profile;
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string tls_ca_path;
  std::string source = "config";  ///< "config" (the file) | "api" (created through the API)
  // API destinations only ("" otherwise): JSON object texts as given, and who made them.
  // (Initialised, so aggregate initialisers written before these fields stay valid.)
  std::string match{};  ///< a route's match; "" = none: nothing is routed to it
  std::string retry{};  ///< the destination's own retry keys (seconds)
  std::int64_t created_at_ms = 0;
  std::string created_by{};
  std::int64_t updated_at_ms = 0;
  std::string updated_by{};
};

/// One problem that kept a reload from being applied ("routes[0].destinations[1]", "…").
struct ReloadIssue {
  std::string path;
  std::string message;
};

/// What a configuration reload did: applied (the counts of what now runs, the top-level keys
/// that changed but wait for a restart), or nothing at all (every issue).
struct ReloadOutcome {
  bool applied = false;
  std::vector<ReloadIssue> issues;
  std::size_t destinations = 0;
  std::size_t routes = 0;
  std::vector<std::string> needs_restart;
};

/// A change to the destinations created through the API (/api/v1/destinations), which the
/// gateway checks and applies under its reload lock: the index write and its audit row (one
/// transaction), then the routing table and the forwarders, at once.
struct DestinationEdit {
  enum class Kind { kCreate, kUpdate, kDelete };
  Kind kind = Kind::kCreate;
  std::string name;         ///< update/delete: from the URL; create: from the body
  std::string body;         ///< create/update: the request's JSON object, as text
  bool force = false;       ///< delete: dead-letter queued rows instead of refusing (409)
  index::AuditEvent audit;  ///< written with the change
};

/// The answer: `error` unset when applied. kConfig: `issues` holds every problem (422);
/// kConflict/kAlreadyExists (409), kNotFound (404) say why in the message.
struct DestinationEditOutcome {
  std::optional<core::Error> error;
  std::vector<ReloadIssue> issues;
  std::optional<DestinationConfigSnapshot> destination;  ///< create/update: what now runs
  std::int64_t dead_lettered = 0;                        ///< delete with force
};

/// A C-ECHO to a configured destination. `ok` only for a Success status; `status` is -1 when
/// no response came (unreachable, refused, TLS failure, timeout), `reason` then says why.
struct EchoOutcome {
  bool ok = false;
  int status = -1;
  std::int64_t elapsed_ms = 0;
  std::string reason;
};

/// The files of the DICOM TLS listeners' certificate (config tls.*), for certificate info and
/// upload (/api/v1/certs/...).
struct TlsCertificateFiles {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  int expiring_days = 30;  ///< acme.renew_before_days: "expiring" below this many days
};

class GatewayControl {
 public:
  virtual ~GatewayControl() = default;
  /// Thread-safe; cheap (atomics and a few small copies).
  virtual GatewaySnapshot snapshot() const = 0;
  /// A storage flush failed and ingest refuses every instance until a restart (ADR 012): what
  /// /health reports. Thread-safe; one atomic load.
  virtual bool ingest_stopped() const { return false; }
  /// Rows of `destination` were made due now (queue retry): wake its forwarder instead of
  /// letting it sleep until its next timer. Thread-safe.
  virtual void queue_changed(const std::string& destination) = 0;
  // The three below have defaults (nothing configured, nothing to reload) so that fakes
  // written for other resources need not implement them; the App overrides all three.
  /// The content of a stored file (relative path, from the index), decrypted when it was
  /// stored encrypted (storage.encrypt, ADR 010), every byte checked against `digest` (the
  /// row's content digest) as it is read: the read that completes a file that changed on disk
  /// fails (kDataLoss) and hands none of its bytes on. Thread-safe; kUnsupported without a
  /// gateway.
  virtual core::Result<std::unique_ptr<storage::ContentReader>> open_stored_file(
      const std::string& /*relative_path*/, const std::string& /*digest*/) {
    return core::make_error(core::ErrorCode::kUnsupported, "no running gateway");
  }
  /// The destinations of the running configuration, sorted by name. Thread-safe.
  virtual std::vector<DestinationConfigSnapshot> destinations() const { return {}; }
  /// Re-reads the config file and applies it atomically, or nothing (SIGHUP does the same).
  /// Blocking (files, TLS contexts): call it from a thread that may block, not an I/O thread.
  virtual ReloadOutcome reload_config_file() {
    return {false, {{"", "this gateway cannot reload its configuration"}}, 0, 0, {}};
  }
  /// Creates, replaces or deletes an API destination (DestinationEdit). Blocking (files, the
  /// index); serialised with config reloads.
  virtual DestinationEditOutcome edit_destination(const DestinationEdit& /*edit*/) {
    return {core::make_error(core::ErrorCode::kInternal, "no running gateway"), {}, {}, 0};
  }
  /// A C-ECHO to `destination` with its own settings (TLS included), bounded by `timeout`;
  /// nullopt when no such destination is configured. Blocks the calling thread until done.
  virtual std::optional<EchoOutcome> echo_destination(const std::string& /*destination*/,
                                                      std::chrono::milliseconds /*timeout*/) {
    return std::nullopt;
  }

  // Certificates (certs_routes.cpp). Not pure: fakes that do not serve TLS need not care.
  /// The configured certificate files of the DICOM TLS listeners; nullopt when no listener
  /// uses TLS.
  virtual std::optional<TlsCertificateFiles> tls_certificate_files() const { return std::nullopt; }
  /// Builds new TLS contexts from the configured files (just replaced by an upload) and swaps
  /// them in: the DICOM TLS listeners, and HTTPS when it serves the same files. On failure
  /// the contexts being served stay. Blocking; serialised with config reloads.
  virtual core::Status reload_tls_certificate() {
    return core::make_error(core::ErrorCode::kInternal, "TLS reload is not available");
  }
};

}  // namespace gw::http
