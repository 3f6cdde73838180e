#include "dicom/association.h"

#include <algorithm>
#include <array>

#include "core/log.h"

namespace gw::dicom {

using core::Error;
using core::ErrorCode;
using core::make_error;

namespace {

constexpr std::uint32_t kMaxFragment = 1u << 20;  // our own cap when the peer says "no limit"
constexpr std::size_t kSendChunk = 1u << 20;      // bytes read from a source per gathered write
constexpr std::size_t kMaxFragmentsPerWrite = 256;
constexpr auto kLingerLimit = std::chrono::seconds(2);

Error protocol_error(std::string message) {
  return make_error(ErrorCode::kProtocol, std::move(message));
}

}  // namespace

Association::Association(std::shared_ptr<Channel> channel, Role role, AssociationLimits limits)
    : channel_(std::move(channel)), fsm_(role), limits_(limits) {
  if (role == Role::kAcceptor) fsm_.on(Event::kEvt5);  // transport connection indication
}

const PresentationContext* Association::context(std::uint8_t id) const {
  for (const auto& pc : contexts_) {
    if (pc.id == id) return &pc;
  }
  return nullptr;
}

const PresentationContext* Association::find_context(std::string_view abstract_syntax,
                                                     std::string_view transfer_syntax) const {
  for (const auto& pc : contexts_) {
    if (pc.abstract_syntax == abstract_syntax && pc.transfer_syntax == transfer_syntax) return &pc;
  }
  return nullptr;
}

std::uint32_t Association::fragment_limit() const {
  if (peer_max_pdu_ == 0 || peer_max_pdu_ > kMaxFragment) return kMaxFragment;
  // A peer limit of 6 bytes or less leaves no room for data: one byte per PDV, never an
  // unsigned wrap-around into a 4 GiB fragment.
  if (peer_max_pdu_ <= kPdvHeaderSize) return 1;
  return peer_max_pdu_ - static_cast<std::uint32_t>(kPdvHeaderSize);
}

asio::awaitable<void> Association::begin_send_turn() {
  // Bounded in time: a send in progress ends when its write completes or the channel's
  // watchdog closes the transport.
  while (sending_) co_await send_done_.wait(send_done_.generation());
  sending_ = true;
}

void Association::end_send_turn() {
  sending_ = false;
  send_done_.notify_all();
}

asio::awaitable<Status> Association::write(std::span<const std::uint8_t> pdu) {
  co_await begin_send_turn();
  SendTurn turn(this);
  std::array<asio::const_buffer, 1> bufs{asio::buffer(pdu.data(), pdu.size())};
  co_return co_await channel_->write_all(bufs);
}

asio::awaitable<void> Association::close_after_peer() {
  // Sta13: the peer is expected to close the transport; wait briefly so that the PDU we just
  // sent is read before our close (closing with unread data would reset the connection).
  const auto linger = std::min<Clock::duration>(limits_.artim, kLingerLimit);
  channel_->expires_after(linger);
  std::array<std::uint8_t, 4096> sink{};
  for (int i = 0; i < 64; ++i) {                    // bounded: at most 256 KiB discarded
    auto st = co_await channel_->read_exact(sink);  // (the peer's close ends a partial read)
    if (!st.ok()) break;
  }
  channel_->close();
}

asio::awaitable<bool> Association::apply(Event event) {
  const Action action = fsm_.on(event);
  switch (action) {
    case Action::kAa1:
    case Action::kAa8: {
      Abort a{AbortSource::kServiceProvider, abort_reason::kUnexpectedPdu};
      if (event == Event::kEvt19) a.reason = abort_reason::kUnrecognizedPdu;
      auto pdu = encode_abort(a);
      (void)co_await write(pdu);
      co_await close_after_peer();
      co_return false;
    }
    case Action::kAa2:
    case Action::kAa3:
    case Action::kAa4:
    case Action::kAa5:
    case Action::kAa7:
      channel_->close();
      co_return false;
    default:
      co_return true;
  }
}

asio::awaitable<Result<PduType>> Association::read_pdu(Clock::duration timeout) {
  std::array<std::uint8_t, kPduHeaderSize> header{};
  channel_->expires_after(timeout);
  auto st = co_await channel_->read_exact(header);
  if (!st.ok()) {
    if (st.error().code == ErrorCode::kTimeout) fsm_.on(Event::kEvt18);
    co_return std::move(st).error();
  }
  auto parsed = parse_pdu_header(header);
  if (!parsed.ok()) {
    co_await apply(Event::kEvt19);
    co_return parsed.error();
  }
  std::uint32_t limit = 4;
  switch (parsed->type) {
    case PduType::kPDataTf:
      limit = limits_.max_pdu_length;
      break;
    case PduType::kAssociateRq:
    case PduType::kAssociateAc:
      limit = limits_.max_associate_rq_length;
      break;
    default:
      limit = 4;
  }
  if (parsed->length > limit) {
    Abort a{AbortSource::kServiceProvider, abort_reason::kInvalidPduParameterValue};
    fsm_.on(Event::kEvt19);
    (void)co_await write(encode_abort(a));
    co_await close_after_peer();
    co_return protocol_error("PDU length " + std::to_string(parsed->length) + " exceeds limit " +
                             std::to_string(limit));
  }
  // The buffer only grows (bounded by the limits above): no zero-fill of a PDU-sized buffer for
  // every PDU that follows a smaller one.
  if (body_.size() < parsed->length) body_.resize(parsed->length);
  body_length_ = parsed->length;
  st = co_await channel_->read_exact(body());
  if (!st.ok()) co_return std::move(st).error();
  bytes_received_ += kPduHeaderSize + parsed->length;
  co_return parsed->type;
}

// ---- acceptor ----------------------------------------------------------------------------------

asio::awaitable<Result<AssociateRq>> Association::receive_associate_rq() {
  auto type = co_await read_pdu(limits_.artim);
  if (!type.ok()) co_return std::move(type).error();
  switch (*type) {
    case PduType::kAssociateRq: {
      auto rq = parse_associate_rq(body());
      if (!rq.ok()) {
        co_await apply(Event::kEvt19);
        co_return rq.error();
      }
      fsm_.on(Event::kEvt6);  // AE-6: the local policy decides next
      co_return rq;
    }
    case PduType::kAbort:
      co_await apply(Event::kEvt16);
      co_return make_error(ErrorCode::kRejected, "peer aborted before association");
    default:
      co_await apply(Event::kEvt10);  // any other PDU in Sta2 -> AA-1
      co_return protocol_error("expected A-ASSOCIATE-RQ, got PDU type " +
                               std::to_string(static_cast<int>(*type)));
  }
}

asio::awaitable<Status> Association::send_associate_ac(const AssociateRq& rq,
                                                       const AssociateAc& ac) {
  fsm_.on(Event::kEvt7);  // AE-7 -> Sta6
  contexts_.clear();
  for (const auto& acc : ac.contexts) {
    if (acc.result != PcResult::kAcceptance) continue;
    for (const auto& req : rq.contexts) {
      if (req.id == acc.id) {
        contexts_.push_back({acc.id, req.abstract_syntax, acc.transfer_syntax});
        break;
      }
    }
  }
  peer_max_pdu_ = rq.user_info.max_pdu_length;
  co_return co_await write(encode_associate_ac(ac));
}

asio::awaitable<void> Association::send_associate_rj(const AssociateRj& rj) {
  fsm_.on(Event::kEvt8);  // AE-8 -> Sta13
  (void)co_await write(encode_associate_rj(rj));
  co_await close_after_peer();
}

// ---- requestor ---------------------------------------------------------------------------------

asio::awaitable<Status> Association::request(const AssociateRq& rq, Clock::duration timeout) {
  fsm_.on(Event::kEvt1);  // AE-1 -> Sta4
  fsm_.on(Event::kEvt2);  // AE-2 -> Sta5 (the caller connected the channel)
  GW_CO_RETURN_IF_ERROR(co_await write(encode_associate_rq(rq)));
  auto type = co_await read_pdu(timeout);
  if (!type.ok()) co_return std::move(type).error();
  if (*type == PduType::kAssociateRj) {
    fsm_.on(Event::kEvt4);
    auto rj = parse_associate_rj(body());
    channel_->close();
    if (!rj.ok()) co_return rj.error();
    rejection_ = *rj;
    co_return make_error(ErrorCode::kRejected, "association rejected: " + describe(*rj));
  }
  if (*type == PduType::kAbort) {
    fsm_.on(Event::kEvt16);
    auto ab = parse_abort(body());
    channel_->close();
    co_return make_error(ErrorCode::kRejected,
                         "association aborted by peer" + (ab.ok() ? ": " + describe(*ab) : ""));
  }
  if (*type != PduType::kAssociateAc) {
    co_await apply(Event::kEvt19);
    co_return protocol_error("expected A-ASSOCIATE-AC/RJ");
  }
  auto ac = parse_associate_ac(body());
  if (!ac.ok()) {
    co_await apply(Event::kEvt19);
    co_return ac.error();
  }
  fsm_.on(Event::kEvt3);  // AE-3 -> Sta6
  contexts_.clear();
  for (const auto& acc : ac->contexts) {
    if (acc.result != PcResult::kAcceptance) continue;
    for (const auto& req : rq.contexts) {
      if (req.id == acc.id) {
        contexts_.push_back({acc.id, req.abstract_syntax, acc.transfer_syntax});
        break;
      }
    }
  }
  peer_max_pdu_ = ac->user_info.max_pdu_length;
  accepted_window_ = ac->user_info.async_ops_window;
  co_return Status{};
}

asio::awaitable<Status> Association::release() {
  fsm_.on(Event::kEvt11);  // AR-1 -> Sta7
  GW_CO_RETURN_IF_ERROR(co_await write(encode_release_rq()));
  for (int i = 0; i < 1024; ++i) {  // bounded: late P-DATA PDUs are discarded
    auto type = co_await read_pdu(limits_.artim);
    if (!type.ok()) co_return std::move(type).error();
    switch (*type) {
      case PduType::kReleaseRp:
        fsm_.on(Event::kEvt13);
        channel_->close();
        co_return Status{};
      case PduType::kReleaseRq:  // release collision (AR-8): answer, then wait for the RP
        fsm_.on(Event::kEvt12);
        fsm_.on(Event::kEvt14);
        GW_CO_RETURN_IF_ERROR(co_await write(encode_release_rp()));
        continue;
      case PduType::kPDataTf:
        fsm_.on(Event::kEvt10);
        ++discarded_during_release_;
        continue;
      case PduType::kAbort:
        fsm_.on(Event::kEvt16);
        channel_->close();
        co_return make_error(ErrorCode::kRejected, "peer aborted during release");
      default:
        co_await apply(Event::kEvt19);
        co_return protocol_error("unexpected PDU during release");
    }
  }
  channel_->close();
  co_return protocol_error("release: too many PDUs");
}

// ---- data transfer -----------------------------------------------------------------------------

asio::awaitable<Result<std::optional<Incoming>>> Association::next_pdv(Pdv& out) {
  while (next_pdv_ >= pdvs_.size()) {
    auto type = co_await read_pdu(limits_.idle);
    if (!type.ok()) co_return std::move(type).error();
    switch (*type) {
      case PduType::kPDataTf: {
        if (!co_await apply(Event::kEvt10)) co_return protocol_error("unexpected P-DATA-TF");
        auto st = parse_p_data_tf(body(), pdvs_);
        if (!st.ok()) {
          co_await apply(Event::kEvt19);
          co_return std::move(st).error();
        }
        next_pdv_ = 0;
        break;
      }
      case PduType::kReleaseRq:
        if (!co_await apply(Event::kEvt12)) co_return protocol_error("unexpected A-RELEASE-RQ");
        co_return std::optional<Incoming>(Incoming::kReleaseRq);
      case PduType::kAbort:
        fsm_.on(Event::kEvt16);
        channel_->close();
        co_return std::optional<Incoming>(Incoming::kAbort);
      case PduType::kAssociateRq:
        co_await apply(Event::kEvt6);
        co_return protocol_error("A-ASSOCIATE-RQ on an established association");
      case PduType::kAssociateAc:  // recognised but unexpected here: AA-8, reason 2
        co_await apply(Event::kEvt3);
        co_return protocol_error("A-ASSOCIATE-AC on an established association");
      case PduType::kAssociateRj:
        co_await apply(Event::kEvt4);
        co_return protocol_error("A-ASSOCIATE-RJ on an established association");
      case PduType::kReleaseRp:
        co_await apply(Event::kEvt13);
        co_return protocol_error("A-RELEASE-RP without an A-RELEASE-RQ");
      default:
        co_await apply(Event::kEvt19);
        co_return protocol_error("unexpected PDU type " + std::to_string(static_cast<int>(*type)));
    }
  }
  out = pdvs_[next_pdv_++];
  co_return std::optional<Incoming>{};
}

asio::awaitable<Result<Incoming>> Association::receive_command(Command& command,
                                                               std::uint8_t& context_id) {
  std::vector<std::uint8_t> bytes;
  bool started = false;
  while (true) {
    Pdv pdv;
    auto r = co_await next_pdv(pdv);
    if (!r.ok()) co_return std::move(r).error();
    if (r->has_value()) co_return **r;
    std::string violation;
    if (!pdv.is_command) {
      violation = "data set fragment where a command was expected";
    } else if (started && pdv.context_id != context_id) {
      violation = "command fragments on different presentation contexts";
    } else if (context(pdv.context_id) == nullptr) {
      violation = "PDV on presentation context " + std::to_string(pdv.context_id) +
                  " which was not accepted";
    } else if (bytes.size() + pdv.data.size() > limits_.max_command_length) {
      violation = "command set larger than " + std::to_string(limits_.max_command_length);
    }
    if (!violation.empty()) {
      co_await abort(AbortSource::kServiceProvider, abort_reason::kInvalidPduParameterValue);
      co_return protocol_error(violation);
    }
    context_id = pdv.context_id;
    started = true;
    bytes.insert(bytes.end(), pdv.data.begin(), pdv.data.end());
    if (pdv.is_last) break;
  }
  auto parsed = parse_command(bytes);
  if (!parsed.ok()) {
    co_await abort(AbortSource::kServiceProvider, abort_reason::kInvalidPduParameterValue);
    co_return parsed.error();
  }
  command = std::move(parsed).value();
  co_return Incoming::kCommand;
}

asio::awaitable<Result<std::uint64_t>> Association::receive_data_set(std::uint8_t context_id,
                                                                     const DataSink& sink) {
  std::uint64_t total = 0;
  while (true) {
    Pdv pdv;
    auto r = co_await next_pdv(pdv);
    if (!r.ok()) co_return std::move(r).error();
    if (r->has_value()) {
      if (**r == Incoming::kReleaseRq) {
        co_await abort(AbortSource::kServiceProvider, abort_reason::kUnexpectedPdu);
      }
      co_return protocol_error("association ended in the middle of a data set");
    }
    if (pdv.is_command || pdv.context_id != context_id) {
      co_await abort(AbortSource::kServiceProvider, abort_reason::kInvalidPduParameterValue);
      co_return protocol_error("unexpected PDV in the middle of a data set");
    }
    sink(pdv.data);
    total += pdv.data.size();
    if (pdv.is_last) break;
  }
  co_return total;
}

Status Association::check_can_send() const {
  // DT-1 (Sta6) and AR-7 (Sta8); after an A-ABORT or a closed transport a late response must
  // not go out.
  if (established()) return {};
  return make_error(ErrorCode::kIo,
                    "association no longer established (" + std::string(name(fsm_.state())) + ")");
}

asio::awaitable<Status> Association::send_command(std::uint8_t context_id, const Command& command) {
  const auto bytes = encode_command(command);
  const std::uint32_t frag = fragment_limit();
  std::vector<std::array<std::uint8_t, kPduHeaderSize + kPdvHeaderSize>> headers;
  std::vector<asio::const_buffer> bufs;
  headers.reserve(bytes.size() / frag + 1);
  std::size_t pos = 0;
  do {  // every fragment in one gathered write
    const std::size_t n = std::min<std::size_t>(frag, bytes.size() - pos);
    const bool last = pos + n == bytes.size();
    headers.push_back(encode_p_data_header(context_id, true, last, static_cast<std::uint32_t>(n)));
    bufs.push_back(asio::buffer(headers.back()));
    bufs.push_back(asio::buffer(bytes.data() + pos, n));
    pos += n;
  } while (pos < bytes.size());
  co_await begin_send_turn();
  SendTurn turn(this);
  GW_CO_RETURN_IF_ERROR(check_can_send());  // (after the wait: an abort may have gone first)
  fsm_.on(Event::kEvt9);
  co_return co_await write_message_part(bufs);
}

asio::awaitable<Status> Association::write_message_part(std::span<const asio::const_buffer> bufs) {
  // A deadline per write, not the last read's: a large data set to a slow peer may take longer
  // than any one response wait, as long as each part (at most kSendChunk) keeps moving.
  // Not once the watchdog has fired: its short grace to close stands.
  if (!channel_->timed_out()) channel_->expires_after(limits_.idle);
  co_return co_await channel_->write_all(bufs);
}

asio::awaitable<Status> Association::send_data_set(std::uint8_t context_id,
                                                   std::uint64_t total_size,
                                                   const DataSource& source) {
  co_await begin_send_turn();
  SendTurn turn(this);  // the whole data set, so that no other message cuts into it
  GW_CO_RETURN_IF_ERROR(check_can_send());
  fsm_.on(Event::kEvt9);
  const std::uint32_t frag = fragment_limit();
  // At most kMaxFragmentsPerWrite PDUs per gathered write: a peer with a tiny limit costs
  // small writes, not a header vector per byte of a 1 MiB chunk.
  const std::size_t chunk = std::max<std::size_t>(
      frag, std::min<std::size_t>(kSendChunk / frag, kMaxFragmentsPerWrite) * frag);
  send_buffer_.resize(chunk);
  std::vector<std::array<std::uint8_t, kPduHeaderSize + kPdvHeaderSize>> headers;
  std::vector<asio::const_buffer> bufs;
  std::uint64_t sent = 0;
  if (total_size == 0) {
    auto header = encode_p_data_header(context_id, false, true, 0);
    std::array<asio::const_buffer, 1> one{asio::buffer(header)};
    co_return co_await write_message_part(one);
  }
  while (sent < total_size) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total_size - sent));
    std::size_t filled = 0;
    while (filled < want) {
      auto n = source(std::span(send_buffer_.data() + filled, want - filled));
      if (!n.ok()) co_return n.error();
      if (*n == 0) co_return make_error(ErrorCode::kIo, "data set ended before its declared size");
      filled += *n;
    }
    headers.clear();
    bufs.clear();
    headers.reserve(filled / frag + 1);
    for (std::size_t pos = 0; pos < filled; pos += frag) {
      const std::size_t n = std::min<std::size_t>(frag, filled - pos);
      const bool last = sent + pos + n == total_size;
      headers.push_back(
          encode_p_data_header(context_id, false, last, static_cast<std::uint32_t>(n)));
    }
    std::size_t i = 0;
    for (std::size_t pos = 0; pos < filled; pos += frag, ++i) {
      const std::size_t n = std::min<std::size_t>(frag, filled - pos);
      bufs.push_back(asio::buffer(headers[i]));
      bufs.push_back(asio::buffer(send_buffer_.data() + pos, n));
    }
    GW_CO_RETURN_IF_ERROR(co_await write_message_part(bufs));
    sent += filled;
  }
  co_return Status{};
}

asio::awaitable<Status> Association::send_release_rp() {
  fsm_.on(Event::kEvt14);  // AR-4 -> Sta13
  auto written = co_await write(encode_release_rp());
  co_await close_after_peer();
  co_return written;
}

asio::awaitable<void> Association::abort(AbortSource source, std::uint8_t reason) {
  fsm_.on(Event::kEvt15);  // AA-1 -> Sta13
  (void)co_await write(encode_abort(Abort{source, reason}));
  co_await close_after_peer();
}

}  // namespace gw::dicom
