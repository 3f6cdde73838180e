// The Forwarder's life cycle (start, update, stop, status) and its long-running tasks: the
// workers' claim loop and the lease renewal. See forwarder_internal.h for the other files.

#include "queue/forwarder.h"

#include <algorithm>
#include <iterator>
#include <random>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "queue/forwarder_internal.h"

namespace gw::queue {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

/// The longest an idle worker sleeps without looking at the outbox: rows whose lease expired on
/// a node that died are not announced by anyone.
constexpr auto kMaxIdleSleep = std::chrono::seconds(30);
/// After an index error, wait this long before claiming again (the log says it once).
constexpr auto kIndexErrorPause = std::chrono::seconds(5);
/// A row that is due but could not be claimed (a sibling worker got it): look again shortly,
/// never in a tight loop.
constexpr auto kMinIdleSleep = milliseconds(50);

std::int64_t to_ms(std::chrono::seconds s) {
  return std::chrono::duration_cast<milliseconds>(s).count();
}

Random default_random() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine]() { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

}  // namespace

Forwarder::Forwarder(asio::io_context& io, asio::any_io_executor worker_pool, index::Index& index,
                     std::filesystem::path data_dir, std::string owner, ForwarderSettings settings,
                     Random random, ForwardObserver* observer, dicom::SourceOpener open_file)
    : strand_(asio::make_strand(io)),
      pool_(std::move(worker_pool)),
      index_(index),
      data_dir_(std::move(data_dir)),
      owner_(std::move(owner)),
      name_(settings.destination.name),
      observer_(observer),
      open_file_(std::move(open_file)),
      random_(random ? std::move(random) : default_random()),
      settings_(std::make_shared<const ForwarderSettings>(std::move(settings))) {}

Forwarder::~Forwarder() = default;

void Forwarder::spawn(asio::awaitable<void> task) {
  ++tasks_;
  asio::co_spawn(strand_, std::move(task),
                 asio::bind_executor(strand_, [this](std::exception_ptr e) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       log()->error("event=forwarder_task_failed destination={} reason=\"{}\"",
                                    name_, ex.what());
                     } catch (...) {
                       log()->error("event=forwarder_task_failed destination={}", name_);
                     }
                   }
                   --tasks_;
                   tasks_done_.notify_all();
                 }));
}

void Forwarder::start() {
  asio::post(strand_, [this]() {
    if (started_ || stopping_) return;
    started_ = true;
    spawn(run());
  });
}

void Forwarder::notify() {
  asio::post(strand_, [this]() { wake_.notify_all(); });
}

void Forwarder::update(ForwarderSettings settings) {
  auto next = std::make_shared<const ForwarderSettings>(std::move(settings));
  asio::post(strand_, [this, next = std::move(next)]() {
    settings_ = next;
    ++settings_generation_;
    tls_context_.reset();
    if (!started_ || stopping_) return;
    log()->info("event=destination_updated destination={} host={} port={} tls={}", name_,
                next->destination.host, next->destination.port, next->destination.tls_enabled);
    spawn_missing_workers();
    wake_.notify_all();
    control_.notify_all();  // a paused destination is probed at once with the new settings
  });
}

void Forwarder::request_stop() {
  asio::post(strand_, [this]() {
    if (stopping_) return;
    stopping_ = true;
    wake_.notify_all();
    control_.notify_all();
  });
}

asio::awaitable<void> Forwarder::stop() {
  co_await asio::co_spawn(strand_, stop_on_strand(), asio::use_awaitable);
}

asio::awaitable<void> Forwarder::stop_on_strand() {
  if (!stopping_) {
    stopping_ = true;
    wake_.notify_all();
    control_.notify_all();
  }
  while (tasks_ > 0) co_await tasks_done_.wait(tasks_done_.generation());
  if (started_ && !released_) {
    released_ = true;
    // Rows claimed but not sent: due again now, their attempt not counted.
    auto release = [this]() { return index_.release_outbox_leases(owner_, core::wall_clock_ms()); };
    auto st = co_await on_pool(release);
    if (!st.ok()) {
      log()->warn("event=lease_release_failed destination={} reason=\"{}\"", name_,
                  st.error().message);
    }
    log()->info("event=forwarder_stopped destination={} forwarded={} dead={}", name_,
                counters_.forwarded.load(), counters_.dead.load());
  }
}

DestinationStatus Forwarder::status() const {
  DestinationStatus s;
  s.name = name_;
  s.paused = paused_;
  s.pause_reason = pause_reason();
  s.consecutive_failures = consecutive_failures_;
  s.open_associations = open_associations_;
  s.counts.forwarded = counters_.forwarded;
  s.counts.warnings = counters_.warnings;
  s.counts.failed = counters_.failed;
  s.counts.retried = counters_.retried;
  s.counts.dead = counters_.dead;
  s.counts.bytes = counters_.bytes;
  s.counts.associations_opened = counters_.associations_opened;
  s.counts.claimed_ahead = counters_.claimed_ahead;
  return s;
}

// ---- tasks -------------------------------------------------------------------------------------

asio::awaitable<void> Forwarder::run() {
  // Rows this owner still holds were claimed by a previous run of this node that did not stop
  // cleanly: nobody is sending them, so they need not wait for their lease to expire.
  auto release = [this]() { return index_.release_outbox_leases(owner_, core::wall_clock_ms()); };
  auto st = co_await on_pool(release);
  if (!st.ok()) {
    log()->warn("event=lease_release_failed destination={} reason=\"{}\"", name_,
                st.error().message);
  }
  if (stopping_) co_return;
  const auto& d = settings_->destination;
  log()->info(
      "event=forwarder_started destination={} host={} port={} called_ae={} tls={} "
      "max_associations={} max_async_operations={}",
      name_, d.host, d.port, d.ae_title, d.tls_enabled, d.max_associations, d.max_async_operations);
  spawn_missing_workers();
  spawn(renew_leases());
}

void Forwarder::spawn_missing_workers() {
  const std::size_t wanted = std::max<std::uint32_t>(1, settings_->destination.max_associations);
  if (worker_alive_.size() < wanted) worker_alive_.resize(wanted, false);
  for (std::size_t i = 0; i < wanted; ++i) {
    if (worker_alive_[i]) continue;
    worker_alive_[i] = true;
    spawn(worker(i));
  }
}

asio::awaitable<void> Forwarder::worker(std::size_t index) {
  Connection conn;
  do {
    co_await work(conn, index);
    co_await close_connection(conn, stopping_ ? "stopping" : "fewer associations configured");
  } while (wanted(index));  // max_associations may have grown again while closing
  worker_alive_[index] = false;
}

bool Forwarder::wanted(std::size_t index) const {
  return !stopping_ && index < std::max<std::uint32_t>(1, settings_->destination.max_associations);
}

asio::awaitable<void> Forwarder::work(Connection& conn, std::size_t index) {
  while (wanted(index)) {
    const auto seen = wake_.generation();
    if (paused_) {
      co_await close_connection(conn, "paused");
      co_await wake_.wait(seen);
      continue;
    }
    auto claimed = co_await claim_due();
    if (!claimed.ok()) {
      if (!index_error_logged_) {
        index_error_logged_ = true;
        log()->error("event=outbox_claim_failed destination={} reason=\"{}\"", name_,
                     claimed.error().message);
      }
      co_await wake_.wait_until(SteadyClock::now() + kIndexErrorPause, seen);
      continue;
    }
    if (index_error_logged_) {
      index_error_logged_ = false;
      log()->info("event=outbox_claim_recovered destination={}", name_);
    }
    if (claimed->empty()) {
      co_await idle(conn, seen);
      continue;
    }
    co_await process_batch(conn, index, std::move(claimed).value());
  }
}

bool Forwarder::may_claim_ahead(const Connection& conn, std::size_t worker) const {
  // work()'s own conditions for claiming, and the association is proven alive and pipelines.
  return wanted(worker) && !paused_ && conn.assoc && conn.assoc->window() > 1 &&
         conn.settings_generation == settings_generation_;
}

asio::awaitable<core::Result<std::vector<index::OutboxItem>>> Forwarder::claim_due() {
  const auto settings = settings_;
  const std::size_t batch = std::max<std::uint32_t>(1, settings->forwarding.batch);
  const std::int64_t lease = to_ms(settings->forwarding.lease);
  auto claim = [&]() {
    return index_.claim_outbox(name_, batch, owner_, core::wall_clock_ms(), lease);
  };
  co_return co_await on_pool(claim);
}

asio::awaitable<void> Forwarder::idle(Connection& conn, std::uint64_t seen_generation) {
  auto next_due = [this]() { return index_.next_outbox_due(name_); };
  auto due = co_await on_pool(next_due);
  const auto now = SteadyClock::now();
  auto deadline = now + kMaxIdleSleep;
  if (due.ok() && due->has_value()) {
    const auto wait = milliseconds(std::max<std::int64_t>(0, **due - core::wall_clock_ms()));
    deadline = std::min(deadline, now + std::max<SteadyClock::duration>(wait, kMinIdleSleep));
  }
  if (conn.assoc) deadline = std::min(deadline, conn.idle_deadline);
  co_await wake_.wait_until(deadline, seen_generation);
  if (conn.assoc && SteadyClock::now() >= conn.idle_deadline) {
    co_await close_connection(conn, "idle");
  }
}

asio::awaitable<void> Forwarder::renew_leases() {
  while (!stopping_) {
    const auto seen = control_.generation();
    const auto lease = settings_->forwarding.lease;
    const auto period = std::max<SteadyClock::duration>(std::chrono::seconds(1), lease / 3);
    co_await control_.wait_until(SteadyClock::now() + period, seen);
    if (stopping_ || held_rows_.empty()) continue;
    const std::int64_t lease_ms = to_ms(settings_->forwarding.lease);
    // Only the rows a batch holds: one whose result could not be written is no longer held,
    // and its lease runs out (it is sent again: at-least-once).
    std::vector<std::int64_t> ids;
    ids.reserve(held_rows_.size());
    std::unique_copy(held_rows_.begin(), held_rows_.end(), std::back_inserter(ids));
    auto renew = [this, lease_ms, ids = std::move(ids)]() {
      return index_.renew_outbox_leases(owner_, ids, core::wall_clock_ms(), lease_ms);
    };
    auto st = co_await on_pool(renew);
    if (!st.ok()) {
      log()->warn("event=lease_renewal_failed destination={} reason=\"{}\"", name_,
                  st.error().message);
    }
  }
}

}  // namespace gw::queue
