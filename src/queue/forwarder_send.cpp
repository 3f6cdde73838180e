// One worker's send loop on one association (Forwarder::process_batch: a claimed batch, and
// with a window the batches claimed ahead while its responses are outstanding) and each row's
// outcome (Forwarder::finish).

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>

#include "core/check.h"
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

/// Claims one process_batch call makes while responses are outstanding (ADR 014).
constexpr std::size_t kMaxClaimsAhead = 8;

}  // namespace

asio::awaitable<void> Forwarder::process_batch(Connection& conn, std::size_t worker,
                                               std::vector<index::OutboxItem> items) {
  hold_rows(items);
  auto prepared = co_await prepare_on_pool(items);
  // Set when a stored file fails a read while its data set is being sent (note_read_errors).
  const auto read_failed = std::make_shared<bool>(false);
  auto watch_reads = [&read_failed](std::vector<core::Result<dicom::SendItem>>& batch) {
    for (auto& p : batch) {
      if (p.ok()) p->open = note_read_errors(std::move(p->open), read_failed);
    }
  };
  watch_reads(prepared);
  if (conn.assoc && conn.settings_generation != settings_generation_) {
    co_await close_connection(conn, "settings changed");
  }
  OutboxWriter updates(index_, pool_, strand_, owner_, name_);
  // Rows not sent yet, in claim order, and rows sent whose response has not come yet, by
  // Message ID: up to the window the destination granted (1 without one). Every outstanding row
  // comes before every unsent one.
  std::deque<std::size_t> unsent(items.size());
  std::iota(unsent.begin(), unsent.end(), std::size_t{0});
  std::map<std::uint16_t, std::size_t> outstanding;
  // An association kept open between batches may have been closed by the peer meanwhile (its
  // own idle timeout); a failure before its first response earns one fresh association, not a
  // retry.
  bool may_be_stale = conn.assoc && conn.used;

  // The end of a row whose own stored file failed it: at its header read (prepare_batch) or
  // while it was being sent. A file that no longer matches its recorded digest (changed on disk
  // since it was received, send_batch.h check_digest) goes dead at once, with a warning that
  // names it (no patient data: the SOP Instance UID and where the file is).
  auto file_failed = [&](const index::OutboxItem& item, const core::Error& error,
                         std::size_t resent) {
    if (!is_digest_mismatch(error)) return unreadable_file(error);
    log()->warn(
        "event=forward_digest_mismatch destination={} outbox_id={} sop_instance_uid={} "
        "storage_path={} resent={} action=dead_letter reason=\"{}\"",
        name_, item.id, item.sop_instance_uid, item.storage_path, resent, kDigestMismatch);
    return digest_mismatch(item.storage_path, kDigestMismatch);
  };
  // A row finished without being sent lets go of the reader prepare_batch may have kept open
  // for it (a later send would open the file again).
  auto let_go = [&](std::size_t j) {
    if (prepared[j].ok()) prepared[j]->open = open_file_;
  };
  // A failure that ends the batch: the unsent rows share its reason and one jitter draw, so
  // rows that were claimed together stay together (the next claim takes them on one association
  // instead of one connection attempt per row); one log line for all, written by the caller.
  auto finish_unsent = [&](const Classification& c) {
    const double draw = random_();
    const Random same = [draw]() { return draw; };
    for (const std::size_t j : unsent) {
      finish(updates, conn.serial, items[j],
             prepared[j].ok() ? c : file_failed(items[j], prepared[j].error(), 0), &same);
      let_go(j);
    }
    unsent.clear();
  };
  // The connection failed: the unsent rows share its reason, in one log line.
  auto abandon_batch = [&](std::string_view event, const Classification& c) {
    log()->warn("event={} destination={} rows={} reason=\"{}\"", event, name_, unsent.size(),
                c.reason);
    finish_unsent(c);
    end_attempt(conn, c.reason);
    note_failure(c);
  };
  // The association is gone: the rows it left unanswered go back in front of the unsent ones
  // (the destination may have stored them: sent again, they may arrive twice).
  auto drop_association = [&]() {
    std::vector<std::size_t> back;
    for (const auto& entry : outstanding) back.push_back(entry.second);
    std::sort(back.begin(), back.end());
    unsent.insert(unsent.begin(), back.begin(), back.end());
    outstanding.clear();
    conn.assoc.reset();  // closes the transport
    --open_associations_;
  };
  // A send or a response failed on the wire. True: go on, on a new association.
  auto transfer_lost = [&](const core::Error& error) {
    drop_association();
    if (may_be_stale) {
      may_be_stale = false;
      log()->info("event=association_lost destination={} reason=\"{}\" action=reconnect", name_,
                  error.message);
      end_attempt(conn, error.message);
      return true;  // the same rows, on a new association
    }
    abandon_batch("transfer_failed", classify_association_failure(error));
    return false;
  };

  // Claims made while the window still has responses outstanding (bounded: the rows of one
  // call stay in memory until it ends, and work() looks at its own conditions between calls).
  std::size_t claims_ahead = 0;
  bool more_due = true;
  std::optional<Classification> last_response;  // of this call's latest response

  while (!unsent.empty() || !outstanding.empty()) {
    if (unsent.empty() && more_due && claims_ahead < kMaxClaimsAhead && !may_be_stale &&
        may_claim_ahead(conn, worker)) {
      // Everything claimed is sent and responses are outstanding: claim the next rows now, so
      // the window stays full instead of draining before every claim (ADR 014).
      ++claims_ahead;
      auto claimed = co_await claim_due();
      if (!claimed.ok() || claimed->empty()) {
        more_due = false;  // nothing due (an index error: work()'s next claim reports it)
        continue;
      }
      auto more = std::move(claimed).value();
      hold_rows(more);
      counters_.claimed_ahead += more.size();
      auto prepared_more = co_await prepare_on_pool(more);
      watch_reads(prepared_more);
      for (std::size_t k = 0; k < more.size(); ++k) {
        unsent.push_back(items.size());
        items.push_back(std::move(more[k]));
        prepared.push_back(std::move(prepared_more[k]));
      }
      continue;
    }
    if (!unsent.empty() && !stopping_) {
      if (paused_) {
        // The breaker is open (on this call's latest response, or on another worker's
        // failures): the unsent rows wait like rows never claimed; the outstanding ones still
        // get their responses.
        finish_unsent(paused_destination(last_response, pause_reason()));
        continue;
      }
      const std::size_t j = unsent.front();
      const auto& item = items[j];
      if (!prepared[j].ok()) {
        finish(updates, conn.serial, item, file_failed(item, prepared[j].error(), 0));
        unsent.pop_front();
        continue;
      }
      const Pair pair = pair_of(*prepared[j]);
      const bool fits = conn.assoc && conn.proposed.contains(pair);
      if (!fits && outstanding.empty()) {
        const auto old_pairs = std::move(conn.proposed);
        co_await close_connection(conn, "needs other presentation contexts");
        std::optional<dicom::AssociateRj> rejection;
        auto opened =
            co_await open_connection(conn, pairs_to_propose(prepared, j, old_pairs), rejection);
        if (!opened.ok()) {
          abandon_batch("association_failed",
                        classify_association_failure(opened.error(), rejection));
          break;
        }
        may_be_stale = false;
        continue;
      }
      if (fits && outstanding.size() < conn.assoc->window()) {
        if (conn.assoc->association().find_context(pair.first, pair.second) == nullptr) {
          finish(updates, conn.serial, item, not_accepted(pair.first, pair.second));
          let_go(j);
          unsent.pop_front();
          continue;
        }
        *read_failed = false;
        auto sent = co_await conn.assoc->send_store(*prepared[j]);
        if (sent.ok()) {
          outstanding.emplace(*sent, j);
          unsent.pop_front();
          continue;
        }
        if (sent.error().code == ErrorCode::kDataLoss || *read_failed) {
          // Our own stored file failed us, not the destination: it failed authentication
          // (kDataLoss, ADR 010: never forwarded), it no longer matches its recorded digest
          // (kDataLoss, check_digest: the read that completed it failed, so its last fragment
          // never went out), or a read of it failed (EIO, ESTALE) or came up short while its
          // data set was being sent. Only this row ends (as when its header cannot be read),
          // and the breaker does not count it. If its data set had begun, send_store() aborted
          // the association; the rows it left unanswered and the next ones get a new one.
          unsent.pop_front();
          std::size_t resent = 0;
          if (!conn.assoc->usable() || !conn.assoc->association().established()) {
            resent = outstanding.size();
            drop_association();
            end_attempt(conn, sent.error().message);
          }
          if (!is_digest_mismatch(sent.error())) {
            log()->error("event={} destination={} outbox_id={} resent={} reason=\"{}\"",
                         sent.error().code == ErrorCode::kDataLoss ? "stored_file_corrupt"
                                                                   : "stored_file_unreadable",
                         name_, item.id, resent, sent.error().message);
          }
          finish(updates, conn.serial, item, file_failed(item, sent.error(), resent));
          continue;
        }
        if (conn.assoc->usable()) {
          // Refused before anything was sent (a broken or unreadable file, a missing key): the
          // association is intact.
          finish(updates, conn.serial, item, unreadable_file(sent.error()));
          unsent.pop_front();
          continue;
        }
        if (!transfer_lost(sent.error())) break;
        continue;
      }
      // Else a response comes first: the window is full, or the next row needs another
      // association and this one still has rows outstanding.
    }
    // Stopping: the rows outstanding get their responses; the unsent ones stay leased to us,
    // and stop() gives them back (unless the association is lost meanwhile: then they share
    // that failure like any others).
    if (outstanding.empty()) break;
    auto rsp = co_await conn.assoc->next_response();
    if (!rsp.ok()) {
      if (!transfer_lost(rsp.error())) break;
      continue;
    }
    // next_response() returns only responses to requests send_store() sent.
    const auto answered = outstanding.find(rsp->message_id_responded_to.value_or(0));
    GW_CHECK(answered != outstanding.end());
    const auto& item = items[answered->second];
    outstanding.erase(answered);
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
    last_response = c;
  }
  co_await finish_missing_files(updates);
  co_await updates.flush();
  if (conn.assoc) conn.used = true;
  let_go_rows(items);
}

void Forwarder::hold_rows(const std::vector<index::OutboxItem>& items) {
  for (const auto& item : items) held_rows_.insert(item.id);
}

void Forwarder::let_go_rows(const std::vector<index::OutboxItem>& items) {
  for (const auto& item : items) {
    const auto it = held_rows_.find(item.id);
    if (it != held_rows_.end()) held_rows_.erase(it);
  }
}

asio::awaitable<void> Forwarder::finish_missing_files(OutboxWriter& updates) {
  auto held = updates.take_held();
  if (held.empty()) co_return;
  // What became of each row's instance (index calls: the worker pool). nullopt: nothing, the
  // file is just missing; 0: overwritten, no newer row; else the newer row's id.
  auto check = [this, &held]() {
    std::vector<std::optional<std::int64_t>> out;
    for (const auto& h : held) {
      auto current = index_.find_outbox(h.item.id);
      if (!current.ok() || !current->has_value() ||
          (*current)->storage_path == h.item.storage_path) {
        out.emplace_back();
        continue;
      }
      auto newer = index_.newer_outbox_row(h.item.id);
      out.emplace_back(newer.ok() && newer->has_value() ? **newer : 0);
    }
    return out;
  };
  const auto fates = co_await on_pool(check);
  for (std::size_t i = 0; i < held.size(); ++i) {
    auto& h = held[i];
    if (!fates[i]) {
      h.classification.file_missing = false;  // not an overwrite: unreadable, as it says
      finish(updates, h.serial, h.item, h.classification);
      continue;
    }
    // Not a delivery and not a failure: no counter, no audit row (the newer row has its own).
    const std::int64_t newer = *fates[i];
    auto d = newer > 0 ? superseded(newer) : replaced_meanwhile(core::wall_clock_ms());
    log()->info("event={} destination={} outbox_id={} newer_outbox_id={} sop_instance_uid={}",
                newer > 0 ? "outbox_row_superseded" : "outbox_row_requeued", name_, h.item.id,
                newer, h.item.sop_instance_uid);
    updates.push(h.item.id, std::move(d));
  }
}

asio::awaitable<std::vector<core::Result<dicom::SendItem>>> Forwarder::prepare_on_pool(
    const std::vector<index::OutboxItem>& items) {
  // Reading the Part 10 headers is file I/O: the worker pool.
  auto prepare = [this, &items]() { return prepare_batch(data_dir_, items, open_file_); };
  co_return co_await on_pool(prepare);
}

void Forwarder::finish(OutboxWriter& updates, std::uint64_t serial, const index::OutboxItem& item,
                       const Classification& c, const Random* shared_draw) {
  if (c.file_missing) {
    updates.hold({serial, item, c});
    return;
  }
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
