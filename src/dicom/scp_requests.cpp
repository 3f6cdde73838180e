#include "dicom/scp_requests.h"

#include "core/log.h"
#include "dicom/uids.h"

namespace gw::dicom {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("dicom"); }

/// Runs blocking work on the worker pool and resumes the caller on its own executor.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> run_blocking(asio::any_io_executor pool, F& work) {
  using R = std::invoke_result_t<F&>;
  co_return co_await asio::co_spawn(
      pool, [&work]() -> asio::awaitable<R> { co_return work(); }, asio::use_awaitable);
}

/// A C-STORE whose data set has been read: what is left is to finish it and answer.
struct ReceivedStore {
  Command rq;
  std::uint8_t pcid = 0;
  std::unique_ptr<StoreSession> session;  ///< null when the outcome was decided early
  StoreOutcome outcome;                   ///< the early outcome (no session)
  std::uint64_t data_set_bytes = 0;
};

/// Reads a C-STORE-RQ's data set into a new store session. nullopt when the association ended
/// in the middle of it (the session's destructor removes the partial spool file).
asio::awaitable<std::optional<ReceivedStore>> receive_store(AssociationRun& run, Command rq,
                                                            std::uint8_t pcid, ScpContext& ctx) {
  ReceivedStore store;
  const PresentationContext* pc = run.assoc.context(pcid);
  if (!rq.has_data_set()) {
    store.outcome = {status::kCannotUnderstand, "C-STORE-RQ without a data set"};
  } else if (pc == nullptr || pc->abstract_syntax != rq.affected_sop_class_uid) {
    store.outcome = {status::kSopClassNotSupported,
                     "affected SOP class differs from the presentation context's abstract syntax"};
  } else if (!is_valid_uid(rq.affected_sop_instance_uid)) {
    store.outcome = {status::kCannotUnderstand, "invalid Affected SOP Instance UID"};
  } else {
    StoreRequest request{&run.info, rq.affected_sop_class_uid, rq.affected_sop_instance_uid,
                         pc->transfer_syntax, run.in_progress > 0};
    auto begun = ctx.store().begin(request);
    if (begun.ok()) {
      store.session = std::move(begun).value();
    } else {
      store.outcome = {core::dimse_status(begun.error().code), begun.error().message};
    }
  }
  if (rq.has_data_set()) {
    auto* session = store.session.get();
    auto received = co_await run.assoc.receive_data_set(
        pcid, [session](std::span<const std::uint8_t> fragment) {
          if (session != nullptr) session->write(fragment);
        });
    if (!received.ok()) {
      ctx.counters().stores_failed++;
      log()->warn("assoc={} event=store_interrupted sop_instance_uid=\"{}\" reason=\"{}\"",
                  run.info.id, core::log_safe(rq.affected_sop_instance_uid),
                  received.error().message);
      co_return std::nullopt;
    }
    ctx.counters().bytes_received += *received;
    store.data_set_bytes = *received;
  }
  store.rq = std::move(rq);
  store.pcid = pcid;
  co_return store;
}

/// Finishes a received store (durable and indexed, on the worker pool unless the store service
/// says that is quick), tells the observer, answers. False when the response could not be sent.
asio::awaitable<bool> complete_store(AssociationRun& run, ReceivedStore store, ScpContext& ctx) {
  StoreOutcome outcome = std::move(store.outcome);
  if (store.session) {
    auto finish = [&store]() { return store.session->finish(); };
    // (An if, not ?: — GCC 12 miscompiles co_await inside a conditional expression.)
    if (ctx.store().finish_is_quick()) {
      outcome = finish();
    } else {
      outcome = co_await run_blocking(ctx.worker_pool(), finish);
    }
    store.session.reset();
  }
  const Command& rq = store.rq;
  const bool stored =
      outcome.status == status::kSuccess || categorize(outcome.status) == StatusCategory::kWarning;
  if (stored) {
    ctx.counters().stores_ok++;
  } else {
    ctx.counters().stores_failed++;
    log()->warn("assoc={} event=store_failed sop_instance_uid=\"{}\" status=0x{:04X} reason=\"{}\"",
                run.info.id, core::log_safe(rq.affected_sop_instance_uid), outcome.status,
                core::log_safe(outcome.error_comment));
  }
  if (auto* observer = ctx.observer()) {
    InstanceOutcome seen;
    seen.sop_class_uid = rq.affected_sop_class_uid;
    seen.sop_instance_uid = rq.affected_sop_instance_uid;
    seen.study_instance_uid = std::move(outcome.study_instance_uid);
    seen.bytes = store.data_set_bytes;
    seen.status = outcome.status;
    seen.stored = stored;
    observer->instance_received(run.info, seen);
  }
  auto sent = co_await run.assoc.send_command(
      store.pcid, make_c_store_rsp(rq, outcome.status, outcome.error_comment));
  co_return sent.ok();
}

/// One store in progress beside the reading loop (window > 1). Its end, however it comes
/// (even the frame's destruction at shutdown), frees its place in the window.
asio::awaitable<void> store_in_progress(std::shared_ptr<AssociationRun> run, ReceivedStore store,
                                        ScpContext& ctx) {
  struct Done {
    AssociationRun& run;
    ScpContext& ctx;
    ~Done() {
      --run.in_progress;
      run.store_ended.notify_all();
      if (run.in_progress == 0 && run.reading) {
        run.idle = true;
        // Shutdown only wakes idle readers; this one became idle after it looked.
        if (ctx.stopping()) {
          run.channel->mark_cancelled();
          run.channel->cancel();
        }
      }
    }
  } done{*run, ctx};
  const bool sent = co_await complete_store(*run, std::move(store), ctx);
  // Refused because the association already ended (an abort went first): nothing to do. A
  // failed write on an established association means the transport failed: close it, so the
  // reading loop sees that too.
  if (!sent && run->assoc.established()) run->channel->close();
}

/// Waits until at most `most` stores are in progress.
asio::awaitable<void> wait_in_progress_at_most(AssociationRun& run, std::uint32_t most) {
  // Bounded in time: each store ends when its finish() returns and its response is written
  // (or the watchdog closes the transport under a write that does not complete).
  while (run.in_progress > most) co_await run.store_ended.wait(run.store_ended.generation());
}

/// Answers a request we do not perform: 0x0211 (unrecognized operation), after reading and
/// discarding its data set. False when the association ended.
asio::awaitable<bool> refuse_request(Association& assoc, const Command& command,
                                     std::uint8_t pcid) {
  if (command.has_data_set()) {
    auto drained = co_await assoc.receive_data_set(pcid, [](auto) {});
    if (!drained.ok()) co_return false;
  }
  Command rsp;
  rsp.command_field =
      static_cast<CommandField>(static_cast<std::uint16_t>(command.command_field) | 0x8000);
  rsp.message_id_responded_to = command.message_id;
  rsp.affected_sop_class_uid = command.affected_sop_class_uid;
  rsp.status = 0x0211;
  co_return (co_await assoc.send_command(pcid, rsp)).ok();
}

}  // namespace

asio::awaitable<AssociationEnd> serve_requests(std::shared_ptr<AssociationRun> run,
                                               ScpContext& ctx) {
  AssociationRun& r = *run;
  Association& assoc = r.assoc;
  const AssociationInfo& info = r.info;
  std::uint64_t messages = 0;
  AssociationEnd end = AssociationEnd::kError;
  while (true) {
    co_await wait_in_progress_at_most(r, info.async_window - 1);  // room for one more
    r.idle = r.in_progress == 0;
    if (ctx.stopping()) {
      co_await wait_in_progress_at_most(r, 0);  // every instance received so far is answered
      log()->info("assoc={} event=association_aborted reason=\"shutting down\"", info.id);
      end = AssociationEnd::kAborted;
      co_await assoc.abort(AbortSource::kServiceUser, abort_reason::kNotSpecified);
      break;
    }
    Command command;
    std::uint8_t pcid = 0;
    r.reading = true;
    auto incoming = co_await assoc.receive_command(command, pcid);
    r.reading = false;
    r.idle = false;
    if (!incoming.ok()) {
      if (r.channel->cancelled() && ctx.stopping()) continue;  // loop top aborts politely
      ctx.counters().associations_aborted++;
      if (incoming.error().code == core::ErrorCode::kTimeout && r.channel->timed_out()) {
        log()->info("assoc={} event=association_aborted reason=\"idle timeout\" messages={}",
                    info.id, messages);
        end = AssociationEnd::kAborted;
        co_await assoc.abort(AbortSource::kServiceProvider, abort_reason::kNotSpecified);
        break;
      }
      log()->info("assoc={} event=association_ended reason=\"{}\" messages={}", info.id,
                  incoming.error().message, messages);
      r.channel->close();
      break;
    }
    if (*incoming == Incoming::kReleaseRq) {
      co_await wait_in_progress_at_most(r, 0);  // answered before the A-RELEASE-RP (Sta8)
      if (auto rp = co_await assoc.send_release_rp(); !rp.ok()) {
        // (A store's response failed meanwhile, or the peer left without waiting for it.)
        log()->info(
            "assoc={} event=association_ended reason=\"A-RELEASE-RP not sent: {}\" "
            "messages={}",
            info.id, rp.error().message, messages);
        break;
      }
      end = AssociationEnd::kReleased;
      log()->info("assoc={} event=association_released messages={}", info.id, messages);
      break;
    }
    if (*incoming == Incoming::kAbort) {
      ctx.counters().associations_aborted++;
      log()->info("assoc={} event=association_aborted_by_peer messages={}", info.id, messages);
      end = AssociationEnd::kAborted;
      break;
    }
    ++messages;
    bool alive = true;
    switch (command.command_field) {
      case CommandField::kCEchoRq: {
        ctx.counters().echoes++;
        alive =
            (co_await assoc.send_command(pcid, make_c_echo_rsp(command, status::kSuccess))).ok();
        break;
      }
      case CommandField::kCStoreRq: {
        auto store = co_await receive_store(r, std::move(command), pcid, ctx);
        if (!store) {
          alive = false;
        } else if (info.async_window <= 1 || ctx.store().finish_is_quick()) {
          // Synchronous, or nothing to overlap: finishing never waits for the disk.
          alive = co_await complete_store(r, std::move(*store), ctx);
        } else {
          ++r.in_progress;
          asio::co_spawn(r.channel->executor(), store_in_progress(run, std::move(*store), ctx),
                         [](std::exception_ptr e) {
                           if (e) log()->error("event=store_failed reason=exception");
                         });
        }
        break;
      }
      case CommandField::kCCancelRq:
        break;  // a C-STORE in progress is past the point where cancelling it means anything
      default:
        if ((static_cast<std::uint16_t>(command.command_field) & 0x8000) != 0) {
          // A response, yet we never send requests: the peer is out of step. Treated like the
          // other protocol errors in a command (A-ABORT, as DCMTK's storescp also does);
          // answering it with another response could set two confused peers ping-ponging.
          ctx.counters().associations_aborted++;
          log()->info(
              "assoc={} event=association_aborted reason=\"unexpected DIMSE response "
              "0x{:04X}\" messages={}",
              info.id, static_cast<std::uint16_t>(command.command_field), messages);
          end = AssociationEnd::kAborted;
          co_await assoc.abort(AbortSource::kServiceProvider,
                               abort_reason::kUnexpectedPduParameter);
          alive = false;
          break;
        }
        alive = co_await refuse_request(assoc, command, pcid);
    }
    if (!alive) {
      r.channel->close();
      break;
    }
  }
  // The stores in progress use the association and report to the observer: they end first.
  co_await wait_in_progress_at_most(r, 0);
  co_return end;
}

}  // namespace gw::dicom
