#pragma once
/// What the REST API needs from the running gateway, implemented by the App (the composition
/// root): a snapshot of its state for /status and /metrics, and a nudge for the forwarders when
/// the API made queued rows due. Plain data only, so gw_http does not depend on the DICOM
/// listeners or the forwarders, and tests can supply a fake.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  std::uint64_t echoes = 0;
  std::uint64_t stores_ok = 0;
  std::uint64_t stores_failed = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t tls_handshake_failures = 0;
};

struct IngestSnapshot {
  std::uint64_t stored = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes_stored = 0;
  std::uint64_t routed = 0;
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
};

struct GatewaySnapshot {
  std::string version;
  std::string ae_title;
  std::int64_t started_at_ms = 0;
  std::vector<ListenerSnapshot> listeners;
  std::optional<CertificateSnapshot> tls_certificate;
  ScpSnapshot scp;
  IngestSnapshot ingest;
  std::vector<DestinationSnapshot> destinations;  ///< configured ones, sorted by name
  /// The file system holding data_dir (statvfs); 0 when unknown.
  std::uint64_t storage_total_bytes = 0;
  std::uint64_t storage_available_bytes = 0;
};

class GatewayControl {
 public:
  virtual ~GatewayControl() = default;
  /// Thread-safe; cheap (atomics and a few small copies).
  virtual GatewaySnapshot snapshot() const = 0;
  /// Rows of `destination` were made due now (queue retry): wake its forwarder instead of
  /// letting it sleep until its next timer. Thread-safe.
  virtual void queue_changed(const std::string& destination) = 0;
};

}  // namespace gw::http
