// TlsEngine in memory: two engines pass ciphertext to each other by hand, with no sockets, so
// every byte of output and every request for input is seen.

#include "dicom/tls_engine.h"

#include <gtest/gtest.h>

#include <asio/ssl/error.hpp>
#include <numeric>
#include <random>

#include "unit/tls/tls_test_pki.h"

namespace gw::dicom {
namespace {

using Want = TlsEngine::Want;
using tls::testing::TlsPkiTest;

/// Moves everything `from` has written into `to`'s receive buffer (in chunks of at most
/// `chunk` bytes per rx_space, like short socket reads). Returns the bytes moved.
std::size_t pump(TlsEngine& from, TlsEngine& to, std::size_t chunk = 1 << 20) {
  std::size_t moved = 0;
  while (from.has_output()) {
    const auto out = from.begin_flush();
    std::size_t done = 0;
    while (done < out.size()) {
      auto space = to.rx_space();
      const std::size_t n = std::min({space.size(), out.size() - done, chunk});
      EXPECT_GT(n, 0u) << "receive buffer full";
      if (n == 0) break;
      std::copy_n(out.data() + done, n, space.data());
      to.rx_commit(n);
      done += n;
    }
    moved += done;
    from.end_flush();
  }
  return moved;
}

class TlsEngineTest : public TlsPkiTest {
 protected:
  void SetUp() override {
    TlsPkiTest::SetUp();
    auto s = tls::make_server_context(server_config());
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto c = tls::make_client_context(client_options());
    ASSERT_TRUE(c.ok()) << c.error().message;
    server_ctx_ = *s;
    client_ctx_ = *c;
    server_ = std::make_unique<TlsEngine>(server_ctx_->asio_context().native_handle());
    client_ = std::make_unique<TlsEngine>(client_ctx_->asio_context().native_handle());
    server_->set_server();
    client_->set_client();
  }

  /// Runs both handshakes to the end (bounded: a handshake takes a few flights).
  void handshake() {
    bool server_done = false;
    bool client_done = false;
    for (int round = 0; round < 10 && !(server_done && client_done); ++round) {
      if (!client_done) {
        auto s = client_->handshake();
        ASSERT_NE(s.want, Want::kError) << s.error.message();
        client_done = s.want == Want::kDone;
      }
      pump(*client_, *server_);
      if (!server_done) {
        auto s = server_->handshake();
        ASSERT_NE(s.want, Want::kError) << s.error.message();
        server_done = s.want == Want::kDone;
      }
      pump(*server_, *client_);
    }
    ASSERT_TRUE(server_done && client_done);
  }

  /// Reads exactly `n` bytes from `engine` (its input must already be there).
  std::vector<std::uint8_t> read_all(TlsEngine& engine, std::size_t n, std::size_t step) {
    std::vector<std::uint8_t> got(n);
    std::size_t have = 0;
    for (int calls = 0; have < n && calls < 1'000'000; ++calls) {
      const std::size_t want = std::min(step, n - have);
      auto s = engine.read(std::span(got).subspan(have, want));
      if (s.want != Want::kDone) {
        ADD_FAILURE() << "read stopped after " << have << " bytes: " << s.error.message();
        break;
      }
      have += s.bytes;
    }
    got.resize(have);
    return got;
  }

  std::shared_ptr<const tls::TlsContext> server_ctx_;
  std::shared_ptr<const tls::TlsContext> client_ctx_;
  std::unique_ptr<TlsEngine> server_;
  std::unique_ptr<TlsEngine> client_;
};

TEST_F(TlsEngineTest, HandshakeAgreesOnTls13AndTheClientCertificateIsSeen) {
  handshake();
  EXPECT_STREQ(SSL_get_version(server_->ssl()), "TLSv1.3");
  EXPECT_NE(SSL_get0_peer_certificate(server_->ssl()), nullptr);
}

TEST_F(TlsEngineTest, LargeWriteArrivesIntactThroughShortReadsAndSmallSocketChunks) {
  handshake();
  std::vector<std::uint8_t> data(3 * 1024 * 1024 + 77);
  std::mt19937 rng(7);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  auto w = client_->write(data);
  ASSERT_EQ(w.want, Want::kDone);
  EXPECT_EQ(w.bytes, data.size());
  // Everything is encrypted at once; the output holds whole records (~16 KiB each).
  EXPECT_GT(client_->output_size(), data.size());
  EXPECT_LT(client_->output_size(), data.size() + data.size() / 100);

  // The receiver gets the ciphertext in odd-sized socket reads and reads odd-sized pieces.
  std::vector<std::uint8_t> got;
  while (client_->has_output() || got.size() < data.size()) {
    const auto out = client_->begin_flush();
    std::size_t done = 0;
    while (done < out.size()) {
      auto space = server_->rx_space();
      const std::size_t n = std::min({space.size(), out.size() - done, std::size_t{9999}});
      std::copy_n(out.data() + done, n, space.data());
      server_->rx_commit(n);
      done += n;
      for (;;) {  // drain what is decryptable now
        std::uint8_t buf[5000];
        auto r = server_->read(buf);
        if (r.want == Want::kInput) break;
        ASSERT_EQ(r.want, Want::kDone) << r.error.message();
        got.insert(got.end(), buf, buf + r.bytes);
      }
    }
    client_->end_flush();
    if (done == 0) break;
  }
  EXPECT_EQ(got, data);
}

TEST_F(TlsEngineTest, ReadWithoutInputAsksForInput) {
  handshake();
  std::uint8_t buf[16];
  EXPECT_EQ(server_->read(buf).want, Want::kInput);
  EXPECT_TRUE(server_->rx_empty());
}

TEST_F(TlsEngineTest, OutputWrittenDuringAFlushWaitsForTheNextOne) {
  handshake();
  const std::vector<std::uint8_t> first(1000, 0x11);
  const std::vector<std::uint8_t> second(2000, 0x22);
  ASSERT_EQ(client_->write(first).want, Want::kDone);
  const auto in_flight = client_->begin_flush();
  const std::vector<std::uint8_t> copy(in_flight.begin(), in_flight.end());
  ASSERT_EQ(client_->write(second).want, Want::kDone);  // goes to the pending buffer
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), in_flight.begin()));  // untouched
  EXPECT_TRUE(client_->has_output());
  // Deliver the in-flight bytes, finish the flush, then the rest: both arrive in order.
  auto space = server_->rx_space();
  std::copy(copy.begin(), copy.end(), space.data());
  server_->rx_commit(copy.size());
  client_->end_flush();
  pump(*client_, *server_);
  auto got = read_all(*server_, first.size() + second.size(), 700);
  std::vector<std::uint8_t> want = first;
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(got, want);
}

TEST_F(TlsEngineTest, CloseNotifyBothWays) {
  handshake();
  auto s = client_->shutdown();
  EXPECT_EQ(s.want, Want::kInput);  // close_notify sent, waiting for the server's
  pump(*client_, *server_);
  std::uint8_t buf[8];
  auto r = server_->read(buf);
  EXPECT_EQ(r.want, Want::kClosed);
  EXPECT_EQ(r.error, asio::error::eof);
  EXPECT_EQ(server_->shutdown().want, Want::kDone);  // the client's already came
  pump(*server_, *client_);
  EXPECT_EQ(client_->shutdown().want, Want::kDone);
  EXPECT_EQ(server_->eof_error(), asio::error::eof);
}

TEST_F(TlsEngineTest, EofWithoutCloseNotifyIsATruncation) {
  handshake();
  EXPECT_EQ(server_->eof_error(), asio::ssl::error::stream_truncated);
}

TEST_F(TlsEngineTest, GarbageInsteadOfARecordIsAnSslErrorWithAnAlertToSend) {
  handshake();
  auto space = server_->rx_space();
  const std::uint8_t junk[] = {0x17, 0x03, 0x03, 0x00, 0x20, 1,  2,  3,  4,  5,  6,  7,  8,
                               9,    10,   11,   12,   13,   14, 15, 16, 17, 18, 19, 20, 21,
                               22,   23,   24,   25,   26,   27, 28, 29, 30, 31, 32};
  std::copy(std::begin(junk), std::end(junk), space.data());
  server_->rx_commit(sizeof(junk));
  std::uint8_t buf[64];
  auto r = server_->read(buf);
  ASSERT_EQ(r.want, Want::kError);
  EXPECT_EQ(r.error.category(), asio::error::get_ssl_category());
  EXPECT_TRUE(server_->has_output());  // bad_record_mac alert for the peer
}

TEST_F(TlsEngineTest, AWriteThatWouldNeedInputIsAnErrorNotADrop) {
  // The profiles forbid renegotiation; allowed here on purpose (TLS 1.2), a renegotiation in
  // progress makes SSL_write want input. That must be an error, never "done" with bytes lost.
  for (auto* e : {server_.get(), client_.get()}) {
    SSL_clear_options(e->ssl(), SSL_OP_NO_RENEGOTIATION);
    SSL_set_max_proto_version(e->ssl(), TLS1_2_VERSION);
    SSL_set_min_proto_version(e->ssl(), TLS1_2_VERSION);
  }
  handshake();
  ASSERT_STREQ(SSL_get_version(client_->ssl()), "TLSv1.2");
  ASSERT_EQ(SSL_renegotiate(server_->ssl()), 1);
  (void)server_->handshake();  // HelloRequest
  const std::vector<std::uint8_t> data(100, 0x5A);
  ASSERT_EQ(server_->write(data).want, Want::kDone);
  pump(*server_, *client_);
  std::uint8_t buf[100];
  (void)client_->read(buf);  // takes the HelloRequest (and the data), starts renegotiating
  const std::vector<std::uint8_t> reply(50, 0x33);
  const auto w = client_->write(reply);
  EXPECT_EQ(w.want, Want::kError);
  EXPECT_TRUE(w.error) << "an error code, so the channel cannot take it for success";
}

TEST_F(TlsEngineTest, ClientWithoutCertificateIsRefusedAndTheAlertReachesIt) {
  auto c = tls::make_client_context(client_options(""));  // no certificate
  ASSERT_TRUE(c.ok()) << c.error().message;
  client_ = std::make_unique<TlsEngine>((*c)->asio_context().native_handle());
  client_->set_client();
  TlsEngine::Step server_step;
  TlsEngine::Step client_step;
  for (int round = 0; round < 10; ++round) {
    client_step = client_->handshake();
    pump(*client_, *server_);
    server_step = server_->handshake();
    pump(*server_, *client_);
    if (server_step.want == Want::kError) break;
  }
  ASSERT_EQ(server_step.want, Want::kError);
  EXPECT_EQ(server_step.error.category(), asio::error::get_ssl_category());
  // TLS 1.3: the client finished its side; the refusal comes with its first read.
  std::uint8_t buf[8];
  auto r = client_->read(buf);
  EXPECT_EQ(r.want, Want::kError);
  EXPECT_EQ(r.error.category(), asio::error::get_ssl_category());
}

}  // namespace
}  // namespace gw::dicom
