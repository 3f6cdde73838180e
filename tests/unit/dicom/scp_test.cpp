// The Storage SCP in process, over loopback sockets, against a store that keeps nothing: what
// it answers for UIDs real modalities send, for a response it never asked for, and for an
// A-ASSOCIATE-RQ with broken optional parts. Also the SCU's check of its max PDU length.

#include "dicom/scp.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>

#include "dicom/dimse.h"
#include "dicom/scu.h"
#include "dicom/uids.h"
#include "support/malformed_pdus.h"

namespace gw::dicom {
namespace {

using namespace std::chrono_literals;

constexpr char kCtImageStorage[] = "1.2.840.10008.5.1.4.1.1.2";

class NullSession : public StoreSession {
 public:
  void write(std::span<const std::uint8_t>) override {}
  StoreOutcome finish() override { return {status::kSuccess, ""}; }
};

class NullStore : public StoreService {
 public:
  Result<std::unique_ptr<StoreSession>> begin(const StoreRequest& request) override {
    begun.push_back(request.sop_instance_uid);
    return std::unique_ptr<StoreSession>(std::make_unique<NullSession>());
  }
  bool finish_is_quick() const override { return true; }
  std::vector<std::string> begun;
};

/// Serves one connection with serve_connection and runs `client` with the other end of it.
void with_scp(NullStore& store,
              const std::function<asio::awaitable<void>(std::shared_ptr<Channel>)>& client) {
  asio::io_context io;
  ScpPolicy policy;
  policy.limits.artim = 5s;
  policy.limits.idle = 5s;
  ScpContext ctx(policy, store, io.get_executor());
  asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = listener.local_endpoint().port();
  auto run = [&]() -> asio::awaitable<void> {
    auto socket = co_await connect_tcp(io.get_executor(), "127.0.0.1", port, 5s);
    auto [ec, server] = co_await listener.async_accept(use_nothrow);
    if (!socket.ok() || ec) {
      ADD_FAILURE() << "no loopback connection";
      co_return;
    }
    asio::co_spawn(io, serve_connection(TcpChannel::create(std::move(server)), "test", ctx),
                   asio::detached);
    auto channel = TcpChannel::create(std::move(socket).value());
    co_await client(channel);
    channel->close();
  };
  asio::co_spawn(io, run(), asio::detached);
  io.run_for(20s);
}

/// Requests an association proposing CT Image Storage (Explicit VR LE) on context 1.
asio::awaitable<std::unique_ptr<Association>> associate(std::shared_ptr<Channel> channel) {
  auto assoc = std::make_unique<Association>(channel, Role::kRequestor, AssociationLimits{});
  AssociateRq rq;
  rq.called_ae = "DICOM_GW";
  rq.calling_ae = "MODALITY";
  rq.contexts = {{1, kCtImageStorage, {std::string(kExplicitVrLittleEndian)}}};
  rq.user_info.max_pdu_length = 16384;
  rq.user_info.implementation_class_uid = "1.2.3.4";
  auto st = co_await assoc->request(rq, 5s);
  if (!st.ok()) {
    ADD_FAILURE() << "association: " << st.error().message;
    co_return nullptr;
  }
  co_return assoc;
}

asio::awaitable<std::optional<std::uint16_t>> store(Association& assoc, std::string sop_class,
                                                    std::string sop_instance) {
  auto rq = make_c_store_rq(assoc.next_message_id(), std::move(sop_class), std::move(sop_instance));
  if (!(co_await assoc.send_command(1, rq)).ok()) co_return std::nullopt;
  const std::vector<std::uint8_t> data(16, 0);  // the null store does not look at it
  std::size_t sent = 0;
  auto source = [&](std::span<std::uint8_t> buf) -> Result<std::size_t> {
    const std::size_t n = std::min(buf.size(), data.size() - sent);
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(sent), n, buf.begin());
    sent += n;
    return n;
  };
  if (!(co_await assoc.send_data_set(1, data.size(), source)).ok()) co_return std::nullopt;
  Command rsp;
  std::uint8_t pcid = 0;
  auto incoming = co_await assoc.receive_command(rsp, pcid);
  if (!incoming.ok() || *incoming != Incoming::kCommand) co_return std::nullopt;
  co_return rsp.status;
}

TEST(ScpTest, StoresAnInstanceUidWithLeadingZeroComponents) {
  NullStore null_store;
  std::optional<std::uint16_t> leading_zero;
  std::optional<std::uint16_t> empty_component;
  with_scp(null_store, [&](std::shared_ptr<Channel> channel) -> asio::awaitable<void> {
    auto assoc = co_await associate(channel);
    if (!assoc) co_return;
    // As legacy modalities send them (PS3.5 forbids the leading zero; DCMTK accepts it).
    leading_zero = co_await store(*assoc, kCtImageStorage, "1.2.840.0604.1.007");
    // Still refused: not a UID at all.
    empty_component = co_await store(*assoc, kCtImageStorage, "1.2..3");
    (void)co_await assoc->release();
  });
  ASSERT_TRUE(leading_zero.has_value());
  EXPECT_EQ(*leading_zero, status::kSuccess);
  ASSERT_TRUE(empty_component.has_value());
  EXPECT_EQ(*empty_component, status::kCannotUnderstand);
  EXPECT_EQ(null_store.begun, std::vector<std::string>{"1.2.840.0604.1.007"});
}

TEST(ScpTest, AnUnexpectedResponseIsAbortedNotAnswered) {
  NullStore null_store;
  std::vector<std::uint8_t> reply(10, 0xEE);
  std::optional<Status> read;
  with_scp(null_store, [&](std::shared_ptr<Channel> channel) -> asio::awaitable<void> {
    auto assoc = co_await associate(channel);
    if (!assoc) co_return;
    // A C-STORE-RSP to a request the SCP never sent.
    const Command rq = make_c_store_rq(7, kCtImageStorage, "1.2.3");
    if (!(co_await assoc->send_command(1, make_c_store_rsp(rq, status::kSuccess))).ok()) {
      ADD_FAILURE() << "send";
      co_return;
    }
    channel->expires_after(5s);
    read = co_await channel->read_exact(reply);
  });
  ASSERT_TRUE(read.has_value());
  ASSERT_TRUE(read->ok()) << read->error().message;
  // A-ABORT, source service-provider (2), reason unexpected-PDU parameter (5).
  EXPECT_EQ(reply, (std::vector<std::uint8_t>{0x07, 0, 0, 0, 0, 4, 0, 0, 2, 5}));
}

TEST(ScpTest, BrokenOptionalPartsOfTheRqDoNotStopTheAssociation) {
  using namespace gw::test::malformed_detail;  // NOLINT(google-build-using-namespace)
  NullStore null_store;
  std::optional<Result<AssociateAc>> ac;
  std::optional<std::uint16_t> echo_status;
  with_scp(null_store, [&](std::shared_ptr<Channel> channel) -> asio::awaitable<void> {
    const Bytes two_abstract_syntaxes = item(0x20, cat({{0x01, 0, 0, 0},
                                                        item(0x30, str("1.2.840.10008.1.1")),
                                                        item(0x30, str(kCtImageStorage)),
                                                        item(0x40, str("1.2.840.10008.1.2"))}));
    const Bytes no_transfer_syntax =
        item(0x20, cat({{0x03, 0, 0, 0}, item(0x30, str("1.2.840.10008.1.1"))}));
    const Bytes verification = item(0x20, cat({{0x05, 0, 0, 0},
                                               item(0x30, str("1.2.840.10008.1.1")),
                                               item(0x40, str("1.2.840.10008.1.2"))}));
    // User identity (username and passcode) without its secondary-field length; role
    // selection without its role bytes.
    const Bytes user_info =
        item(0x50, cat({item(0x51, {0x00, 0x00, 0x40, 0x00}), item(0x52, str("1.2.3.4")),
                        item(0x54, cat({{0x00, 0x05}, str("1.2.3")})),
                        item(0x58, {0x02, 0x00, 0x00, 0x04, 'u', 's', 'e', 'r'})}));
    const Bytes rq = pdu(0x01, rq_body({app_context(), two_abstract_syntaxes, no_transfer_syntax,
                                        verification, user_info}));
    std::array<asio::const_buffer, 1> bufs{asio::buffer(rq)};
    if (!(co_await channel->write_all(bufs)).ok()) co_return;
    std::array<std::uint8_t, kPduHeaderSize> header{};
    channel->expires_after(5s);
    if (!(co_await channel->read_exact(header)).ok()) co_return;
    auto parsed = parse_pdu_header(header);
    if (!parsed.ok() || parsed->type != PduType::kAssociateAc || parsed->length > 4096) {
      ADD_FAILURE() << "no A-ASSOCIATE-AC, PDU type " << int{header[0]};
      co_return;
    }
    std::vector<std::uint8_t> body(parsed->length);
    if (!(co_await channel->read_exact(body)).ok()) co_return;
    ac = parse_associate_ac(body);
    // The accepted context works: a C-ECHO on it is answered.
    const auto echo = encode_command(make_c_echo_rq(1));
    const auto p_data =
        encode_p_data_header(5, true, true, static_cast<std::uint32_t>(echo.size()));
    std::array<asio::const_buffer, 2> echo_bufs{asio::buffer(p_data), asio::buffer(echo)};
    if (!(co_await channel->write_all(echo_bufs)).ok()) co_return;
    if (!(co_await channel->read_exact(header)).ok()) co_return;
    parsed = parse_pdu_header(header);
    if (!parsed.ok() || parsed->type != PduType::kPDataTf || parsed->length > 4096) co_return;
    body.resize(parsed->length);
    if (!(co_await channel->read_exact(body)).ok()) co_return;
    std::vector<Pdv> pdvs;
    if (!parse_p_data_tf(body, pdvs).ok() || pdvs.size() != 1) co_return;
    auto rsp = parse_command(pdvs[0].data);
    if (rsp.ok()) echo_status = rsp->status;
  });
  ASSERT_TRUE(ac.has_value());
  ASSERT_TRUE(ac->ok()) << (*ac).error().message;
  const auto& contexts = (*ac)->contexts;
  ASSERT_EQ(contexts.size(), 3u);
  EXPECT_EQ(contexts[0].id, 1);
  EXPECT_EQ(contexts[0].result, PcResult::kNoReason);
  EXPECT_EQ(contexts[1].id, 3);
  EXPECT_EQ(contexts[1].result, PcResult::kTransferSyntaxesNotSupported);
  EXPECT_EQ(contexts[2].id, 5);
  EXPECT_EQ(contexts[2].result, PcResult::kAcceptance);
  EXPECT_EQ(contexts[2].transfer_syntax, "1.2.840.10008.1.2");
  EXPECT_FALSE((*ac)->user_info.user_identity_ac.has_value());  // nothing answered to it
  ASSERT_TRUE(echo_status.has_value());
  EXPECT_EQ(*echo_status, status::kSuccess);
}

TEST(ScuTest, MaxPduLengthOutsideTheConfigRangeIsRefusedBeforeConnecting) {
  for (const std::uint32_t max_pdu : {0u, 4095u, 16u * 1024 * 1024 + 1, 0xFFFFFFFFu}) {
    asio::io_context io;
    ScuOptions options;
    options.port = 1;  // nothing listens there: a check after connecting would fail otherwise
    options.connect_timeout = 2s;
    options.max_pdu_length = max_pdu;
    std::optional<core::Error> error;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          std::vector<PresentationContextRq> contexts(1);
          contexts[0].id = 1;
          contexts[0].abstract_syntax = "1.2.840.10008.1.1";
          contexts[0].transfer_syntaxes = {"1.2.840.10008.1.2"};
          auto scu = co_await ScuAssociation::open(io.get_executor(), options, contexts);
          if (!scu.ok()) error = scu.error();
        },
        asio::detached);
    io.run_for(5s);
    ASSERT_TRUE(error.has_value()) << max_pdu;
    EXPECT_EQ(error->code, core::ErrorCode::kInvalidArgument) << max_pdu << ": " << error->message;
  }
}

}  // namespace
}  // namespace gw::dicom
