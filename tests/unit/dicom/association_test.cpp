// Association over real loopback sockets: several coroutines sending on one association take
// turns and every message arrives whole; nothing is sent once the association is aborted.

#include "dicom/association.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>

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
void with_association(const std::function<asio::awaitable<void>(Pair&)>& body) {
  asio::io_context io;
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = listener.local_endpoint().port();
  Pair pair;
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
        [&]() -> asio::awaitable<void> { requested = co_await pair.requestor->request(rq, 5s); },
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
    ac.user_info.max_pdu_length = 16384;
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

TEST(AssociationTest, ConcurrentSendersTakeTurnsAndEachMessageArrivesWhole) {
  std::set<std::uint16_t> received;
  with_association([&](Pair& p) -> asio::awaitable<void> {
    // Eight coroutines answer at once (as stores in progress do); each response leaves whole.
    constexpr int kSenders = 8;
    int done = 0;
    for (int i = 0; i < kSenders; ++i) {
      asio::co_spawn(
          co_await asio::this_coro::executor,
          [&, i]() -> asio::awaitable<void> {
            Command rq = make_c_echo_rq(static_cast<std::uint16_t>(100 + i));
            auto st = co_await p.acceptor->send_command(1, make_c_echo_rsp(rq, 0));
            EXPECT_TRUE(st.ok()) << st.error().message;
            ++done;
          },
          asio::detached);
    }
    for (int i = 0; i < kSenders; ++i) {
      Command rsp;
      std::uint8_t pcid = 0;
      auto incoming = co_await p.requestor->receive_command(rsp, pcid);
      if (!incoming.ok() || *incoming != Incoming::kCommand) {
        ADD_FAILURE() << "response " << i << " did not arrive whole";
        co_return;
      }
      EXPECT_EQ(pcid, 1);
      received.insert(rsp.message_id_responded_to.value_or(0));
    }
    EXPECT_EQ(done, kSenders);
  });
  EXPECT_EQ(received.size(), 8u);
  EXPECT_EQ(*received.begin(), 100);
  EXPECT_EQ(*received.rbegin(), 107);
}

TEST(AssociationTest, NothingIsSentAfterAnAbort) {
  std::optional<Status> late;
  with_association([&](Pair& p) -> asio::awaitable<void> {
    co_await p.acceptor->abort(AbortSource::kServiceProvider, abort_reason::kNotSpecified);
    // A store that finishes after the abort must not answer on the dead association.
    late = co_await p.acceptor->send_command(1, make_c_echo_rsp(make_c_echo_rq(1), 0));
  });
  ASSERT_TRUE(late.has_value());
  ASSERT_FALSE(late->ok());
  EXPECT_EQ(late->error().code, core::ErrorCode::kIo);
  EXPECT_NE(late->error().message.find("no longer established"), std::string::npos)
      << late->error().message;
}

}  // namespace
}  // namespace gw::dicom
