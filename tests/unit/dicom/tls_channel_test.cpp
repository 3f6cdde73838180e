// TlsChannel over real loopback sockets: handshake both ways, peer identity, the first-byte
// check for plain DICOM, the handshake deadline, host name verification.

#include "dicom/tls_channel.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <random>
#include <vector>

#include "unit/tls/tls_test_pki.h"

namespace gw::dicom {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using tls::testing::TlsPkiTest;

struct Outcome {
  std::optional<Status> server;
  std::optional<Status> client;
  std::string server_saw_subject;
  std::string client_saw_subject;
  std::string protocol;
  std::string cipher;
  std::string fingerprint;
  std::string echoed;
};

class TlsChannelTest : public TlsPkiTest {
 protected:
  /// One server connection and one client connection on a private io_context. `client_body`
  /// replaces the TLS client when set (e.g. a plain DICOM peer).
  Outcome run(std::shared_ptr<const tls::TlsContext> server_ctx,
              std::shared_ptr<const tls::TlsContext> client_ctx, const std::string& host,
              bool verify_hostname = true, Clock::duration server_timeout = 5s,
              std::function<asio::awaitable<void>(asio::ip::tcp::socket)> client_body = {}) {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();
    Outcome out;
    auto server = [&]() -> asio::awaitable<void> {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      auto channel = TlsChannel::create(std::move(socket), server_ctx);
      auto st = co_await (*channel)->handshake_server(server_timeout);
      if (st.ok()) {
        out.server_saw_subject = (*channel)->peer_certificate_subject();
        out.protocol = (*channel)->protocol();
        out.cipher = (*channel)->cipher();
        out.fingerprint = (*channel)->peer_certificate_sha256();
        std::array<std::uint8_t, 4> buf{};
        (*channel)->expires_after(5s);
        st = co_await (*channel)->read_exact(buf);
        if (st.ok()) {
          std::array<asio::const_buffer, 1> bufs{asio::buffer(buf)};
          st = co_await (*channel)->write_all(bufs);
        }
      }
      out.server = st;
      (*channel)->close();
    };
    auto client = [&]() -> asio::awaitable<void> {
      auto socket = co_await connect_tcp(io.get_executor(), "127.0.0.1", port, 5s);
      if (!socket.ok()) {
        out.client = socket.error();
        co_return;
      }
      if (client_body) {
        co_await client_body(std::move(socket).value());
        co_return;
      }
      auto channel = TlsChannel::create(std::move(socket).value(), client_ctx);
      auto st = co_await (*channel)->handshake_client(host, verify_hostname, 5s);
      if (st.ok()) {
        out.client_saw_subject = (*channel)->peer_certificate_subject();
        const std::string ping = "ping";
        std::array<asio::const_buffer, 1> bufs{asio::buffer(ping)};
        st = co_await (*channel)->write_all(bufs);
        std::array<std::uint8_t, 4> buf{};
        (*channel)->expires_after(5s);
        if (st.ok()) st = co_await (*channel)->read_exact(buf);
        if (st.ok()) out.echoed.assign(buf.begin(), buf.end());
      }
      out.client = st;
      (*channel)->close();
    };
    asio::co_spawn(io, server(), asio::detached);
    asio::co_spawn(io, client(), asio::detached);
    io.run_for(20s);
    return out;
  }

  std::shared_ptr<const tls::TlsContext> server_ctx(config::Tls t) {
    auto c = tls::make_server_context(t);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return *c;
  }
  std::shared_ptr<const tls::TlsContext> client_ctx(const tls::ClientTlsOptions& o) {
    auto c = tls::make_client_context(o);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return *c;
  }
};

TEST_F(TlsChannelTest, MutualTlsRoundTrip) {
  auto out = run(server_ctx(server_config()), client_ctx(client_options()), "127.0.0.1");
  ASSERT_TRUE(out.server.has_value() && out.client.has_value());
  EXPECT_TRUE(out.server->ok()) << out.server->error().message;
  EXPECT_TRUE(out.client->ok()) << out.client->error().message;
  EXPECT_EQ(out.echoed, "ping");
  EXPECT_EQ(out.server_saw_subject, "CN=client");
  EXPECT_EQ(out.client_saw_subject, "CN=server");
  EXPECT_EQ(out.protocol, "TLSv1.3");
  EXPECT_EQ(out.cipher, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(out.fingerprint.size(), 32u * 3 - 1);
}

TEST_F(TlsChannelTest, HostNameIsVerifiedByTheClient) {
  auto out = run(server_ctx(server_config()), client_ctx(client_options()), "localhost");
  ASSERT_TRUE(out.client.has_value());
  EXPECT_TRUE(out.client->ok()) << out.client->error().message;

  issue("nosan", certs::CertKind::kServer, {"DNS:pacs.example.org"});
  auto t = server_config();
  t.cert_file = cert("nosan");
  t.key_file = key("nosan");
  out = run(server_ctx(t), client_ctx(client_options()), "127.0.0.1");
  ASSERT_TRUE(out.client.has_value());
  ASSERT_FALSE(out.client->ok());
  EXPECT_EQ(out.client->error().code, core::ErrorCode::kTls);
  EXPECT_THAT(out.client->error().message, HasSubstr("IP address mismatch"));

  out = run(server_ctx(t), client_ctx(client_options()), "localhost");
  ASSERT_TRUE(out.client.has_value());
  ASSERT_FALSE(out.client->ok());
  EXPECT_THAT(out.client->error().message, HasSubstr("host name mismatch"));

  out = run(server_ctx(t), client_ctx(client_options()), "127.0.0.1", /*verify_hostname=*/false);
  ASSERT_TRUE(out.client.has_value());
  EXPECT_TRUE(out.client->ok()) << out.client->error().message;
}

TEST_F(TlsChannelTest, PlainDicomOnTheTlsPortIsNamed) {
  auto plain = [](asio::ip::tcp::socket socket) -> asio::awaitable<void> {
    // The start of an A-ASSOCIATE-RQ.
    std::array<std::uint8_t, 6> rq{0x01, 0x00, 0x00, 0x00, 0x00, 0x44};
    co_await asio::async_write(socket, asio::buffer(rq), use_nothrow);
    std::array<std::uint8_t, 1> b{};
    co_await asio::async_read(socket, asio::buffer(b), use_nothrow);  // until the server closes
  };
  auto out = run(server_ctx(server_config()), nullptr, "", true, 5s, plain);
  ASSERT_TRUE(out.server.has_value());
  ASSERT_FALSE(out.server->ok());
  EXPECT_EQ(out.server->error().code, core::ErrorCode::kTls);
  EXPECT_THAT(out.server->error().message, HasSubstr("plain DICOM spoken to the TLS port"));
}

TEST_F(TlsChannelTest, SilentPeerTimesOut) {
  auto silent = [](asio::ip::tcp::socket socket) -> asio::awaitable<void> {
    std::array<std::uint8_t, 1> b{};
    co_await asio::async_read(socket, asio::buffer(b), use_nothrow);  // until the server closes
  };
  const auto t0 = Clock::now();
  auto out = run(server_ctx(server_config()), nullptr, "", true, 300ms, silent);
  ASSERT_TRUE(out.server.has_value());
  ASSERT_FALSE(out.server->ok());
  EXPECT_EQ(out.server->error().code, core::ErrorCode::kTimeout);
  EXPECT_LT(Clock::now() - t0, 5s);
}

TEST_F(TlsChannelTest, RefusedClientCertificateReachesTheClientOnItsFirstRead) {
  auto other = tmp_.path() / "other-ca";
  ASSERT_TRUE(certs::init_ca(other, certs::CaOptions{}).ok());
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.ca_dir = other;
  o.out_cert = cert("stranger");
  o.out_key = key("stranger");
  ASSERT_TRUE(certs::make_test_certificate(o).ok());
  auto out = run(server_ctx(server_config()), client_ctx(client_options("stranger")), "127.0.0.1");
  ASSERT_TRUE(out.server.has_value() && out.client.has_value());
  ASSERT_FALSE(out.server->ok());
  EXPECT_THAT(out.server->error().message, HasSubstr("unknown CA"));
  ASSERT_FALSE(out.client->ok());
  EXPECT_EQ(out.client->error().code, core::ErrorCode::kTls);
  EXPECT_THAT(out.client->error().message, HasSubstr("refused our certificate"));
}

TEST_F(TlsChannelTest, CancelWakesAnIdleReaderAndTheChannelStillWrites) {
  // What shutdown does to an idle association: cancel the pending read, then send A-ABORT.
  auto sctx = server_ctx(server_config());
  auto cctx = client_ctx(client_options());
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::optional<Status> server_read;
  std::optional<Status> server_write;
  std::string client_got;
  auto server = [&]() -> asio::awaitable<void> {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    auto channel = *TlsChannel::create(std::move(socket), sctx);
    if (!(co_await channel->handshake_server(5s)).ok()) co_return;
    asio::steady_timer later(io, 100ms);
    later.async_wait([channel](std::error_code) {
      channel->mark_cancelled();  // as ScpContext::begin_shutdown does
      channel->cancel();
    });
    std::array<std::uint8_t, 4> buf{};
    channel->expires_after(10s);
    server_read = co_await channel->read_exact(buf);
    const std::string abort = "bye!";
    std::array<asio::const_buffer, 1> bufs{asio::buffer(abort)};
    server_write = co_await channel->write_all(bufs);
    channel->close();
  };
  auto client = [&]() -> asio::awaitable<void> {
    auto socket = co_await connect_tcp(io.get_executor(), "127.0.0.1", port, 5s);
    auto channel = *TlsChannel::create(std::move(socket).value(), cctx);
    if (!(co_await channel->handshake_client("127.0.0.1", true, 5s)).ok()) co_return;
    std::array<std::uint8_t, 4> buf{};
    channel->expires_after(10s);
    if ((co_await channel->read_exact(buf)).ok()) client_got.assign(buf.begin(), buf.end());
    channel->close();
  };
  asio::co_spawn(io, server(), asio::detached);
  asio::co_spawn(io, client(), asio::detached);
  io.run_for(20s);
  ASSERT_TRUE(server_read.has_value());
  EXPECT_EQ(server_read->error().code, core::ErrorCode::kCancelled);
  ASSERT_TRUE(server_write.has_value());
  EXPECT_TRUE(server_write->ok()) << server_write->error().message;
  EXPECT_EQ(client_got, "bye!");
}

TEST_F(TlsChannelTest, GatheredWritesOfEverySizeArriveIntactInOddReads) {
  // PDU-like writes: 12-byte headers between bodies of every size around the 16 KiB record and
  // the 256 KiB flush points, several in one gathered write, read back in uneven pieces.
  auto sctx = server_ctx(server_config());
  auto cctx = client_ctx(client_options());
  std::mt19937 rng(11);
  std::vector<std::vector<std::uint8_t>> pieces;
  for (std::size_t body :
       {1ul, 12ul, 16372ul, 16384ul, 16385ul, 40000ul, 262144ul, 262157ul, 700001ul, 3ul}) {
    pieces.emplace_back(12);
    pieces.emplace_back(body);
  }
  std::vector<std::uint8_t> all;
  for (auto& p : pieces) {
    for (auto& b : p) b = static_cast<std::uint8_t>(rng());
    all.insert(all.end(), p.begin(), p.end());
  }
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<std::uint8_t> got;
  std::optional<Status> read_status;
  std::optional<Status> write_status;
  auto server = [&]() -> asio::awaitable<void> {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    auto channel = *TlsChannel::create(std::move(socket), sctx);
    if (!(co_await channel->handshake_server(5s)).ok()) co_return;
    channel->expires_after(20s);
    std::vector<std::uint8_t> buf(all.size());
    std::size_t have = 0;
    for (std::size_t step = 1; have < buf.size(); step = step * 7 % 100003 + 1) {
      const auto n = std::min(step, buf.size() - have);
      read_status = co_await channel->read_exact(std::span(buf).subspan(have, n));
      if (!read_status->ok()) break;
      have += n;
    }
    got.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(have));
    channel->close();
  };
  auto client = [&]() -> asio::awaitable<void> {
    auto socket = co_await connect_tcp(io.get_executor(), "127.0.0.1", port, 5s);
    auto channel = *TlsChannel::create(std::move(socket).value(), cctx);
    if (!(co_await channel->handshake_client("127.0.0.1", true, 5s)).ok()) co_return;
    // Two gathered writes: the first six pieces, then the rest.
    std::vector<asio::const_buffer> first;
    std::vector<asio::const_buffer> second;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      (i < 6 ? first : second).push_back(asio::buffer(pieces[i]));
    }
    write_status = co_await channel->write_all(first);
    if (write_status->ok()) write_status = co_await channel->write_all(second);
    channel->expires_after(10s);
    std::array<std::uint8_t, 1> buf{};
    (void)co_await channel->read_exact(buf);  // until the server closes
    channel->close();
  };
  asio::co_spawn(io, server(), asio::detached);
  asio::co_spawn(io, client(), asio::detached);
  io.run_for(30s);
  ASSERT_TRUE(write_status.has_value());
  EXPECT_TRUE(write_status->ok()) << write_status->error().message;
  ASSERT_TRUE(read_status.has_value());
  EXPECT_TRUE(read_status->ok()) << read_status->error().message;
  EXPECT_EQ(got.size(), all.size());
  EXPECT_TRUE(got == all);
}

}  // namespace
}  // namespace gw::dicom
