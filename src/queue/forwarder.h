#pragma once
/// Forwarder: sends one destination's outbox rows over DICOM (TLS), with association reuse, the
/// retry policy (queue/retry_policy.h) and a circuit breaker.
///
/// Up to destination.max_associations worker coroutines each loop: claim a batch of due rows
/// (forwarding.batch, leased for forwarding.lease to this forwarder's owner id), send each
/// stored file's data set bytes unchanged on an association that proposed exactly the
/// (SOP class, transfer syntax) pairs the rows need, one context per pair with that single
/// transfer syntax (no transcoding), and record each row delivered, rescheduled or dead. An
/// association stays open while work keeps coming and is released after
/// forwarding.association_idle_timeout without any. With destination.max_async_operations > 1
/// an association proposes an asynchronous operations window and keeps up to the granted number
/// of the batch's C-STOREs outstanding, each row recorded as its response comes (ADR 014); a
/// lost association sends the rows it left unanswered again. A batch that needs a pair the open
/// association did not propose gets a new association (proposing the old pairs too, while they
/// fit in 128 contexts). If an association kept from an earlier batch fails before its first
/// response (the peer dropped it while idle), the rows it left unanswered are sent again on a new
/// association without counting a failure. An idle worker sleeps until notify() or the next row
/// falls due (at most 30 s, so rows whose lease expired on a dead node are picked up); no polling
/// in between.
///
/// Every stored file is checked against the content digest recorded when it was received
/// (send_batch.h check_digest: XXH3 over the bytes as they are read, no second read): a file
/// changed on disk since is never completed at the destination (the read that completes it
/// fails, so its last fragment is not sent and the association is aborted), and its row goes
/// dead at once (event=forward_digest_mismatch), without counting toward the circuit breaker.
///
/// Circuit breaker: forwarding.circuit_breaker_failures consecutive transient failures of
/// association set-up or transfer (or one permanent A-ASSOCIATE-RJ, see retry_policy.h) pause
/// the destination (0 disables the breaker): workers stop claiming and release their
/// associations, and a C-ECHO probe runs every forwarding.probe_interval (timers only, no CPU).
/// A successful probe (an accepted association is enough) or delivery closes the breaker. Pause
/// and resume are logged once each. Because a paused destination claims nothing, an outage
/// does not use up retry.max_attempts, and the back-off of its rows stays short; retry.max_age
/// still applies: after each failed probe, the rows older than it go dead with the pause reason
/// (a bounded number per probe).
///
/// Threads: all coroutines of one forwarder share one strand of the I/O context, so its state
/// needs no lock (destinations run in parallel on the I/O threads); index calls and Part 10
/// header reads run on the worker pool and resume on the strand. The public member functions
/// are thread-safe. Lifetime: call stop() and wait for it before destroying, or destroy only
/// after the io_context has been stopped and destroyed (pending coroutine frames refer to the
/// forwarder).

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "dicom/scu.h"
#include "dicom/strand_signal.h"
#include "index/index.h"
#include "queue/forward_observer.h"
#include "queue/retry_policy.h"

namespace gw::queue {

class OutboxWriter;

/// What a forwarder takes from the configuration.
struct ForwarderSettings {
  config::Destination destination;
  config::Forwarding forwarding;
  std::string gateway_ae_title;  ///< calling AE title when destination.calling_ae_title is empty
};

/// A copy of a forwarder's counters (monotonic since it started), for /metrics and /status.
struct ForwardingCounts {
  std::uint64_t forwarded = 0;  ///< rows delivered (warnings included)
  std::uint64_t warnings = 0;   ///< rows delivered with a warning status
  std::uint64_t failed = 0;     ///< failed attempts of a row (transient or permanent)
  std::uint64_t retried = 0;    ///< rows rescheduled for a later attempt
  std::uint64_t dead = 0;       ///< rows dead-lettered (permanent failure or retries exhausted)
  std::uint64_t bytes = 0;      ///< stored file bytes of delivered rows
  std::uint64_t associations_opened = 0;
  /// Rows claimed while a window's responses were outstanding (ADR 014): the window was kept
  /// full across batches.
  std::uint64_t claimed_ahead = 0;
};

struct DestinationStatus {
  std::string name;
  bool paused = false;       ///< circuit breaker open: probing, not sending
  std::string pause_reason;  ///< the failure that paused it, then the last probe's failure
  std::uint32_t consecutive_failures = 0;
  std::uint32_t open_associations = 0;
  ForwardingCounts counts;
};

class Forwarder {
 public:
  /// `owner`: the lease owner id of this forwarder's claims; unique among running forwarders
  /// (ForwardingService uses "<node owner id>/<destination>"). start() gives back the rows this
  /// owner still holds (a previous run of this node crashed), so it must not be shared with a
  /// running forwarder. `random`: a uniform [0,1) source for the back-off jitter (default:
  /// seeded from std::random_device). `observer` (may be null, not owned) hears of every
  /// association and row, for the audit trail.
  /// `open_file` reads stored files (the store's reader, which decrypts encrypted ones, ADR
  /// 010); empty: plain files.
  Forwarder(asio::io_context& io, asio::any_io_executor worker_pool, index::Index& index,
            std::filesystem::path data_dir, std::string owner, ForwarderSettings settings,
            Random random = {}, ForwardObserver* observer = nullptr,
            dicom::SourceOpener open_file = {});
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;
  ~Forwarder();

  const std::string& name() const { return name_; }
  const std::string& owner() const { return owner_; }
  bool started() const { return started_; }

  /// Releases the leases `owner` still holds, then starts the workers. Once; no-op after stop().
  void start();
  /// New rows may be due: idle workers claim at once.
  void notify();
  /// New settings (same destination name). Running associations finish their batch; the next
  /// association uses the new settings (TLS files are read again). A paused destination is
  /// probed at once.
  void update(ForwarderSettings settings);
  /// Starts stopping without waiting (stop() waits); lets several forwarders stop in parallel.
  void request_stop();
  /// Stops claiming, lets each worker finish what it is sending and collect the responses still
  /// outstanding (a window's worth with asynchronous operations), records the results,
  /// releases the associations and gives the rows still leased back (release_outbox_leases).
  /// Await it from any executor; calling it again waits for the same end.
  asio::awaitable<void> stop();

  DestinationStatus status() const;

 private:
  using Pair = std::pair<std::string, std::string>;  ///< (SOP class UID, transfer syntax UID)
  struct Connection;

  /// Spawns a coroutine on the strand and counts it until it ends (stop() waits for zero).
  void spawn(asio::awaitable<void> task);
  asio::awaitable<void> run();
  asio::awaitable<void> worker(std::size_t index);
  /// The worker's loop: claim, send, record; sleep when idle or paused.
  asio::awaitable<void> work(Connection& conn, std::size_t index);
  /// Worker `index` should keep running (not stopping, within max_associations).
  bool wanted(std::size_t index) const;
  asio::awaitable<void> renew_leases();
  asio::awaitable<void> probe_loop();
  asio::awaitable<void> stop_on_strand();
  void spawn_missing_workers();

  /// Claims up to forwarding.batch due rows, leased to owner_ (index errors returned as such).
  asio::awaitable<core::Result<std::vector<index::OutboxItem>>> claim_due();
  /// Worker `worker` may claim more rows for `conn` before its window drains (ADR 014): it is
  /// still wanted, the destination is not paused, the association grants a window and was
  /// opened with the current settings.
  bool may_claim_ahead(const Connection& conn, std::size_t worker) const;
  /// Sends `items` on worker `worker`'s association and records each outcome. With a window it
  /// claims more rows while the last responses are outstanding (a few times at most), so the
  /// window does not drain at every batch's end.
  asio::awaitable<void> process_batch(Connection& conn, std::size_t worker,
                                      std::vector<index::OutboxItem> items);
  /// Reads the Part 10 headers of the rows' stored files on the worker pool (prepare_batch).
  asio::awaitable<std::vector<core::Result<dicom::SendItem>>> prepare_on_pool(
      const std::vector<index::OutboxItem>& items);
  asio::awaitable<void> idle(Connection& conn, std::uint64_t seen_generation);
  asio::awaitable<core::Status> open_connection(Connection& conn, std::vector<Pair> pairs,
                                                std::optional<dicom::AssociateRj>& rejection);
  asio::awaitable<void> close_connection(Connection& conn, const char* why);
  /// The association attempt of `conn` is over: tells the observer (once per attempt).
  void end_attempt(Connection& conn, const std::string& error);
  asio::awaitable<core::Result<dicom::ScuOptions>> scu_options();
  asio::awaitable<core::Result<std::shared_ptr<const tls::TlsContext>>> tls_context();
  asio::awaitable<core::Status> probe_once();
  /// While paused: the rows older than retry.max_age go dead with the pause reason (nothing is
  /// claimed, so no attempt would ever end them). One bounded index call (kMaxPausedDeadLetters).
  asio::awaitable<void> dead_letter_expired_while_paused(const std::string& reason);

  /// Turns one row's classification into its next state (counted, logged, queued for writing).
  /// `serial`: the association attempt it was sent on (ForwardObserver). `shared_draw`: the
  /// jitter draw of a failure that ends a batch (see process_batch); such rows are logged by the
  /// caller, once.
  /// A row whose stored file is missing is held in `updates` instead (finish_missing_files).
  void finish(OutboxWriter& updates, std::uint64_t serial, const index::OutboxItem& item,
              const Classification& c, const Random* shared_draw = nullptr);
  /// The rows `updates` holds because their stored file was missing: when the instance now names
  /// another file (it was overwritten while the row was in flight, and ingest removed the
  /// replaced file), the row is superseded by the newer row that overwrite queued, or, without
  /// one, sends the current file next; otherwise it is finished as unreadable (dead).
  asio::awaitable<void> finish_missing_files(OutboxWriter& updates);
  /// The rows of a batch are held (their leases renewed) from their claim to the batch's end.
  void hold_rows(const std::vector<index::OutboxItem>& items);
  void let_go_rows(const std::vector<index::OutboxItem>& items);
  void note_failure(const Classification& c);
  void note_success();
  void pause(const std::string& reason);
  void resume();
  void set_pause_reason(std::string reason);
  std::string pause_reason() const;

  /// Runs `work` on the worker pool and resumes on the strand. By reference: GCC 12 destroys a
  /// temporary lambda argument of a co_await expression twice when its captures are not trivial.
  template <class F>
  asio::awaitable<std::invoke_result_t<F&>> on_pool(F& work);

  // Immutable after construction.
  asio::any_io_executor strand_;
  asio::any_io_executor pool_;
  index::Index& index_;
  std::filesystem::path data_dir_;
  std::string owner_;
  std::string name_;
  ForwardObserver* observer_;
  dicom::SourceOpener open_file_;

  // Strand only.
  Random random_;
  std::shared_ptr<const ForwarderSettings> settings_;
  std::uint64_t settings_generation_ = 1;
  std::shared_ptr<const tls::TlsContext> tls_context_;
  std::uint64_t tls_generation_ = 0;  ///< settings generation tls_context_ was built for
  dicom::StrandSignal wake_;          ///< workers: new work, pause/resume, settings, stop
  dicom::StrandSignal control_;       ///< probe loop and lease renewal: settings, stop
  dicom::StrandSignal tasks_done_;
  std::size_t tasks_ = 0;
  std::vector<bool> worker_alive_;
  bool stopping_ = false;
  bool probing_ = false;
  bool released_ = false;
  bool index_error_logged_ = false;
  /// Ids of the rows the workers' batches hold: the only ones renew_leases() extends, so a row
  /// whose result could not be written goes back to the queue when its lease expires.
  std::multiset<std::int64_t> held_rows_;
  std::chrono::steady_clock::time_point paused_at_;

  // Read by status() from any thread.
  std::atomic<bool> started_{false};
  std::atomic<bool> paused_{false};
  std::atomic<std::uint32_t> consecutive_failures_{0};
  std::atomic<std::uint32_t> open_associations_{0};
  struct Counters {
    std::atomic<std::uint64_t> forwarded{0}, warnings{0}, failed{0}, retried{0}, dead{0}, bytes{0},
        associations_opened{0}, claimed_ahead{0};
  } counters_;
  mutable std::mutex reason_mu_;  // guards pause_reason_ only
  std::string pause_reason_;
};

}  // namespace gw::queue
