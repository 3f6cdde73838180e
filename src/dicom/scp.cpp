#include "dicom/scp.h"

#include <algorithm>

#include "core/log.h"
#include "dicom/io_pool.h"
#include "dicom/scp_requests.h"
#include "dicom/tls_channel.h"
#include "dicom/uids.h"

namespace gw::dicom {

using core::ErrorCode;
using core::make_error;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("dicom"); }

bool listed(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

/// A refusal: what the peer is told, the label it is counted under, and plain words.
struct Rejection {
  AssociateRj rj;
  RejectCategory category = RejectCategory::kOther;
  std::string why;
};

/// Decides whether an A-ASSOCIATE-RQ may proceed.
std::optional<Rejection> check_policy(const AssociateRq& rq, const AssociationInfo& info,
                                      const ScpPolicy& policy) {
  auto reject = [](RejectResult result, RejectSource source, std::uint8_t reason,
                   RejectCategory category, std::string why) {
    return Rejection{AssociateRj{result, source, reason}, category, std::move(why)};
  };
  if (rq.application_context != kApplicationContextName) {
    return reject(RejectResult::kPermanent, RejectSource::kServiceUser,
                  reject_reason::kApplicationContextNotSupported, RejectCategory::kOther,
                  "application context not supported");
  }
  if ((rq.protocol_version & 0x0001) == 0) {
    return reject(RejectResult::kPermanent, RejectSource::kServiceProviderAcse,
                  reject_reason::kProtocolVersionNotSupported, RejectCategory::kOther,
                  "protocol version not supported");
  }
  if (!policy.calling_ae_titles.empty() && !listed(policy.calling_ae_titles, rq.calling_ae)) {
    return reject(RejectResult::kPermanent, RejectSource::kServiceUser,
                  reject_reason::kCallingAeNotRecognized, RejectCategory::kCallingAeNotAllowed,
                  "calling AE title not in accept.calling_ae_titles");
  }
  if (!policy.called_ae_titles.empty() && !listed(policy.called_ae_titles, rq.called_ae)) {
    return reject(RejectResult::kPermanent, RejectSource::kServiceUser,
                  reject_reason::kCalledAeNotRecognized, RejectCategory::kCalledAeUnknown,
                  "called AE title not in accept.called_ae_titles");
  }
  if (!info.tls && listed(policy.require_tls_for, rq.calling_ae)) {
    return reject(RejectResult::kPermanent, RejectSource::kServiceUser,
                  reject_reason::kCallingAeNotRecognized, RejectCategory::kTlsRequired,
                  "calling AE title must use TLS (accept.require_tls_for)");
  }
  return std::nullopt;
}

/// Counts a refusal, logs it and tells the observer.
void note_rejection(ScpContext& ctx, const AssociationInfo& info, const Rejection& r) {
  ctx.counters().associations_rejected++;
  ctx.counters().rejected_by_category[static_cast<std::size_t>(r.category)]++;
  log()->warn(
      "assoc={} listener={} peer={} calling_ae=\"{}\" called_ae=\"{}\" event=association_rejected "
      "category={} reason=\"{}\" rj=\"{}\"",
      info.id, info.listener, info.peer_address, core::log_safe(info.calling_ae),
      core::log_safe(info.called_ae), to_string(r.category), core::log_safe(r.why), describe(r.rj));
  if (auto* observer = ctx.observer()) observer->association_rejected(info, r.category, r.why);
}

/// Counts a failed TLS handshake under its label, logs it and tells the observer.
void note_handshake_failure(ScpContext& ctx, const std::string& listener, const std::string& peer,
                            const tls::VerifyFailure& verify, const core::Error& error) {
  const auto reason = tls::classify_handshake(verify, error.message);
  ctx.counters().tls_handshake_failures++;
  ctx.counters().tls_failures_by_reason[static_cast<std::size_t>(reason)]++;
  // A connection that closes before saying anything is a port probe or health check: it is
  // counted (under "other") but neither warned about nor audited.
  const bool probe = error.code == core::ErrorCode::kIo;
  log()->log(probe ? spdlog::level::info : spdlog::level::warn,
             "listener={} peer={} event=tls_handshake_failed category={} reason=\"{}\"", listener,
             peer, tls::to_string(reason), error.message);
  auto* observer = ctx.observer();
  if (observer == nullptr || probe) return;
  AssociationInfo info;
  info.listener = listener;
  info.peer_address = peer;
  info.tls = true;
  if (verify.failed() && verify.depth == 0) info.tls_subject = verify.subject;
  observer->tls_handshake_failed(info, reason, error.message);
}

}  // namespace

std::string_view to_string(RejectCategory category) {
  switch (category) {
    case RejectCategory::kCallingAeNotAllowed:
      return "calling_ae_not_allowed";
    case RejectCategory::kCalledAeUnknown:
      return "called_ae_unknown";
    case RejectCategory::kTlsRequired:
      return "tls_required";
    case RejectCategory::kPeerBinding:
      return "peer_binding";
    case RejectCategory::kLocalLimit:
      return "local_limit";
    case RejectCategory::kOther:
      break;
  }
  return "other";
}

std::string_view to_string(AssociationEnd end) {
  switch (end) {
    case AssociationEnd::kReleased:
      return "released";
    case AssociationEnd::kAborted:
      return "aborted";
    case AssociationEnd::kError:
      break;
  }
  return "error";
}

// ---- ScpContext --------------------------------------------------------------------------------

std::uint64_t ScpContext::register_connection(std::shared_ptr<Channel> channel,
                                              std::atomic<bool>* idle) {
  std::lock_guard lock(mu_);
  const std::uint64_t id = ++next_id_;
  connections_[id] = Live{channel, idle};
  ++active_;
  return id;
}

void ScpContext::unregister_connection(std::uint64_t id) {
  std::lock_guard lock(mu_);
  connections_.erase(id);
  --active_;
}

bool ScpContext::try_acquire_slot(std::uint32_t max_associations) {
  if (slots_.fetch_add(1) >= max_associations) {
    slots_.fetch_sub(1);
    return false;
  }
  return true;
}

void ScpContext::release_slot() { slots_.fetch_sub(1); }

bool ScpContext::try_open_connection() {
  const auto p = policy();
  const std::uint64_t cap =
      std::uint64_t{p->max_associations} + std::uint64_t{p->max_pending_connections};
  if (open_connections_.fetch_add(1) >= cap) {
    open_connections_.fetch_sub(1);
    return false;
  }
  return true;
}

void ScpContext::begin_shutdown() {
  stopping_ = true;
  std::lock_guard lock(mu_);
  for (auto& [id, live] : connections_) {
    auto channel = live.channel.lock();
    if (!channel || !live.idle->load()) continue;
    // Wake the idle reader on its own strand; it sees stopping() and ends the association.
    asio::post(channel->executor(), [channel]() {
      channel->mark_cancelled();
      channel->cancel();
    });
  }
}

// ---- connection --------------------------------------------------------------------------------

asio::awaitable<void> serve_connection(std::shared_ptr<Channel> channel, std::string listener,
                                       ScpContext& ctx) {
  const auto policy = ctx.policy();
  auto run = std::make_shared<AssociationRun>(channel, policy->limits);
  AssociationInfo& info = run->info;
  Association& assoc = run->assoc;
  info.id = ctx.register_connection(channel, &run->idle);
  info.listener = std::move(listener);
  info.peer_address = channel->peer_address();
  info.tls = channel->is_tls();
  if (const auto* t = dynamic_cast<const TlsChannel*>(channel.get())) {
    info.tls_subject = t->peer_certificate_subject();
    info.tls_peer = t->peer_identity();
    info.tls_protocol = t->protocol();
    info.tls_cipher = t->cipher();
  }
  struct Unregister {
    ScpContext& ctx;
    std::uint64_t id;
    ~Unregister() { ctx.unregister_connection(id); }
  } unregister{ctx, info.id};

  auto rq = co_await assoc.receive_associate_rq();
  if (!rq.ok()) {
    ctx.counters().associations_aborted++;
    log()->info("assoc={} listener={} peer={} event=association_failed reason=\"{}\"", info.id,
                info.listener, info.peer_address, rq.error().message);
    channel->close();
    co_return;
  }
  info.calling_ae = rq->calling_ae;
  info.called_ae = rq->called_ae;
  for (const auto& pc : rq->contexts) {
    if (pc.abstract_syntax.empty() || pc.transfer_syntaxes.empty()) {
      log()->info(
          "assoc={} event=presentation_context_malformed pcid={} reason=\"no single abstract "
          "syntax or no transfer syntax\"",
          info.id, pc.id);
    }
  }
  for (const std::uint8_t type : rq->user_info.skipped_sub_items) {
    log()->info("assoc={} event=user_information_sub_item_skipped type=0x{:02X}", info.id, type);
  }

  auto rejection = check_policy(*rq, info, *policy);
  if (!rejection) {
    if (auto refused = tls::check_peer_identity(policy->peers, info.calling_ae, info.tls_peer)) {
      ctx.counters().associations_rejected_identity++;
      rejection = Rejection{AssociateRj{RejectResult::kPermanent, RejectSource::kServiceUser,
                                        reject_reason::kCallingAeNotRecognized},
                            RejectCategory::kPeerBinding, std::move(*refused)};
    }
  }
  if (!rejection && ctx.stopping()) {
    rejection =
        Rejection{AssociateRj{RejectResult::kTransient, RejectSource::kServiceProviderPresentation,
                              reject_reason::kTemporaryCongestion},
                  RejectCategory::kOther, "shutting down"};
  }
  if (!rejection && !ctx.try_acquire_slot(policy->max_associations)) {
    rejection =
        Rejection{AssociateRj{RejectResult::kTransient, RejectSource::kServiceProviderPresentation,
                              reject_reason::kLocalLimitExceeded},
                  RejectCategory::kLocalLimit, "max_associations reached"};
  }
  if (rejection) {
    note_rejection(ctx, info, *rejection);
    co_await assoc.send_associate_rj(rejection->rj);
    co_return;
  }
  struct SlotGuard {
    ScpContext& ctx;
    ~SlotGuard() { ctx.release_slot(); }
  } slot_guard{ctx};

  AssociateAc ac;
  ac.called_ae = rq->called_ae;
  ac.calling_ae = rq->calling_ae;
  ac.contexts = negotiate(rq->contexts, policy->negotiation);
  ac.user_info.max_pdu_length = policy->limits.max_pdu_length;
  ac.user_info.implementation_class_uid = std::string(kImplementationClassUid);
  ac.user_info.implementation_version_name = std::string(kImplementationVersionName);
  ac.user_info.async_ops_window =
      answer_async_window(rq->user_info.async_ops_window, policy->max_async_operations);
  info.async_window =
      granted_async_window(ac.user_info.async_ops_window, policy->max_async_operations);
  if (auto st = co_await assoc.send_associate_ac(*rq, ac); !st.ok()) {
    ctx.counters().associations_aborted++;
    channel->close();
    co_return;
  }
  ctx.counters().associations_accepted++;
  log()->info(
      "assoc={} listener={} peer={} calling_ae=\"{}\" called_ae=\"{}\" tls={} tls_subject=\"{}\" "
      "contexts={}/{} async_window={} event=association_accepted",
      info.id, info.listener, info.peer_address, core::log_safe(info.calling_ae),
      core::log_safe(info.called_ae), info.tls, info.tls_subject, assoc.contexts().size(),
      rq->contexts.size(), info.async_window);
  // However the association ends (even when the coroutine is destroyed at shutdown), the
  // observer hears of it once, so the association's summary is written.
  struct EndNotice {
    AssociationObserver* observer;
    const AssociationInfo& info;
    AssociationEnd end = AssociationEnd::kError;
    ~EndNotice() {
      if (observer != nullptr) observer->association_ended(info, end);
    }
  } end_notice{ctx.observer(), info};
  if (auto* observer = ctx.observer()) observer->association_accepted(info);
  end_notice.end = co_await serve_requests(run, ctx);
}

asio::awaitable<void> serve_tls_connection(asio::ip::tcp::socket socket,
                                           std::shared_ptr<const tls::TlsContext> snapshot,
                                           std::string listener, ScpContext& ctx) {
  const std::string peer = remote_endpoint_string(socket);
  auto channel = TlsChannel::create(std::move(socket), snapshot);
  if (!channel.ok()) {
    note_handshake_failure(ctx, listener, peer, {}, channel.error());
    co_return;
  }
  auto handshake = co_await (*channel)->handshake_server(ctx.policy()->limits.artim);
  if (!handshake.ok()) {
    // Under no_verify a verification failure was accepted: it is not why this one failed.
    const tls::VerifyFailure verify =
        snapshot->no_verify() ? tls::VerifyFailure{} : (*channel)->verify_failure();
    note_handshake_failure(ctx, listener, peer, verify, handshake.error());
    (*channel)->close();
    co_return;
  }
  const auto& t = **channel;
  log()->info(
      "listener={} peer={} event=tls_established protocol={} cipher={} peer_subject=\"{}\" "
      "peer_sha256={}",
      listener, peer, t.protocol(), t.cipher(), t.peer_certificate_subject(),
      t.peer_certificate_sha256());
  if (snapshot->no_verify()) {
    const auto& v = t.verify_failure();
    log()->warn(
        "listener={} peer={} event=tls_no_verify reason=\"tls.no_verify is true: the peer "
        "certificate was not verified\" would_have_failed=\"{}\"",
        listener, peer,
        v.failed() ? tls::describe_verify_error(v.error, tls::Side::kServer) : std::string("no"));
  }
  co_await serve_connection(std::move(channel).value(), std::move(listener), ctx);
}

// ---- Listener ----------------------------------------------------------------------------------

Listener::Listener(asio::io_context& io, std::string name, asio::ip::tcp::acceptor acceptor,
                   ScpContext& context, std::shared_ptr<tls::TlsContextHolder> tls)
    : io_(io),
      name_(std::move(name)),
      acceptor_(std::move(acceptor)),
      context_(context),
      tls_(std::move(tls)) {
  std::error_code ec;
  port_ = acceptor_.local_endpoint(ec).port();
}

Result<std::unique_ptr<Listener>> Listener::create(asio::io_context& io, std::string name,
                                                   const std::string& bind, std::uint16_t port,
                                                   ScpContext& context,
                                                   std::shared_ptr<tls::TlsContextHolder> tls) {
  std::error_code ec;
  auto address = asio::ip::make_address(bind, ec);
  if (ec) return make_error(ErrorCode::kConfig, "listener " + name + ": bad bind address " + bind);
  asio::ip::tcp::endpoint endpoint(address, port);
  asio::ip::tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "listener " + name + ": cannot listen on " + bind + ":" +
                                          std::to_string(port) + ": " + ec.message());
  }
  return std::unique_ptr<Listener>(
      new Listener(io, std::move(name), std::move(acceptor), context, std::move(tls)));
}

void Listener::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), [](std::exception_ptr e) {
    if (e) log()->error("event=accept_loop_failed");
  });
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [this]() {
    std::error_code ec;
    acceptor_.close(ec);
  });
}

asio::awaitable<void> Listener::accept_loop() {
  asio::steady_timer backoff(acceptor_.get_executor());
  while (acceptor_.is_open()) {
    // Each connection's executor: one pool thread for its whole life, or a strand.
    asio::any_io_executor home = pool_ ? pool_->next() : asio::make_strand(io_);
    auto [ec, socket] = co_await acceptor_.async_accept(home, use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      log()->warn("listener={} event=accept_failed reason=\"{}\"", name_, ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));  // e.g. EMFILE: do not spin
      co_await backoff.async_wait(use_nothrow);
      continue;
    }
    if (!context_.try_open_connection()) {
      // Before any read or allocation: silent connections cannot pile up (no RJ: the peer has
      // not said anything yet). Logged once per second at most.
      const auto refused = ++context_.counters().connections_refused;
      const auto now = Clock::now();
      if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
        last_refusal_log_ = now;
        log()->warn(
            "listener={} peer={} event=connection_refused reason=too_many_connections "
            "refused_total={}",
            name_, remote_endpoint_string(socket), refused);
      }
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto done = [&ctx = context_](std::exception_ptr e) {
      ctx.close_connection();
      if (e) log()->error("event=connection_failed reason=exception");
    };
    if (tls_) {
      // The snapshot current at accept time serves this connection to its end.
      auto executor = socket.get_executor();
      asio::co_spawn(executor,
                     serve_tls_connection(std::move(socket), tls_->current(), name_, context_),
                     done);
      continue;
    }
    auto channel = TcpChannel::create(std::move(socket));
    asio::co_spawn(channel->executor(), serve_connection(channel, name_, context_), done);
  }
}

}  // namespace gw::dicom
