#pragma once
/// One DICOM association over a Channel, for either role: reading PDUs with length limits,
/// driving the PS3.8 state machine, streaming PDVs, and sending DIMSE messages fragmented to
/// the peer's maximum PDU length with one gathered write per batch of PDUs.
///
/// Not thread-safe: an association is driven from one strand. Within it, one coroutine reads
/// while others may send (an acceptor with an asynchronous operations window answers earlier
/// requests while it reads the next one): sends take turns, each message leaves whole.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dicom/channel.h"
#include "dicom/dimse.h"
#include "dicom/pdu.h"
#include "dicom/state_machine.h"
#include "dicom/strand_signal.h"

namespace gw::dicom {

struct AssociationLimits {
  std::uint32_t max_pdu_length = 262144;          ///< what we accept in P-DATA-TF bodies
  std::uint32_t max_associate_rq_length = 65536;  ///< largest A-ASSOCIATE-RQ/AC body
  Clock::duration artim = std::chrono::seconds(30);
  Clock::duration idle = std::chrono::seconds(300);
  std::uint32_t max_command_length = 65536;  ///< a command set larger than this aborts
};

/// An accepted presentation context.
struct PresentationContext {
  std::uint8_t id = 0;
  std::string abstract_syntax;
  std::string transfer_syntax;
};

/// What arrived when the caller waited for the next DIMSE message.
enum class Incoming { kCommand, kReleaseRq, kAbort };

/// Produces the next bytes of a data set into `buf`; returns how many (0 only at the end).
using DataSource = std::function<Result<std::size_t>(std::span<std::uint8_t> buf)>;
/// Consumes one received data-set fragment.
using DataSink = std::function<void(std::span<const std::uint8_t> fragment)>;

class Association {
 public:
  Association(std::shared_ptr<Channel> channel, Role role, AssociationLimits limits);

  // ---- acceptor ----
  /// Waits (ARTIM) for the A-ASSOCIATE-RQ. Protocol errors abort the connection.
  asio::awaitable<Result<AssociateRq>> receive_associate_rq();
  asio::awaitable<Status> send_associate_ac(const AssociateRq& rq, const AssociateAc& ac);
  /// Sends A-ASSOCIATE-RJ and closes after the peer does (or ARTIM).
  asio::awaitable<void> send_associate_rj(const AssociateRj& rj);

  // ---- requestor ----
  /// Sends the RQ and waits for AC/RJ. RJ -> kRejected with the reason; on success the
  /// accepted contexts are available through contexts().
  asio::awaitable<Status> request(const AssociateRq& rq, Clock::duration timeout);
  /// After request() failed: the peer's A-ASSOCIATE-RJ, when that was the reason (the result
  /// decides whether trying again later can help).
  const std::optional<AssociateRj>& rejection() const { return rejection_; }
  /// After request() succeeded: the asynchronous operations window the acceptor answered with
  /// (nullopt: it sent none, so operations are synchronous).
  const std::optional<AsyncOpsWindow>& accepted_async_window() const { return accepted_window_; }
  /// Orderly release (handles a release collision). Closes the channel.
  asio::awaitable<Status> release();

  // ---- both ----
  /// Waits (idle timeout) for the next command. For kCommand, `command` and `context_id` are
  /// set; a data set, if any, must then be read with receive_data_set.
  asio::awaitable<Result<Incoming>> receive_command(Command& command, std::uint8_t& context_id);
  /// Streams the current message's data set to `sink`, fragment by fragment (no buffering of
  /// the whole data set). Returns the number of bytes received.
  asio::awaitable<Result<std::uint64_t>> receive_data_set(std::uint8_t context_id,
                                                          const DataSink& sink);
  /// Sends may be called from several coroutines on the association's strand: they take turns,
  /// and each command or data set leaves whole. A C-STORE-RQ is two sends (command, then data
  /// set): requests with data sets must come from one coroutine, which then sends nothing else
  /// in between (responses from other coroutines may go between two whole requests). Both fail
  /// (kIo) unless the association is established (Sta6, or Sta8 while a release waits).
  asio::awaitable<Status> send_command(std::uint8_t context_id, const Command& command);
  asio::awaitable<Status> send_data_set(std::uint8_t context_id, std::uint64_t total_size,
                                        const DataSource& source);
  /// After receive_command returned kReleaseRq (acceptor): send A-RELEASE-RP and close.
  /// Returns the write's status (the transport is closed either way).
  asio::awaitable<Status> send_release_rp();
  /// Sends A-ABORT and closes.
  asio::awaitable<void> abort(AbortSource source, std::uint8_t reason);
  /// Closes the transport without a PDU.
  void close() noexcept { channel_->close(); }

  const std::vector<PresentationContext>& contexts() const { return contexts_; }
  const PresentationContext* context(std::uint8_t id) const;
  /// First accepted context for exactly this abstract syntax and transfer syntax.
  const PresentationContext* find_context(std::string_view abstract_syntax,
                                          std::string_view transfer_syntax) const;
  std::uint32_t peer_max_pdu_length() const { return peer_max_pdu_; }
  State state() const { return fsm_.state(); }
  /// P-DATA may be sent: Sta6, or Sta8 (answering while our A-RELEASE-RP waits).
  bool established() const { return fsm_.state() == State::kSta6 || fsm_.state() == State::kSta8; }
  /// P-DATA-TF PDUs that arrived after our A-RELEASE-RQ and were discarded by release() (e.g.
  /// responses to requests still outstanding).
  std::uint32_t discarded_during_release() const { return discarded_during_release_; }
  Channel& channel() { return *channel_; }
  std::uint16_t next_message_id() { return ++message_id_; }
  std::uint64_t bytes_received() const { return bytes_received_; }

 private:
  /// Reads one PDU into body_; returns its type. Enforces the per-type length limits.
  asio::awaitable<Result<PduType>> read_pdu(Clock::duration timeout);
  /// Next PDV of a P-DATA stream; reads PDUs as needed. A non-P-DATA PDU ends the stream and is
  /// reported through the Incoming value (nullopt = a PDV was produced in `out`).
  asio::awaitable<Result<std::optional<Incoming>>> next_pdv(Pdv& out);
  /// Feeds an event to the state machine and performs abort actions. Returns false when the
  /// event was a protocol violation (the association has been aborted).
  asio::awaitable<bool> apply(Event event);
  asio::awaitable<void> close_after_peer();
  asio::awaitable<Status> write(std::span<const std::uint8_t> pdu);
  /// Writes part of a DIMSE message (in the caller's send turn) under its own deadline:
  /// `limits_.idle` for this write, whatever deadline the last read left.
  asio::awaitable<Status> write_message_part(std::span<const asio::const_buffer> bufs);
  /// Waits for the turn to send (another coroutine's message may be on its way); a SendTurn
  /// made right after it ends the turn.
  struct SendTurn {
    explicit SendTurn(Association* a) : owner(a) {}
    Association* owner;
    SendTurn(const SendTurn&) = delete;
    SendTurn& operator=(const SendTurn&) = delete;
    ~SendTurn() { owner->end_send_turn(); }
  };
  asio::awaitable<void> begin_send_turn();
  void end_send_turn();
  Status check_can_send() const;
  std::uint32_t fragment_limit() const;

  std::shared_ptr<Channel> channel_;
  StateMachine fsm_;
  AssociationLimits limits_;
  std::span<std::uint8_t> body() { return {body_.data(), body_length_}; }

  std::vector<std::uint8_t> body_;  ///< capacity for the largest PDU so far
  std::size_t body_length_ = 0;     ///< bytes of the current PDU in body_
  std::vector<Pdv> pdvs_;
  std::size_t next_pdv_ = 0;
  std::vector<PresentationContext> contexts_;
  std::optional<AssociateRj> rejection_;
  std::optional<AsyncOpsWindow> accepted_window_;
  bool sending_ = false;    ///< a message is being written
  StrandSignal send_done_;  ///< wakes coroutines waiting for their turn to send
  std::uint32_t peer_max_pdu_ = 0;
  std::uint16_t message_id_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint32_t discarded_during_release_ = 0;
  std::vector<std::uint8_t> send_buffer_;
};

}  // namespace gw::dicom
