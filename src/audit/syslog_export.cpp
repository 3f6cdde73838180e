#include "audit/syslog_export.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <string_view>

#include "certs/openssl_util.h"
#include "core/log.h"
#include "storage/file_ops.h"

namespace gw::audit {

using core::ErrorCode;
using core::make_error;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("audit"); }

/// Repeated failures with one reason are logged at most this often.
constexpr auto kLogEvery = std::chrono::minutes(1);

std::string duration_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                               : std::to_string(d.count()) + "ms";
}

}  // namespace

// ---- ExportProgress ----------------------------------------------------------------------------

std::int64_t ExportProgress::recheck_limit() const {
  if (gaps_.empty()) return 0;
  return std::min(high_ - cursor_, kMaxRecheck);
}

std::vector<index::AuditEvent> ExportProgress::due(
    const std::vector<index::AuditEvent>& rechecked,
    const std::vector<index::AuditEvent>& fresh) const {
  std::vector<index::AuditEvent> out;
  for (const auto& e : rechecked) {
    if (e.id <= high_ && gaps_.contains(e.id)) out.push_back(e);
  }
  for (const auto& e : fresh) {
    if (e.id > high_) out.push_back(e);
  }
  return out;
}

std::int64_t ExportProgress::mark_sent(const std::vector<index::AuditEvent>& sent,
                                       SteadyClock::time_point now) {
  std::int64_t given_up = 0;
  for (const auto& e : sent) {
    if (e.id <= high_) {
      gaps_.erase(e.id);
      continue;
    }
    // Ids between the last one sent and this one were not there when the rows were read.
    const std::int64_t missing = e.id - high_ - 1;
    const auto room = static_cast<std::int64_t>(kMaxGaps - std::min(kMaxGaps, gaps_.size()));
    const std::int64_t kept = std::min(missing, room);
    for (std::int64_t id = high_ + 1; id <= high_ + kept; ++id) gaps_.emplace(id, now);
    given_up += missing - kept;
    high_ = e.id;
  }
  update_cursor();
  return given_up;
}

std::size_t ExportProgress::expire(SteadyClock::time_point now, std::int64_t covered_through) {
  const auto before = gaps_.size();
  // Only a gap the last re-read covered is known to be still missing.
  std::erase_if(gaps_, [&](const auto& gap) {
    return gap.first <= covered_through && now - gap.second >= grace_;
  });
  update_cursor();
  return before - gaps_.size();
}

void ExportProgress::update_cursor() { cursor_ = gaps_.empty() ? high_ : gaps_.begin()->first - 1; }

// ---- CursorFile --------------------------------------------------------------------------------

core::Result<std::int64_t> CursorFile::load() const {
  core::UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::int64_t{0};
    return storage::errno_error(errno, "read", path_);
  }
  char buf[64] = {};
  const auto n = ::read(fd.get(), buf, sizeof(buf) - 1);
  if (n < 0) return storage::errno_error(errno, "read", path_);
  std::string_view text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::int64_t id = 0;
  const bool digits =
      !text.empty() && text.size() <= 18 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    for (char c : text) id = id * 10 + (c - '0');
    return id;
  }
  return make_error(ErrorCode::kConfig,
                    path_.string() +
                        ": expected the id of the last audit row sent to syslog; fix it, or "
                        "delete it to send the whole audit table again");
}

core::Status CursorFile::store(std::int64_t id) const {
  // Temp file beside it, fsync, rename, fsync of the directory: the rename survives a crash.
  return certs::write_file_atomic(path_, std::to_string(id) + "\n", 0600, /*overwrite=*/true);
}

// ---- SyslogExportOptions -----------------------------------------------------------------------

SyslogExportOptions SyslogExportOptions::from_config(const config::Config& config) {
  SyslogExportOptions o;
  o.syslog = config.audit.syslog;
  o.tls = config.tls;
  o.cursor_file =
      config.data_dir / (config.node_id.empty() ? std::string("audit-syslog.cursor")
                                                : "audit-syslog-" + config.node_id + ".cursor");
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) == 0) o.origin.hostname = name;
  o.origin.procid = std::to_string(::getpid());
  return o;
}

// ---- SyslogExporter ----------------------------------------------------------------------------

SyslogExporter::SyslogExporter(index::Index& index, SyslogExportOptions options,
                               std::int64_t cursor, std::unique_ptr<Wakeup> wakeup)
    : index_(index),
      options_(std::move(options)),
      cursor_file_(options_.cursor_file),
      wakeup_(std::move(wakeup)),
      progress_(cursor),
      persisted_(cursor),
      backoff_(options_.min_backoff),
      cursor_(cursor) {
  dicom_source_.origin = options_.origin;
  dicom_source_.audit_source_id = options_.syslog.audit_source_id;
  dicom_source_.enterprise_site_id = options_.syslog.enterprise_site_id;
}

SyslogExporter::~SyslogExporter() { stop(); }

core::Result<std::unique_ptr<SyslogExporter>> SyslogExporter::create(index::Index& index,
                                                                     SyslogExportOptions options) {
  GW_ASSIGN_OR_RETURN(auto wakeup, Wakeup::create());
  GW_ASSIGN_OR_RETURN(const std::int64_t cursor, CursorFile(options.cursor_file).load());
  std::unique_ptr<SyslogExporter> exporter(
      new SyslogExporter(index, std::move(options), cursor, std::move(wakeup)));
  if (exporter->options_.syslog.tls) GW_RETURN_IF_ERROR(client_context(exporter->options_));
  return exporter;
}

core::Result<std::shared_ptr<const tls::TlsContext>> SyslogExporter::client_context(
    const SyslogExportOptions& options) {
  const auto& s = options.syslog;
  tls::ClientTlsOptions c;
  c.ca = s.ca_file.empty() ? options.tls.ca_file : s.ca_file;
  c.cert = s.cert_file.empty() ? options.tls.cert_file : s.cert_file;
  c.key = s.cert_file.empty() ? options.tls.key_file : s.key_file;
  c.profile = options.tls.profile;
  c.min_version = options.tls.min_version;
  c.ciphers = options.tls.ciphers;
  c.verify_peer = true;  // never configurable: audit records go to the collector we trust only
  c.ca_name = s.ca_file.empty() ? "tls.ca_file" : "audit.syslog.ca_file";
  c.cert_name = s.cert_file.empty() ? "tls.cert_file" : "audit.syslog.cert_file";
  c.key_name = s.cert_file.empty() ? "tls.key_file" : "audit.syslog.key_file";
  auto made = tls::make_client_context(c);
  if (!made.ok()) {
    return make_error(
        made.error().code,
        "audit.syslog TLS (files from audit.syslog.*, else tls.*): " + made.error().message);
  }
  return made;
}

void SyslogExporter::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void SyslogExporter::stop() {
  wakeup_->request_stop();
  if (thread_.joinable()) thread_.join();
}

SyslogExportCounts SyslogExporter::counts() const {
  SyslogExportCounts c;
  c.connected = connected_;
  c.sent = sent_;
  c.connection_failures = connection_failures_;
  c.backlog = backlog_;
  c.cursor = cursor_;
  return c;
}

void SyslogExporter::log_failure(const std::string& event, const std::string& reason,
                                 std::chrono::milliseconds retry_in) {
  const auto now = SteadyClock::now();
  if (reason == last_reason_ && now - last_logged_ < kLogEvery) {
    ++repeated_;
    return;
  }
  log()->warn("event={} host={} port={} reason=\"{}\" retry_in={} repeated={}", event,
              options_.syslog.host, options_.syslog.port, core::log_safe(reason),
              duration_text(retry_in), reason == last_reason_ ? repeated_ : 0);
  last_reason_ = reason;
  last_logged_ = now;
  repeated_ = 0;
}

void SyslogExporter::refresh_backlog() {
  auto page = index_.list_audit_after(progress_.high(), 0);
  if (page.ok()) {
    backlog_ = std::max<std::int64_t>(0, page->last_id - progress_.high()) +
               static_cast<std::int64_t>(progress_.open_gaps());
  }
}

void SyslogExporter::connection_failed(std::string reason) {
  connection_.reset();
  connected_ = false;
  ++connection_failures_;
  log_failure("audit_syslog_failed", reason, backoff_);
  refresh_backlog();
  wakeup_->sleep(backoff_, false);
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
}

void SyslogExporter::connect() {
  std::shared_ptr<const tls::TlsContext> context;
  if (options_.syslog.tls) {
    auto made = client_context(options_);  // files read again: renewed certificates apply now
    if (!made.ok()) return connection_failed(made.error().message);
    context = std::move(made).value();
  }
  auto opened = SyslogConnection::open(options_.syslog.host, options_.syslog.port,
                                       std::move(context), *wakeup_, options_.io_timeout);
  if (!opened.ok()) {
    if (opened.error().code == ErrorCode::kCancelled) return;
    return connection_failed(opened.error().message);
  }
  connection_ = std::move(opened).value();
  connected_ = true;
  // A collector that accepts and then drops every connection must not fill the log: at most
  // one line a minute, like the failures (whose reason is kept, so a repeat stays quiet).
  const auto now = SteadyClock::now();
  if (now - last_connected_log_ >= kLogEvery) {
    last_connected_log_ = now;
    log()->info("event=audit_syslog_connected host={} port={} tls={} protocol={} cursor={}",
                options_.syslog.host, options_.syslog.port, options_.syslog.tls,
                connection_->protocol(), progress_.cursor());
  }
}

SyslogExporter::Round SyslogExporter::export_round(std::string& error) {
  // The last batch's cursor first: while it cannot be stored nothing more is sent, so a
  // restart sends again at most that one batch.
  if (progress_.cursor() != persisted_) {
    if (auto st = cursor_file_.store(progress_.cursor()); !st.ok()) {
      error = st.error().message;
      return Round::kCursorFailed;
    }
    persisted_ = progress_.cursor();
  }
  std::vector<index::AuditEvent> rechecked;
  std::int64_t covered_through = progress_.cursor();
  if (const auto limit = progress_.recheck_limit(); limit > 0) {
    auto page = index_.list_audit_after(progress_.cursor(), limit);
    if (!page.ok()) {
      error = page.error().message;
      return Round::kIndexFailed;
    }
    rechecked = std::move(page->events);
    covered_through = static_cast<std::int64_t>(rechecked.size()) < limit ? progress_.high()
                                                                          : rechecked.back().id;
  }
  auto page = index_.list_audit_after(progress_.high(), options_.batch);
  if (!page.ok()) {
    error = page.error().message;
    return Round::kIndexFailed;
  }
  const auto& fresh = *page;
  auto rows = progress_.due(rechecked, fresh.events);
  bool cut = false;
  if (!rows.empty()) {
    // At most kMaxBatchBytes per send (and per io_timeout): a slow link still moves on.
    std::string frames;
    std::size_t framed = 0;
    while (framed < rows.size() && (framed == 0 || frames.size() < kMaxBatchBytes)) {
      if (options_.syslog.format == config::SyslogFormat::kDicom) {
        auto messages = dicom_messages(rows[framed]);
        if (!messages.ok()) {
          error = messages.error().message;
          return Round::kIndexFailed;  // retried: the rows before it in this batch go again
        }
        for (const auto& m : *messages) append_octet_counted(frames, m);
      } else {
        append_octet_counted(frames, format_syslog_message(rows[framed], options_.origin));
      }
      ++framed;
    }
    cut = framed < rows.size();
    rows.resize(framed);
    // (Rows without a DICOM counterpart make no message: a batch may have nothing to send.)
    if (auto st =
            frames.empty() ? core::ok_status() : connection_->send(frames, options_.io_timeout);
        !st.ok()) {
      error = st.error().message;
      return st.error().code == ErrorCode::kCancelled ? Round::kStopped : Round::kSendFailed;
    }
    sent_ += rows.size();
    backoff_ = options_.min_backoff;  // rows went out: the next failure retries soon
    if (const auto given_up = progress_.mark_sent(rows, SteadyClock::now()); given_up > 0) {
      log()->warn("event=audit_syslog_gap_skipped ids={} reason=\"too many missing ids at once\"",
                  given_up);
    }
  }
  if (const auto expired = progress_.expire(SteadyClock::now(), covered_through); expired > 0) {
    log()->warn(
        "event=audit_syslog_gap_skipped ids={} reason=\"missing for {}s: rolled-back inserts\"",
        expired,
        std::chrono::duration_cast<std::chrono::seconds>(ExportProgress::kGapGrace).count());
  }
  if (progress_.cursor() != persisted_) {
    if (auto st = cursor_file_.store(progress_.cursor()); st.ok()) persisted_ = progress_.cursor();
    // else: the next round tries again before it sends anything
  }
  cursor_ = progress_.cursor();
  backlog_ = std::max<std::int64_t>(0, fresh.last_id - progress_.high()) +
             static_cast<std::int64_t>(progress_.open_gaps());
  return cut || static_cast<std::int64_t>(fresh.events.size()) == options_.batch ? Round::kMore
                                                                                 : Round::kIdle;
}

core::Result<std::vector<std::string>> SyslogExporter::dicom_messages(
    const index::AuditEvent& row) {
  std::string patient_id;
  if (const auto study = audited_study(row); !study.empty()) {
    if (const auto it = patients_.find(study); it != patients_.end()) {
      patient_id = it->second;
    } else if (auto found = index_.find_study(study); !found.ok()) {
      // A lost database connection heals: the row is tried again (a few rounds). A patient
      // row that cannot be read (a key the keyring lacks, a row that fails authentication)
      // does not: after those rounds the message goes without the patient, so that it does
      // not hold back every later audit row, and the study is remembered as unreadable.
      if (found.error().code != ErrorCode::kConfig &&
          !(row.id == failing_row_ && ++failing_rounds_ >= kPatientRetries)) {
        if (row.id != failing_row_) {
          failing_row_ = row.id;
          failing_rounds_ = 1;
        }
        return std::move(found).error();
      }
      log()->warn("event=audit_syslog_patient_unavailable audit_id={} reason=\"{}\"", row.id,
                  found.error().message);
      remember_patient(study, "");
    } else if (found->has_value()) {
      patient_id = (*found)->patient_id;
      remember_patient(study, patient_id);  // a study not found yet is looked up again
    }
  }
  return format_dicom_audit_messages(row, dicom_source_, patient_id);
}

void SyslogExporter::remember_patient(const std::string& study, const std::string& patient_id) {
  if (patients_.size() >= kMaxCachedPatients) patients_.clear();
  patients_.insert_or_assign(study, patient_id);
}

void SyslogExporter::run() {
  // A write to a socket the collector reset raises SIGPIPE; here it only fails the write.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  const auto& s = options_.syslog;
  log()->info("event=audit_syslog_started host={} port={} tls={} cursor={} cursor_file={}", s.host,
              s.port, s.tls, progress_.cursor(), cursor_file_.path().string());
  if (!s.tls) {
    log()->warn(
        "event=audit_syslog_plaintext host={} port={} reason=\"audit.syslog.tls is false: audit "
        "records leave this host unencrypted and unauthenticated\"",
        s.host, s.port);
  }
  while (!wakeup_->stopping()) {  // each round connects, sends a batch, or sleeps
    if (!connection_) {
      connect();
      continue;
    }
    if (!connection_->alive()) {
      connection_failed(connection_->last_error());
      continue;
    }
    std::string error;
    switch (export_round(error)) {
      case Round::kMore:  // a full batch: more rows may wait
      case Round::kStopped:
        break;
      case Round::kIdle:
        wakeup_->sleep(options_.poll_interval, true);
        wakeup_->take_notified();
        break;
      case Round::kSendFailed:
        connection_failed(error);
        break;
      case Round::kIndexFailed:
        log_failure("audit_syslog_index_failed", error, options_.poll_interval);
        wakeup_->sleep(options_.poll_interval, false);
        break;
      case Round::kCursorFailed:
        log_failure("audit_syslog_cursor_failed", error, options_.poll_interval);
        wakeup_->sleep(options_.poll_interval, false);
        break;
    }
  }
  connection_.reset();
  connected_ = false;
  log()->info("event=audit_syslog_stopped sent={} cursor={}", sent_.load(), progress_.cursor());
}

}  // namespace gw::audit
