#pragma once
/// SyslogExporter: every audit row, once, to a syslog collector (`audit.syslog`), as RFC 5424
/// messages (syslog_message.h) over RFC 5425 TLS or plain TCP (syslog_transport.h).
///
/// The audit table stays the source of truth. One thread reads the rows after a cursor in id
/// order (Index::list_audit_after), sends them in batches, and moves the cursor only once the
/// collector's TCP has acknowledged a batch; the cursor is a small file in data_dir, replaced
/// atomically (write, fsync, rename, fsync of the directory). So a collector outage, a gateway
/// restart or a crash loses nothing: the rows wait in the table and go out, in order, when the
/// collector is back. Duplicates are possible, never losses: the rows of a batch whose
/// acknowledgement or cursor write was cut off by a crash or a lost connection are sent again
/// (one batch: at most `batch` rows and about kMaxBatchBytes; nothing more is sent while the
/// cursor cannot be stored); the SD-PARAM id lets a collector drop them.
///
/// Ids that are missing between rows already read (PostgreSQL hands out identity values at
/// insert, and a transaction that commits later fills a hole below rows already visible) are
/// "gaps": rows after them are sent at once, the cursor waits below the gap, and the gap is
/// read again each round until its row shows up (it is sent then) or kGapGrace passes (it was
/// a rolled-back insert: skipped, logged). After a restart within that time, the rows sent past
/// an open gap go out again.
///
/// The writer thread is woken by notify() (AuditWriter::on_written calls it) and polls the
/// table every poll_interval anyway (rows written by API handlers, CLI commands, other nodes).
/// Connection failures are retried with exponential back-off (1 s doubling to 60 s; back to 1 s
/// only once rows went out) and logged at most once a minute per reason. stop() returns
/// promptly: every wait also waits for it, except a host name lookup (getaddrinfo), which
/// cannot be interrupted.
///
/// Several nodes on one database: each enabled node exports the whole table with its own
/// cursor (audit-syslog-<node_id>.cursor); enable it on one node, or let the collector drop
/// duplicates by id.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "audit/dicom_audit_message.h"
#include "audit/syslog_message.h"
#include "audit/syslog_transport.h"
#include "config/config.h"
#include "index/index.h"

namespace gw::audit {

using SteadyClock = std::chrono::steady_clock;

/// Which rows have gone out. Pure bookkeeping over ids and a clock the caller supplies.
///
/// cursor(): every id <= cursor() was sent or given up (a gap that expired): the persisted
/// value. high(): the highest id sent. Between them only gaps are unsent.
class ExportProgress {
 public:
  static constexpr std::chrono::seconds kGapGrace{60};
  static constexpr std::size_t kMaxGaps = 4096;      ///< more missing ids are given up at once
  static constexpr std::int64_t kMaxRecheck = 8192;  ///< rows read again per round for gaps

  explicit ExportProgress(std::int64_t cursor, SteadyClock::duration grace = kGapGrace)
      : cursor_(cursor), high_(cursor), grace_(grace) {}

  std::int64_t cursor() const { return cursor_; }
  std::int64_t high() const { return high_; }
  std::size_t open_gaps() const { return gaps_.size(); }
  /// How many rows after cursor() to read again to find gap rows (0: no gap is open).
  std::int64_t recheck_limit() const;
  /// What to send, in id order: the rows of `rechecked` (read after cursor()) that fill a gap,
  /// then `fresh` (read after high()).
  std::vector<index::AuditEvent> due(const std::vector<index::AuditEvent>& rechecked,
                                     const std::vector<index::AuditEvent>& fresh) const;
  /// `sent` (what due() returned) has been acknowledged: fills gaps, opens new ones (at
  /// `now`) for ids missing between the fresh rows, moves high() and cursor(). Returns the
  /// ids given up at once (beyond kMaxGaps).
  std::int64_t mark_sent(const std::vector<index::AuditEvent>& sent, SteadyClock::time_point now);
  /// Gives up the gaps up to `covered_through` (the ids the last re-read covered) open since
  /// before now - grace; returns how many.
  std::size_t expire(SteadyClock::time_point now, std::int64_t covered_through);

 private:
  void update_cursor();

  std::int64_t cursor_;
  std::int64_t high_;
  SteadyClock::duration grace_;
  std::map<std::int64_t, SteadyClock::time_point> gaps_;  ///< missing id -> first seen missing
};

/// The cursor file: one decimal id and a newline. Missing file = 0 (export from the start).
class CursorFile {
 public:
  explicit CursorFile(std::filesystem::path path) : path_(std::move(path)) {}
  const std::filesystem::path& path() const { return path_; }
  /// kConfig when the file holds anything but an id (fix or delete it), kIo when unreadable.
  core::Result<std::int64_t> load() const;
  /// Writes "<id>\n" to a temporary file beside it, fsyncs, renames over it, fsyncs the
  /// directory.
  core::Status store(std::int64_t id) const;

 private:
  std::filesystem::path path_;
};

struct SyslogExportOptions {
  config::Syslog syslog;
  /// The gateway's `tls:` section: profile, min_version, ciphers, and the files audit.syslog
  /// does not override.
  config::Tls tls;
  std::filesystem::path cursor_file;
  SyslogOrigin origin;  ///< HOSTNAME and PROCID of every message
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds min_backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  std::chrono::milliseconds io_timeout{10000};  ///< connect + handshake; one batch's send + ack
  std::int64_t batch = 256;                     ///< rows per send (and per cursor write)

  /// From the config: cursor file in data_dir (per node_id), this host's name and pid.
  static SyslogExportOptions from_config(const config::Config& config);
};

struct SyslogExportCounts {
  bool connected = false;
  std::uint64_t sent = 0;                 ///< rows the collector acknowledged
  std::uint64_t connection_failures = 0;  ///< connect, handshake or send failures
  std::int64_t backlog = 0;               ///< rows in the table not yet sent
  std::int64_t cursor = 0;
};

class SyslogExporter {
 public:
  /// Checks what a start needs: the TLS client context can be built from the files (they are
  /// read again for each connection, so renewed certificates apply at the next one) and the
  /// cursor file reads. Does not connect.
  static core::Result<std::unique_ptr<SyslogExporter>> create(index::Index& index,
                                                              SyslogExportOptions options);
  SyslogExporter(const SyslogExporter&) = delete;
  SyslogExporter& operator=(const SyslogExporter&) = delete;
  ~SyslogExporter();

  /// Starts the thread. Once.
  void start();
  /// New rows are in the table (any thread; never blocks).
  void notify() { wakeup_->notify(); }
  /// Ends the thread promptly (the connection is closed, nothing waits for the collector).
  /// Rows not yet sent go out after the next start. Idempotent.
  void stop();

  SyslogExportCounts counts() const;

  /// The TLS client context for the collector (what create() checks, and `config check`).
  static core::Result<std::shared_ptr<const tls::TlsContext>> client_context(
      const SyslogExportOptions& options);

 private:
  SyslogExporter(index::Index& index, SyslogExportOptions options, std::int64_t cursor,
                 std::unique_ptr<Wakeup> wakeup);
  void run();
  enum class Round {
    kIdle,          ///< everything read was sent: sleep until notified or the poll interval
    kMore,          ///< a full batch went out: more rows may wait
    kStopped,       ///< stop() interrupted the send
    kSendFailed,    ///< the connection failed (`error`)
    kIndexFailed,   ///< reading the table failed (`error`)
    kCursorFailed,  ///< the cursor file could not be written (`error`): nothing was sent
  };
  /// Bytes of messages per send (one row at least): each send has io_timeout for itself.
  static constexpr std::size_t kMaxBatchBytes = 256 * 1024;
  /// Reads the due rows, sends them, moves and persists the cursor.
  Round export_round(std::string& error);
  void connect();
  /// A failure of the connection (or of connecting): counted, logged (rate-limited), then
  /// the back-off.
  void connection_failed(std::string reason);  // a copy: it may come from connection_
  /// Logs `reason` unless the same was logged within the last minute.
  void log_failure(const std::string& event, const std::string& reason,
                   std::chrono::milliseconds retry_in);
  void refresh_backlog();
  /// audit.syslog.format dicom: the row's messages, with the Patient ID of the study it
  /// concerns looked up in the index (kept for the next rows of the same study; a study not
  /// found is looked up again next time). An index error is returned (the round is retried)
  /// kPatientRetries times for the same row; then, or at once for a missing key (kConfig),
  /// the messages go without the patient.
  core::Result<std::vector<std::string>> dicom_messages(const index::AuditEvent& row);
  void remember_patient(const std::string& study, const std::string& patient_id);

  index::Index& index_;
  const SyslogExportOptions options_;
  const CursorFile cursor_file_;
  std::unique_ptr<Wakeup> wakeup_;
  // Owned by the thread (run() and what it calls):
  ExportProgress progress_;
  std::int64_t persisted_ = 0;
  std::unique_ptr<SyslogConnection> connection_;
  std::chrono::milliseconds backoff_;
  std::string last_reason_;
  SteadyClock::time_point last_logged_{};
  SteadyClock::time_point last_connected_log_{};
  std::uint64_t repeated_ = 0;  ///< failures with last_reason_ not logged since
  DicomAuditSource dicom_source_;
  static constexpr std::size_t kMaxCachedPatients = 1024;
  std::map<std::string, std::string> patients_;  ///< study UID -> its Patient ID ("" unreadable)
  static constexpr int kPatientRetries = 5;
  std::int64_t failing_row_ = 0;  ///< the row whose patient lookup failed last
  int failing_rounds_ = 0;
  // Read by counts() from any thread:
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> connection_failures_{0};
  std::atomic<std::int64_t> backlog_{0};
  std::atomic<std::int64_t> cursor_{0};
  std::thread thread_;  // last: joined by stop()
};

}  // namespace gw::audit
