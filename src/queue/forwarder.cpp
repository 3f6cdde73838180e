#include "queue/forwarder.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "core/log.h"
#include "dicom/uids.h"
#include "queue/destination_scu.h"

namespace gw::queue {

using core::ErrorCode;
using core::make_error;
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
/// Presentation context IDs are odd numbers 1..255.
constexpr std::size_t kMaxContexts = 128;

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t to_ms(std::chrono::seconds s) {
  return std::chrono::duration_cast<milliseconds>(s).count();
}

/// Serial numbers of association attempts, unique in the process (ForwardObserver).
std::atomic<std::uint64_t> next_association_serial{0};

Random default_random() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine]() { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

}  // namespace

/// One worker's association and what it was opened with.
struct Forwarder::Connection {
  std::unique_ptr<dicom::ScuAssociation> assoc;
  std::set<Pair> proposed;
  std::uint64_t settings_generation = 0;
  SteadyClock::time_point idle_deadline;
  bool used = false;  ///< carried a whole batch already (may have gone stale while idle)
  std::uint64_t stores = 0;
  std::uint64_t serial = 0;  ///< the association attempt under way (ForwardObserver); 0: none
};

/// The row updates of one batch, written on the worker pool while the next items are being
/// sent: a commit (and its fsync) per row would otherwise sit between every two C-STOREs.
/// Strand only; flush() before destroying.
class Forwarder::RowUpdates {
 public:
  RowUpdates(Forwarder& forwarder, const Connection& conn) : f_(forwarder), conn_(conn) {}

  /// The association attempt the batch's rows are being sent on now.
  std::uint64_t serial() const { return conn_.serial; }

  void push(std::int64_t id, Decision decision) {
    pending_.push_back({id, std::move(decision)});
    if (!writing_) start_write();
  }

  asio::awaitable<void> flush() {
    while (writing_ || !pending_.empty()) {
      const auto seen = done_.generation();
      if (!writing_ && !pending_.empty()) start_write();
      co_await done_.wait(seen);
    }
  }

 private:
  struct Update {
    std::int64_t id;
    Decision decision;
  };

  void start_write() {
    writing_ = true;
    auto batch = std::make_shared<std::vector<Update>>(std::move(pending_));
    pending_.clear();
    asio::post(f_.pool_, [this, batch]() {
      for (const auto& u : *batch) write(u);
      asio::post(f_.strand_, [this]() {
        writing_ = false;
        if (!pending_.empty()) {
          start_write();
        } else {
          done_.notify_all();
        }
      });
    });
  }

  /// Worker pool: one row's update. kConflict means the lease was lost (this node was too slow
  /// and another claimed the row): the other node's result stands.
  void write(const Update& u) {
    const auto now = now_ms();
    core::Status st;
    switch (u.decision.action) {
      case Decision::Action::kComplete:
        st = f_.index_.complete_outbox(u.id, f_.owner_, u.decision.result, now);
        break;
      case Decision::Action::kReschedule:
        st = f_.index_.reschedule_outbox(u.id, f_.owner_, u.decision.next_attempt_at_ms,
                                         u.decision.result, now);
        break;
      case Decision::Action::kFail:
        st = f_.index_.fail_outbox(u.id, f_.owner_, u.decision.result, now);
        break;
    }
    if (!st.ok()) {
      log()->warn("event=outbox_update_failed destination={} outbox_id={} reason=\"{}\"", f_.name_,
                  u.id, st.error().message);
    }
  }

  Forwarder& f_;
  const Connection& conn_;
  std::vector<Update> pending_;
  bool writing_ = false;
  StrandSignal done_;
};

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

template <class F>
asio::awaitable<std::invoke_result_t<F&>> Forwarder::on_pool(F& work) {
  using R = std::invoke_result_t<F&>;
  // co_spawn needs a default-constructible result; Result<T> is not.
  auto out = co_await asio::co_spawn(
      pool_, [&work]() -> asio::awaitable<std::optional<R>> { co_return work(); },
      asio::use_awaitable);
  co_return std::move(*out);
}

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
    auto release = [this]() { return index_.release_outbox_leases(owner_, now_ms()); };
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
  {
    std::lock_guard lock(reason_mu_);
    s.pause_reason = pause_reason_;
  }
  s.consecutive_failures = consecutive_failures_;
  s.open_associations = open_associations_;
  s.counts.forwarded = counters_.forwarded;
  s.counts.warnings = counters_.warnings;
  s.counts.failed = counters_.failed;
  s.counts.retried = counters_.retried;
  s.counts.dead = counters_.dead;
  s.counts.bytes = counters_.bytes;
  s.counts.associations_opened = counters_.associations_opened;
  return s;
}

void Forwarder::set_pause_reason(std::string reason) {
  std::lock_guard lock(reason_mu_);
  pause_reason_ = std::move(reason);
}

// ---- tasks -------------------------------------------------------------------------------------

asio::awaitable<void> Forwarder::run() {
  // Rows this owner still holds were claimed by a previous run of this node that did not stop
  // cleanly: nobody is sending them, so they need not wait for their lease to expire.
  auto release = [this]() { return index_.release_outbox_leases(owner_, now_ms()); };
  auto st = co_await on_pool(release);
  if (!st.ok()) {
    log()->warn("event=lease_release_failed destination={} reason=\"{}\"", name_,
                st.error().message);
  }
  if (stopping_) co_return;
  const auto& d = settings_->destination;
  log()->info(
      "event=forwarder_started destination={} host={} port={} called_ae={} tls={} "
      "max_associations={}",
      name_, d.host, d.port, d.ae_title, d.tls_enabled, d.max_associations);
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
    const auto settings = settings_;
    const std::size_t batch = std::max<std::uint32_t>(1, settings->forwarding.batch);
    const std::int64_t lease = to_ms(settings->forwarding.lease);
    auto claim = [&]() { return index_.claim_outbox(name_, batch, owner_, now_ms(), lease); };
    auto claimed = co_await on_pool(claim);
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
    co_await process_batch(conn, std::move(claimed).value());
  }
}

asio::awaitable<void> Forwarder::idle(Connection& conn, std::uint64_t seen_generation) {
  auto next_due = [this]() { return index_.next_outbox_due(name_); };
  auto due = co_await on_pool(next_due);
  const auto now = SteadyClock::now();
  auto deadline = now + kMaxIdleSleep;
  if (due.ok() && due->has_value()) {
    const auto wait = milliseconds(std::max<std::int64_t>(0, **due - now_ms()));
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
    if (stopping_ || inflight_rows_ == 0) continue;
    const std::int64_t lease_ms = to_ms(settings_->forwarding.lease);
    auto renew = [this, lease_ms]() {
      return index_.renew_outbox_leases(owner_, now_ms(), lease_ms);
    };
    auto st = co_await on_pool(renew);
    if (!st.ok()) {
      log()->warn("event=lease_renewal_failed destination={} reason=\"{}\"", name_,
                  st.error().message);
    }
  }
}

// ---- one batch ---------------------------------------------------------------------------------

asio::awaitable<void> Forwarder::process_batch(Connection& conn,
                                               std::vector<index::OutboxItem> items) {
  inflight_rows_ += items.size();
  // Reading the Part 10 headers is file I/O: the worker pool.
  auto prepare = [this, &items]() {
    std::vector<core::Result<dicom::SendItem>> out;
    out.reserve(items.size());
    for (const auto& item : items) {
      out.push_back(dicom::prepare_send_item(data_dir_ / item.storage_path, open_file_));
    }
    return out;
  };
  auto prepared = co_await on_pool(prepare);
  auto pair_of = [&prepared](std::size_t i) {
    const auto& meta = prepared[i]->header.meta;
    return Pair{meta.media_storage_sop_class_uid, meta.transfer_syntax_uid};
  };
  if (conn.assoc && conn.settings_generation != settings_generation_) {
    co_await close_connection(conn, "settings changed");
  }
  RowUpdates updates(*this, conn);
  // A failure that ends the batch: rows i.. share its reason and one jitter draw, so rows that
  // were claimed together stay together (the next claim takes them on one association instead
  // of one connection attempt per row); one log line for all, written by the caller.
  std::size_t i = 0;
  auto finish_rest = [&](const Classification& c) {
    const double draw = random_();
    const Random same = [draw]() { return draw; };
    for (std::size_t j = i; j < items.size(); ++j) {
      finish(updates, items[j], prepared[j].ok() ? c : unreadable_file(prepared[j].error()), &same);
    }
    i = items.size();
  };
  // An association kept open between batches may have been closed by the peer meanwhile (its
  // own idle timeout); the first failure on it earns one fresh association, not a retry.
  bool may_be_stale = conn.assoc && conn.used;
  while (i < items.size() && !stopping_) {
    const auto& item = items[i];
    if (!prepared[i].ok()) {
      finish(updates, item, unreadable_file(prepared[i].error()));
      ++i;
      continue;
    }
    const Pair pair = pair_of(i);
    if (!conn.assoc || !conn.proposed.contains(pair)) {
      const auto old_pairs = std::move(conn.proposed);
      co_await close_connection(conn, "needs other presentation contexts");
      // What this batch still needs, in order, then what the old association had (later
      // batches of the same kind then fit), within the 128 presentation contexts.
      std::vector<Pair> pairs;
      std::set<Pair> seen;
      for (std::size_t j = i; j < items.size() && pairs.size() < kMaxContexts; ++j) {
        if (prepared[j].ok() && seen.insert(pair_of(j)).second) pairs.push_back(pair_of(j));
      }
      for (const auto& p : old_pairs) {
        if (pairs.size() < kMaxContexts && seen.insert(p).second) pairs.push_back(p);
      }
      std::optional<dicom::AssociateRj> rejection;
      auto opened = co_await open_connection(conn, std::move(pairs), rejection);
      if (!opened.ok()) {
        const auto c = classify_association_failure(opened.error(), rejection);
        log()->warn("event=association_failed destination={} rows={} reason=\"{}\"", name_,
                    items.size() - i, c.reason);
        finish_rest(c);
        end_attempt(conn, c.reason);
        note_failure(c);
        break;
      }
      may_be_stale = false;
    }
    if (conn.assoc->association().find_context(pair.first, pair.second) == nullptr) {
      finish(updates, item, not_accepted(pair.first, pair.second));
      ++i;
      continue;
    }
    auto rsp = co_await conn.assoc->store(*prepared[i]);
    if (!rsp.ok()) {
      const auto code = rsp.error().code;
      if (code == ErrorCode::kInvalidArgument || code == ErrorCode::kUnsupported ||
          code == ErrorCode::kConfig) {
        // Refused before anything was sent (a broken file, a missing key): the association is
        // intact.
        finish(updates, item, unreadable_file(rsp.error()));
        ++i;
        continue;
      }
      if (code == ErrorCode::kDataLoss) {
        // The stored file failed authentication (ADR 010): it is never forwarded. If its data
        // set had begun, store() aborted the association; the next item gets a new one.
        if (conn.assoc->association().state() != dicom::State::kSta6) {
          conn.assoc.reset();
          --open_associations_;
          end_attempt(conn, rsp.error().message);
        }
        log()->error("event=stored_file_corrupt destination={} outbox_id={} reason=\"{}\"", name_,
                     item.id, rsp.error().message);
        finish(updates, item, unreadable_file(rsp.error()));
        ++i;
        continue;
      }
      conn.assoc.reset();  // the transfer broke off: close the transport
      --open_associations_;
      if (may_be_stale) {
        may_be_stale = false;
        log()->info("event=association_lost destination={} reason=\"{}\" action=reconnect", name_,
                    rsp.error().message);
        end_attempt(conn, rsp.error().message);
        continue;  // the same item, on a new association
      }
      const auto c = classify_association_failure(rsp.error());
      log()->warn("event=transfer_failed destination={} rows={} reason=\"{}\"", name_,
                  items.size() - i, c.reason);
      finish_rest(c);
      end_attempt(conn, c.reason);
      note_failure(c);
      break;
    }
    may_be_stale = false;
    ++conn.stores;
    conn.idle_deadline = SteadyClock::now() + settings_->forwarding.association_idle_timeout;
    const auto c = rsp->status ? classify_status(*rsp->status, rsp->error_comment)
                               : classify_association_failure(make_error(
                                     ErrorCode::kProtocol, "C-STORE response without a status"));
    finish(updates, item, c);
    if (c.outcome == Outcome::kTransient) {
      note_failure(c);
    } else if (c.outcome != Outcome::kPermanent) {
      note_success();
    }
    ++i;
    if (paused_ && i < items.size()) {
      // The breaker opened on this response: the rest of the batch waits like the rows that
      // were never claimed.
      finish_rest(c);
      break;
    }
  }
  // Rows left when stopping stay leased to us; stop() gives them back.
  co_await updates.flush();
  if (conn.assoc) conn.used = true;
  inflight_rows_ -= items.size();
}

void Forwarder::finish(RowUpdates& updates, const index::OutboxItem& item, const Classification& c,
                       const Random* shared_draw) {
  const bool log_failure = shared_draw == nullptr;
  auto d = decide(c, item, settings_->destination.retry, now_ms(),
                  shared_draw != nullptr ? *shared_draw : random_);
  switch (d.action) {
    case Decision::Action::kComplete:
      ++counters_.forwarded;
      if (d.result.warning) ++counters_.warnings;
      counters_.bytes += static_cast<std::uint64_t>(std::max<std::int64_t>(0, item.size_bytes));
      if (d.result.warning) {
        log()->info("event=forwarded_with_warning destination={} sop_instance_uid={} reason=\"{}\"",
                    name_, item.sop_instance_uid, d.result.comment);
      } else {
        log()->debug("event=forwarded destination={} sop_instance_uid={}", name_,
                     item.sop_instance_uid);
      }
      break;
    case Decision::Action::kReschedule:
      ++counters_.failed;
      ++counters_.retried;
      if (log_failure) {
        log()->warn(
            "event=forward_failed destination={} outbox_id={} attempts={} retry_in={} "
            "reason=\"{}\"",
            name_, item.id, item.attempts,
            format_duration(milliseconds(d.next_attempt_at_ms - now_ms())), d.result.comment);
      }
      log()->debug("event=rescheduled destination={} sop_instance_uid={}", name_,
                   item.sop_instance_uid);
      break;
    case Decision::Action::kFail:
      ++counters_.failed;
      ++counters_.dead;
      // Dead letters are rare and need an operator: always one line each.
      log()->warn("event=dead_letter destination={} outbox_id={} attempts={} reason=\"{}\"", name_,
                  item.id, item.attempts, d.result.comment);
      break;
  }
  if (observer_ != nullptr) observer_->row_finished(name_, updates.serial(), item, d);
  updates.push(item.id, std::move(d));
}

// ---- associations ------------------------------------------------------------------------------

asio::awaitable<core::Result<std::shared_ptr<const tls::TlsContext>>> Forwarder::tls_context() {
  if (tls_context_ && tls_generation_ == settings_generation_) co_return tls_context_;
  const auto generation = settings_generation_;
  const dicom::ScuTlsOptions o = destination_tls_options(settings_->destination);
  // Reading certificate and key files is blocking: the worker pool.
  auto make = [&o]() { return o.make_context(); };
  auto made = co_await on_pool(make);
  if (!made.ok()) {
    co_return make_error(made.error().code,
                         "TLS settings of destination " + name_ + ": " + made.error().message);
  }
  if (generation == settings_generation_ && tls_context_ != *made) {
    tls_context_ = *made;
    tls_generation_ = generation;
    for (const auto& w : (*made)->warnings()) {
      log()->warn("event=tls_warning destination={} reason=\"{}\"", name_, w);
    }
  }
  co_return std::move(made).value();
}

asio::awaitable<core::Result<dicom::ScuOptions>> Forwarder::scu_options() {
  const auto settings = settings_;
  const auto& d = settings->destination;
  dicom::ScuOptions o = destination_scu_options(d, settings->gateway_ae_title);
  // The channel's read deadline outlives the last response by this much; an association kept
  // for reuse must survive its idle period.
  o.response_timeout = std::max<dicom::Clock::duration>(
      o.response_timeout, settings->forwarding.association_idle_timeout + std::chrono::seconds(60));
  if (d.tls_enabled) {
    auto context = co_await tls_context();
    if (!context.ok()) co_return context.error();
    dicom::ScuTlsOptions t = destination_tls_options(d);
    t.context = std::move(context).value();
    o.tls = std::move(t);
  }
  co_return o;
}

asio::awaitable<core::Status> Forwarder::open_connection(
    Connection& conn, std::vector<Pair> pairs, std::optional<dicom::AssociateRj>& rejection) {
  const auto generation = settings_generation_;
  conn.serial = ++next_association_serial;  // an attempt, even if it fails below
  auto options = co_await scu_options();
  if (!options.ok()) co_return options.error();
  std::vector<dicom::PresentationContextRq> contexts;
  std::uint8_t id = 1;
  for (const auto& [sop_class, transfer_syntax] : pairs) {
    contexts.push_back({id, sop_class, {transfer_syntax}});
    id = static_cast<std::uint8_t>(id + 2);
  }
  auto assoc =
      co_await dicom::ScuAssociation::open(strand_, *options, std::move(contexts), &rejection);
  if (!assoc.ok()) co_return assoc.error();
  conn.assoc = std::move(assoc).value();
  conn.proposed = std::set<Pair>(pairs.begin(), pairs.end());
  conn.settings_generation = generation;
  conn.idle_deadline = SteadyClock::now() + settings_->forwarding.association_idle_timeout;
  conn.used = false;
  conn.stores = 0;
  ++counters_.associations_opened;
  ++open_associations_;
  if (observer_ != nullptr) {
    ForwardAssociation a;
    a.serial = conn.serial;
    a.destination = name_;
    a.host = options->host;
    a.port = options->port;
    a.calling_ae = options->calling_ae;
    a.called_ae = options->called_ae;
    a.tls = options->tls.has_value();
    observer_->association_opened(a);
  }
  log()->info(
      "event=association_opened destination={} host={} port={} tls={} calling_ae={} called_ae={} "
      "proposed={} accepted={}",
      name_, options->host, options->port, options->tls.has_value(), options->calling_ae,
      options->called_ae, pairs.size(), conn.assoc->association().contexts().size());
  co_return core::Status{};
}

asio::awaitable<void> Forwarder::close_connection(Connection& conn, const char* why) {
  if (!conn.assoc) co_return;
  auto assoc = std::move(conn.assoc);
  const auto stores = conn.stores;
  conn.proposed.clear();
  conn.used = false;
  --open_associations_;
  auto st = co_await assoc->release();
  log()->info("event=association_released destination={} instances={} reason=\"{}\"{}", name_,
              stores, why, st.ok() ? "" : " release_error=\"" + st.error().message + "\"");
  end_attempt(conn, st.ok() ? std::string() : "release failed: " + st.error().message);
}

void Forwarder::end_attempt(Connection& conn, const std::string& error) {
  if (conn.serial == 0) return;
  if (observer_ != nullptr) observer_->association_ended(name_, conn.serial, error);
  conn.serial = 0;
}

// ---- circuit breaker ---------------------------------------------------------------------------

void Forwarder::note_failure(const Classification& c) {
  if (!c.counts_for_breaker) return;
  const auto failures = ++consecutive_failures_;
  const auto threshold = settings_->forwarding.circuit_breaker_failures;
  if (paused_ || threshold == 0) return;
  if (failures >= threshold || c.opens_breaker) pause(c.reason);
}

void Forwarder::note_success() {
  consecutive_failures_ = 0;
  if (paused_) resume();
}

void Forwarder::pause(const std::string& reason) {
  paused_ = true;
  paused_at_ = SteadyClock::now();
  set_pause_reason(reason);
  const auto interval = settings_->forwarding.probe_interval;
  log()->warn("event=destination_paused destination={} failures={} probe_every={} reason=\"{}\"",
              name_, consecutive_failures_.load(), format_duration(interval), reason);
  wake_.notify_all();  // idle workers release their associations
  if (!probing_) {
    probing_ = true;
    spawn(probe_loop());
  }
}

void Forwarder::resume() {
  paused_ = false;
  consecutive_failures_ = 0;
  set_pause_reason({});
  log()->info(
      "event=destination_reachable destination={} paused_for={}", name_,
      format_duration(std::chrono::duration_cast<milliseconds>(SteadyClock::now() - paused_at_)));
  wake_.notify_all();
}

asio::awaitable<void> Forwarder::probe_loop() {
  while (!stopping_ && paused_) {
    const auto seen = control_.generation();
    const auto interval = std::max<SteadyClock::duration>(std::chrono::seconds(1),
                                                          settings_->forwarding.probe_interval);
    co_await control_.wait_until(SteadyClock::now() + interval, seen);
    if (stopping_ || !paused_) break;
    auto st = co_await probe_once();
    if (stopping_ || !paused_) break;
    if (st.ok()) {
      resume();
      break;
    }
    log()->debug("event=probe_failed destination={} reason=\"{}\"", name_, st.error().message);
    set_pause_reason(st.error().message);
  }
  probing_ = false;
}

asio::awaitable<core::Status> Forwarder::probe_once() {
  auto options = co_await scu_options();
  if (!options.ok()) co_return options.error();
  std::vector<dicom::PresentationContextRq> contexts{
      {1,
       std::string(dicom::kVerificationSopClass),
       {std::string(dicom::kImplicitVrLittleEndian)}}};
  auto assoc = co_await dicom::ScuAssociation::open(strand_, *options, std::move(contexts));
  if (!assoc.ok()) co_return assoc.error();
  auto status = co_await (*assoc)->echo();
  (void)co_await (*assoc)->release();
  // A destination that accepts the association but not Verification is reachable all the same.
  if (!status.ok() && status.error().code == ErrorCode::kUnsupported) co_return core::Status{};
  if (!status.ok()) co_return status.error();
  if (*status != dicom::status::kSuccess) {
    co_return make_error(ErrorCode::kRejected, fmt::format("C-ECHO status 0x{:04X}", *status));
  }
  co_return core::Status{};
}

}  // namespace gw::queue
