// Association over real loopback sockets: a message another coroutine sends while a large data
// set is on its way waits for it (never cuts into it); nothing is sent once the association is
// aborted, also by a sender that was already waiting for its turn.

#include "dicom/association.h"

#include <gtest/gtest.h>

#include <optional>

namespace gw::dicom {
namespace {

using namespace std::chrono_literals;

constexpr char kVerification[] = "1.2.840.10008.1.1";
constexpr char kImplicitLe[] = "1.2.840.10008.1.2";

struct Pair {
  std::unique_ptr<Association> acceptor;
  std::unique_ptr<Association> requestor;
};

/// Connects an acceptor and a requestor over loopback and negotiates Verification, then runs
/// `body` with both. Everything runs on one private io_context.
void with_association(const std::function<asio::awaitable<void>(Pair&)>& body,
                      std::uint32_t acceptor_max_pdu = 16384,
                      std::chrono::milliseconds request_timeout = 5s) {
  Pair pair;  // (before the io_context: frames waiting on its signals go first)
  asio::io_context io;
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = listener.local_endpoint().port();
  auto run = [&]() -> asio::awaitable<void> {
    auto client = co_await connect_tcp(io.get_executor(), "127.0.0.1", port, 5s);
    auto [ec, server] = co_await listener.async_accept(use_nothrow);
    if (!client.ok() || ec) {
      ADD_FAILURE() << "no loopback connection";
      co_return;
    }
    auto server_channel = TcpChannel::create(std::move(server));
    auto client_channel = TcpChannel::create(std::move(client).value());
    pair.acceptor =
        std::make_unique<Association>(server_channel, Role::kAcceptor, AssociationLimits{});
    pair.requestor =
        std::make_unique<Association>(client_channel, Role::kRequestor, AssociationLimits{});
    AssociateRq rq;
    rq.called_ae = "SCP";
    rq.calling_ae = "SCU";
    rq.contexts = {{1, kVerification, {kImplicitLe}}};
    rq.user_info.max_pdu_length = 16384;
    std::optional<Status> requested;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          requested = co_await pair.requestor->request(rq, request_timeout);
        },
        asio::detached);
    auto got = co_await pair.acceptor->receive_associate_rq();
    if (!got.ok()) {
      ADD_FAILURE() << got.error().message;
      co_return;
    }
    AssociateAc ac;
    ac.called_ae = rq.called_ae;
    ac.calling_ae = rq.calling_ae;
    ac.contexts = {{1, PcResult::kAcceptance, kImplicitLe}};
    ac.user_info.max_pdu_length = acceptor_max_pdu;
    if (auto st = co_await pair.acceptor->send_associate_ac(*got, ac); !st.ok()) {
      ADD_FAILURE() << st.error().message;
      co_return;
    }
    for (int i = 0; i < 200 && !requested; ++i) {  // bounded: the AC is on its way
      asio::steady_timer t(io, 5ms);
      co_await t.async_wait(use_nothrow);
    }
    if (!requested || !requested->ok()) {
      ADD_FAILURE() << "association not established";
      co_return;
    }
    co_await body(pair);
    pair.acceptor->close();
    pair.requestor->close();
  };
  asio::co_spawn(io, run(), asio::detached);
  io.run_for(20s);
}

/// 8 MiB of data set, more than the loopback socket buffers hold while nobody reads.
constexpr std::uint64_t kLargeDataSet = 8u << 20;

DataSource pattern_source() {
  return [sent = std::uint64_t{0}](std::span<std::uint8_t> buf) mutable -> Result<std::size_t> {
    for (auto& b : buf) b = static_cast<std::uint8_t>(sent++ % 251);
    return buf.size();
  };
}

/// Sleeps on the io_context (lets the other coroutines run into their waits).
asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

TEST(AssociationTest, AResponseWaitsForADataSetOnItsWayAndArrivesAfterIt) {
  std::optional<Status> data_sent;
  std::optional<Status> response_sent;
  std::optional<std::uint64_t> data_received;
  std::optional<std::uint16_t> response_received;
  with_association([&](Pair& p) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          data_sent = co_await p.acceptor->send_data_set(1, kLargeDataSet, pattern_source());
        },
        asio::detached);
    co_await pause(100ms);  // the data set fills the socket buffers and holds the turn
    EXPECT_FALSE(data_sent.has_value());
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          response_sent =
              co_await p.acceptor->send_command(1, make_c_echo_rsp(make_c_echo_rq(7), 0));
        },
        asio::detached);
    co_await pause(50ms);
    // Now read: without send turns the response's PDU would sit in the middle of the data set.
    auto got = co_await p.requestor->receive_data_set(1, [](auto) {});
    if (!got.ok()) {
      ADD_FAILURE() << "data set: " << got.error().message;
      co_return;
    }
    data_received = *got;
    Command rsp;
    std::uint8_t pcid = 0;
    auto incoming = co_await p.requestor->receive_command(rsp, pcid);
    if (incoming.ok() && *incoming == Incoming::kCommand) {
      response_received = rsp.message_id_responded_to.value_or(0);
    }
  });
  ASSERT_TRUE(data_sent.has_value() && response_sent.has_value());
  EXPECT_TRUE(data_sent->ok());
  EXPECT_TRUE(response_sent->ok());
  EXPECT_EQ(data_received, kLargeDataSet);
  EXPECT_EQ(response_received, 7);
}

TEST(AssociationTest, NothingIsSentAfterAnAbortEvenByASenderAlreadyWaiting) {
  std::optional<Status> waiting;
  std::optional<Status> late;
  std::optional<Incoming> requestor_saw;
  with_association([&](Pair& p) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          (void)co_await p.acceptor->send_data_set(1, kLargeDataSet, pattern_source());
        },
        asio::detached);
    co_await pause(100ms);  // holding the turn, blocked on full buffers
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          waiting = co_await p.acceptor->send_command(1, make_c_echo_rsp(make_c_echo_rq(1), 0));
        },
        asio::detached);
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          co_await p.acceptor->abort(AbortSource::kServiceProvider, abort_reason::kNotSpecified);
        },
        asio::detached);
    co_await pause(50ms);
    // The requestor reads the data set, then sees the A-ABORT and no response before it.
    auto got = co_await p.requestor->receive_data_set(1, [](auto) {});
    EXPECT_TRUE(got.ok()) << (got.ok() ? "" : got.error().message);
    Command rsp;
    std::uint8_t pcid = 0;
    auto incoming = co_await p.requestor->receive_command(rsp, pcid);
    if (incoming.ok()) requestor_saw = *incoming;
    late = co_await p.acceptor->send_command(1, make_c_echo_rsp(make_c_echo_rq(2), 0));
  });
  ASSERT_TRUE(waiting.has_value());
  EXPECT_FALSE(waiting->ok());
  EXPECT_NE(waiting->error().message.find("no longer established"), std::string::npos)
      << waiting->error().message;
  EXPECT_EQ(requestor_saw, Incoming::kAbort);
  ASSERT_TRUE(late.has_value());
  ASSERT_FALSE(late->ok());
  EXPECT_EQ(late->error().code, core::ErrorCode::kIo);
}

// Each write of a data set has its own deadline: a transfer that outlasts the last read's
// timeout (here the A-ASSOCIATE-AC wait) is not cut off while the peer keeps reading.
TEST(AssociationTest, ADataSetMayTakeLongerThanTheLastReadsTimeout) {
  std::optional<Status> sent;
  std::optional<std::uint64_t> received;
  with_association(
      [&](Pair& p) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              sent = co_await p.requestor->send_data_set(1, kLargeDataSet, pattern_source());
            },
            asio::detached);
        co_await pause(900ms);  // the socket buffers are full long past the AC wait's 300 ms
        auto got = co_await p.acceptor->receive_data_set(1, [](auto) {});
        if (got.ok()) received = *got;
        for (int i = 0; i < 200 && !sent; ++i) co_await pause(5ms);  // bounded
      },
      /*acceptor_max_pdu=*/16384, /*request_timeout=*/300ms);
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->ok()) << sent->error().message;
  EXPECT_EQ(received, kLargeDataSet);
}

// A peer whose maximum PDU length leaves no room for data (here 4 bytes) still gets the data
// set, one byte per PDV: no unsigned wrap-around into a 4 GiB fragment and buffer.
TEST(AssociationTest, APeerLimitTooSmallForAnyDataGetsOneBytePerPdv) {
  constexpr std::uint64_t kSize = 3000;
  std::optional<Status> sent;
  std::optional<std::uint64_t> received;
  with_association(
      [&](Pair& p) -> asio::awaitable<void> {
        EXPECT_EQ(p.requestor->peer_max_pdu_length(), 4u);
        sent = co_await p.requestor->send_data_set(1, kSize, pattern_source());
        const auto before = p.acceptor->bytes_received();
        auto got = co_await p.acceptor->receive_data_set(1, [](auto) {});
        if (got.ok()) received = *got;
        // One PDU per byte (6-byte PDU header, 6-byte PDV header, 1 byte), none larger.
        EXPECT_EQ(p.acceptor->bytes_received() - before, kSize * 13);
      },
      /*acceptor_max_pdu=*/4);
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->ok()) << sent->error().message;
  EXPECT_EQ(received, kSize);
}

TEST(AssociationTest, AnAssociationPduDuringDataTransferIsAbortedAsUnexpected) {
  // A-ASSOCIATE-AC, A-ASSOCIATE-RJ and A-RELEASE-RP are recognised PDUs arriving in the wrong
  // state (Evt3/Evt4/Evt13 in Sta6 -> AA-8): A-ABORT reason 2 (unexpected PDU), not 1
  // (unrecognized PDU).
  const std::vector<std::vector<std::uint8_t>> pdus = {
      encode_associate_ac(AssociateAc{}),
      encode_associate_rj(AssociateRj{}),
      encode_release_rp(),
  };
  for (const auto& pdu : pdus) {
    SCOPED_TRACE("PDU type " + std::to_string(pdu[0]));
    std::optional<bool> receive_failed;
    std::vector<std::uint8_t> reply(10, 0xEE);
    std::optional<Status> read;
    with_association([&](Pair& p) -> asio::awaitable<void> {
      std::array<asio::const_buffer, 1> bufs{asio::buffer(pdu)};
      EXPECT_TRUE((co_await p.requestor->channel().write_all(bufs)).ok());
      Command command;
      std::uint8_t pcid = 0;
      receive_failed = !(co_await p.acceptor->receive_command(command, pcid)).ok();
      p.requestor->channel().expires_after(5s);
      read = co_await p.requestor->channel().read_exact(reply);
    });
    EXPECT_EQ(receive_failed, true);
    ASSERT_TRUE(read.has_value());
    ASSERT_TRUE(read->ok()) << read->error().message;
    EXPECT_EQ(reply, (std::vector<std::uint8_t>{0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2}));
  }
}

}  // namespace
}  // namespace gw::dicom
