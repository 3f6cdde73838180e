// One claimed batch on one association (Forwarder::process_batch) and each row's outcome
// (Forwarder::finish).

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "queue/forwarder.h"
#include "queue/forwarder_internal.h"
#include "queue/outbox_writer.h"
#include "queue/send_batch.h"

namespace gw::queue {

using core::ErrorCode;
using core::make_error;
using std::chrono::milliseconds;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

}  // namespace

asio::awaitable<void> Forwarder::process_batch(Connection& conn,
                                               std::vector<index::OutboxItem> items) {
  inflight_rows_ += items.size();
  // Reading the Part 10 headers is file I/O: the worker pool.
  auto prepare = [this, &items]() { return prepare_batch(data_dir_, items, open_file_); };
  auto prepared = co_await on_pool(prepare);
  if (conn.assoc && conn.settings_generation != settings_generation_) {
    co_await close_connection(conn, "settings changed");
  }
  OutboxWriter updates(index_, pool_, strand_, owner_, name_);
  // A failure that ends the batch: rows i.. share its reason and one jitter draw, so rows that
  // were claimed together stay together (the next claim takes them on one association instead
  // of one connection attempt per row); one log line for all, written by the caller.
  std::size_t i = 0;
  auto finish_rest = [&](const Classification& c) {
    const double draw = random_();
    const Random same = [draw]() { return draw; };
    for (std::size_t j = i; j < items.size(); ++j) {
      finish(updates, conn.serial, items[j],
             prepared[j].ok() ? c : unreadable_file(prepared[j].error()), &same);
    }
    i = items.size();
  };
  // The connection failed: the rest of the batch shares its reason, in one log line.
  auto abandon_batch = [&](std::string_view event, const Classification& c) {
    log()->warn("event={} destination={} rows={} reason=\"{}\"", event, name_, items.size() - i,
                c.reason);
    finish_rest(c);
    end_attempt(conn, c.reason);
    note_failure(c);
  };
  // An association kept open between batches may have been closed by the peer meanwhile (its
  // own idle timeout); the first failure on it earns one fresh association, not a retry.
  bool may_be_stale = conn.assoc && conn.used;
  while (i < items.size() && !stopping_) {
    const auto& item = items[i];
    if (!prepared[i].ok()) {
      finish(updates, conn.serial, item, unreadable_file(prepared[i].error()));
      ++i;
      continue;
    }
    const Pair pair = pair_of(*prepared[i]);
    if (!conn.assoc || !conn.proposed.contains(pair)) {
      const auto old_pairs = std::move(conn.proposed);
      co_await close_connection(conn, "needs other presentation contexts");
      std::optional<dicom::AssociateRj> rejection;
      auto opened =
          co_await open_connection(conn, pairs_to_propose(prepared, i, old_pairs), rejection);
      if (!opened.ok()) {
        abandon_batch("association_failed",
                      classify_association_failure(opened.error(), rejection));
        break;
      }
      may_be_stale = false;
    }
    if (conn.assoc->association().find_context(pair.first, pair.second) == nullptr) {
      finish(updates, conn.serial, item, not_accepted(pair.first, pair.second));
      ++i;
      continue;
    }
    auto rsp = co_await conn.assoc->store(*prepared[i]);
    if (!rsp.ok()) {
      const auto code = rsp.error().code;
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
        finish(updates, conn.serial, item, unreadable_file(rsp.error()));
        ++i;
        continue;
      }
      if (conn.assoc->usable()) {
        // Refused before anything was sent (a broken or unreadable file, a missing key): the
        // association is intact.
        finish(updates, conn.serial, item, unreadable_file(rsp.error()));
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
      abandon_batch("transfer_failed", classify_association_failure(rsp.error()));
      break;
    }
    may_be_stale = false;
    ++conn.stores;
    conn.idle_deadline =
        std::chrono::steady_clock::now() + settings_->forwarding.association_idle_timeout;
    const auto c = rsp->status ? classify_status(*rsp->status, rsp->error_comment)
                               : classify_association_failure(make_error(
                                     ErrorCode::kProtocol, "C-STORE response without a status"));
    finish(updates, conn.serial, item, c);
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

void Forwarder::finish(OutboxWriter& updates, std::uint64_t serial, const index::OutboxItem& item,
                       const Classification& c, const Random* shared_draw) {
  const bool log_failure = shared_draw == nullptr;
  auto d = decide(c, item, settings_->destination.retry, core::wall_clock_ms(),
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
            format_duration(milliseconds(d.next_attempt_at_ms - core::wall_clock_ms())),
            d.result.comment);
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
  if (observer_ != nullptr) observer_->row_finished(name_, serial, item, d);
  updates.push(item.id, std::move(d));
}

}  // namespace gw::queue
