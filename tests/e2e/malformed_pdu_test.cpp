// Hostile byte streams against the real gateway: every malformed PDU of the corpus is refused
// (A-ABORT, A-ASSOCIATE-RJ or a closed connection) within a bound, the gateway never crashes,
// keeps answering C-ECHO, and its memory stays bounded over repeated and parallel rounds.
// After a valid association, PDUs longer than the negotiated maximum are aborted without the
// gateway allocating what they declare.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dicom/pdu.h"
#include "e2e/e2e_helpers.h"
#include "support/gateway.h"
#include "support/malformed_pdus.h"
#include "support/poll.h"

namespace gw::test {
namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

constexpr auto kReadBound = std::chrono::seconds(15);
constexpr std::uint32_t kMaxPdu = 16384;
constexpr std::int64_t kRssCeilingKib = 256 * 1024;
constexpr std::int64_t kRssGrowthKib = 32 * 1024;

/// What the gateway did with one connection.
struct Reply {
  Bytes bytes;             ///< everything it sent, in order
  bool closed = false;     ///< EOF or reset seen
  bool timed_out = false;  ///< still open at the bound
  std::string error;       ///< connect/read failure other than a reset
};

/// A blocking loopback TCP client with poll()-bounded reads.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::system_error(err, std::generic_category(), "connect 127.0.0.1");
    }
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() { ::close(fd_); }

  /// Sends everything; false if the gateway closed first (EPIPE/ECONNRESET), which is a
  /// legitimate reaction to a hostile stream.
  bool send_all(const Bytes& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// Reads until EOF (or a reset), `bound` at most, keeping at most `cap` bytes.
  Reply read_until_closed(std::chrono::milliseconds bound, std::size_t cap = 1u << 20) {
    Reply reply;
    const auto deadline = Clock::now() + bound;
    std::uint8_t buf[4096];
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        reply.timed_out = true;
        return reply;
      }
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0) {
        if (errno == EINTR) continue;
        reply.error = std::string("poll: ") + std::strerror(errno);
        return reply;
      }
      if (ready == 0) continue;  // the deadline check above ends the loop
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        reply.closed = true;
        return reply;
      }
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        reply.error = std::string("recv: ") + std::strerror(errno);
        return reply;
      }
      const std::size_t keep = std::min(static_cast<std::size_t>(n), cap - reply.bytes.size());
      reply.bytes.insert(reply.bytes.end(), buf, buf + keep);
    }
  }

  /// Reads exactly one PDU (header and body) within `bound`; empty if the connection ended or
  /// the bound passed first.
  Bytes read_pdu(std::chrono::milliseconds bound) {
    const auto deadline = Clock::now() + bound;
    Bytes pdu;
    std::size_t want = dicom::kPduHeaderSize;
    while (pdu.size() < want) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return {};
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      std::uint8_t buf[4096];
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, want - pdu.size()), 0);
      if (n <= 0) return {};
      pdu.insert(pdu.end(), buf, buf + n);
      if (pdu.size() == dicom::kPduHeaderSize && want == dicom::kPduHeaderSize) {
        const std::uint32_t length = (std::uint32_t{pdu[2]} << 24) | (std::uint32_t{pdu[3]} << 16) |
                                     (std::uint32_t{pdu[4]} << 8) | std::uint32_t{pdu[5]};
        if (length > (1u << 20)) return {};  // not something our gateway sends
        want += length;
      }
    }
    return pdu;
  }

 private:
  int fd_ = -1;
};

std::string hex_prefix(const Bytes& b, std::size_t n = 24) {
  std::ostringstream out;
  out << b.size() << " bytes:";
  for (std::size_t i = 0; i < b.size() && i < n; ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    out << ' ' << kHex[b[i] >> 4] << kHex[b[i] & 0x0f];
  }
  if (b.size() > n) out << " ...";
  return out.str();
}

/// The PDU types in a reply; false if the bytes are not a whole sequence of PDUs.
bool split_pdus(const Bytes& b, std::vector<std::uint8_t>& types,
                std::vector<std::uint32_t>& lengths) {
  std::size_t pos = 0;
  while (pos < b.size()) {
    if (b.size() - pos < dicom::kPduHeaderSize) return false;
    const std::uint32_t length = (std::uint32_t{b[pos + 2]} << 24) |
                                 (std::uint32_t{b[pos + 3]} << 16) |
                                 (std::uint32_t{b[pos + 4]} << 8) | std::uint32_t{b[pos + 5]};
    if (b.size() - pos - dicom::kPduHeaderSize < length) return false;
    types.push_back(b[pos]);
    lengths.push_back(length);
    pos += dicom::kPduHeaderSize + length;
  }
  return true;
}

/// Empty if the reply is an acceptable refusal; otherwise why not. `may_accept_first`: the
/// stream starts with a valid A-ASSOCIATE-RQ, so an A-ASSOCIATE-AC may precede the abort.
std::string judge(const Reply& reply, bool may_accept_first) {
  if (!reply.error.empty()) return reply.error;
  if (reply.timed_out) {
    return "connection still open after " + std::to_string(kReadBound.count()) + " s (received " +
           hex_prefix(reply.bytes) + ")";
  }
  std::vector<std::uint8_t> types;
  std::vector<std::uint32_t> lengths;
  if (!split_pdus(reply.bytes, types, lengths)) {
    return "reply is not a sequence of whole PDUs: " + hex_prefix(reply.bytes);
  }
  if (types.empty()) return {};  // closed without a word: allowed
  std::size_t first = 0;
  if (may_accept_first && types[0] == 0x02) first = 1;
  if (types.size() - first != 1) {
    return "expected one A-ABORT or A-ASSOCIATE-RJ, got " + hex_prefix(reply.bytes);
  }
  const std::uint8_t last = types.back();
  if ((last != 0x07 && last != 0x03) || lengths.back() != 4) {
    return "final PDU is neither A-ABORT nor A-ASSOCIATE-RJ: " + hex_prefix(reply.bytes);
  }
  return {};
}

/// Streams that begin with a valid A-ASSOCIATE-RQ (the gateway may accept before refusing).
/// The tolerated_malformed_pdus() are accepted too (their defect is one the acceptor may reject
/// or ignore on its own), then the idle timeout aborts the silent peer.
bool starts_with_valid_rq(const std::string& name) {
  static const std::set<std::string> names = {"two_associate_rqs", "p_data_zero_length_pdv",
                                              "p_data_pdv_length_one",
                                              "p_data_pdv_length_0xffffffff"};
  return names.contains(name) || tolerated_malformed_pdus().contains(name);
}

/// Sends every corpus entry on its own connection, `parallel` connections at a time; returns
/// one verdict per entry ("" = refused properly).
std::vector<std::string> run_corpus_round(std::uint16_t port,
                                          const std::vector<std::pair<std::string, Bytes>>& corpus,
                                          std::size_t parallel) {
  std::vector<std::string> verdicts(corpus.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&]() {
    for (std::size_t i = next++; i < corpus.size(); i = next++) {
      try {
        RawConnection conn(port);
        conn.send_all(corpus[i].second);
        const Reply reply = conn.read_until_closed(kReadBound);
        verdicts[i] = judge(reply, starts_with_valid_rq(corpus[i].first));
      } catch (const std::exception& e) {
        verdicts[i] = e.what();
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parallel; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return verdicts;
}

/// artim 2 s, idle 5 s, max_pdu_length 16384. GatewayOptions has no max_pdu_length, so the
/// config is amended and the gateway restarted once.
std::unique_ptr<Gateway> start_hardened_gateway() {
  GatewayOptions options;
  options.artim_timeout_s = 2;
  options.idle_timeout_s = 5;
  options.shutdown_grace_s = 0;
  auto gw = Gateway::start(options);
  gw->stop();
  std::string config;
  {
    std::ifstream in(gw->config_path());
    config.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto limits = config.find("limits:\n");
  if (limits == std::string::npos) throw std::runtime_error("no limits: in the gateway config");
  config.insert(limits + 8, "  max_pdu_length: " + std::to_string(kMaxPdu) + "\n");
  std::ofstream(gw->config_path(), std::ios::trunc) << config;
  gw->restart();
  return gw;
}

/// A-ASSOCIATE-RQ proposing Verification (Implicit VR LE), our receive limit kMaxPdu.
Bytes verification_rq() {
  dicom::AssociateRq rq;
  rq.called_ae = "DICOM_GW";
  rq.calling_ae = "MALFORMED";
  rq.contexts.push_back({1, "1.2.840.10008.1.1", {"1.2.840.10008.1.2"}});
  rq.user_info.max_pdu_length = kMaxPdu;
  rq.user_info.implementation_class_uid = "1.2.826.0.1.3680043.10.1";
  rq.user_info.implementation_version_name = "E2E_HOSTILE";
  return dicom::encode_associate_rq(rq);
}

/// Opens a connection and completes association; the AC must advertise kMaxPdu.
std::unique_ptr<RawConnection> associate(std::uint16_t port) {
  auto conn = std::make_unique<RawConnection>(port);
  EXPECT_TRUE(conn->send_all(verification_rq()));
  const Bytes ac = conn->read_pdu(std::chrono::seconds(10));
  if (ac.empty() || ac[0] != 0x02) {
    ADD_FAILURE() << "no A-ASSOCIATE-AC: " << hex_prefix(ac);
    return nullptr;
  }
  auto parsed = dicom::parse_associate_ac(std::span(ac).subspan(dicom::kPduHeaderSize));
  if (!parsed.ok()) {
    ADD_FAILURE() << "unparsable A-ASSOCIATE-AC: " << parsed.error().message;
    return nullptr;
  }
  EXPECT_EQ(parsed->user_info.max_pdu_length, kMaxPdu) << "config max_pdu_length not applied";
  return conn;
}

/// A P-DATA-TF header (6 bytes) declaring `length`.
Bytes p_data_header(std::uint32_t length) {
  return {0x04,
          0x00,
          static_cast<std::uint8_t>(length >> 24),
          static_cast<std::uint8_t>(length >> 16),
          static_cast<std::uint8_t>(length >> 8),
          static_cast<std::uint8_t>(length)};
}

/// The reply must be exactly one A-ABORT, then the connection closed.
void expect_abort_then_close(const Reply& reply) {
  EXPECT_FALSE(reply.timed_out) << "gateway neither aborted nor closed within the bound";
  EXPECT_TRUE(reply.error.empty()) << reply.error;
  std::vector<std::uint8_t> types;
  std::vector<std::uint32_t> lengths;
  ASSERT_TRUE(split_pdus(reply.bytes, types, lengths)) << hex_prefix(reply.bytes);
  ASSERT_EQ(types.size(), 1u) << hex_prefix(reply.bytes);
  EXPECT_EQ(types[0], 0x07) << "expected A-ABORT: " << hex_prefix(reply.bytes);
  EXPECT_EQ(lengths[0], 4u);
}

std::int64_t rss_kib(Gateway& gw) {
  const auto kib = proc_status_kib(gw.process().pid(), "VmRSS");
  return kib.value_or(-1);
}

TEST(MalformedPdu, EveryCorpusEntryIsRefusedAndTheGatewayKeepsServing) {
  auto gw = start_hardened_gateway();
  auto corpus = malformed_pdu_corpus();
  ASSERT_GE(corpus.size(), 30u);
  // And a peer that connects and says nothing: ARTIM must close it.
  corpus.emplace_back("silent_peer", Bytes{});

  std::int64_t rss_round1 = 0;
  constexpr int kRounds = 5;
  for (int round = 1; round <= kRounds; ++round) {
    // Round 1: 8 connections at a time; later rounds: the whole corpus at once.
    const std::size_t parallel = round == 1 ? 8 : corpus.size();
    const auto t0 = Clock::now();
    const auto verdicts = run_corpus_round(gw->port(), corpus, parallel);
    for (std::size_t i = 0; i < corpus.size(); ++i) {
      EXPECT_EQ(verdicts[i], "") << "round " << round << ", " << corpus[i].first;
    }
    ASSERT_TRUE(gw->process().running()) << "gateway died in round " << round << ":\n" << gw->log();
    const std::int64_t rss = rss_kib(*gw);
    std::cout << "round " << round << " (" << parallel << " parallel): "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()
              << " ms, VmRSS " << rss << " KiB\n";
    EXPECT_GT(rss, 0);
    EXPECT_LT(rss, kRssCeilingKib) << "round " << round;
    if (round == 1) rss_round1 = rss;
    if (round == kRounds) {
      EXPECT_LT(rss - rss_round1, kRssGrowthKib)
          << "VmRSS grew from " << rss_round1 << " KiB to " << rss << " KiB";
    }
  }
  const auto hwm = proc_status_kib(gw->process().pid(), "VmHWM");
  ASSERT_TRUE(hwm.has_value());
  EXPECT_LT(*hwm, kRssCeilingKib) << "peak RSS";

  const CommandResult echo = gateway_echo(gw->port());
  EXPECT_TRUE(echo.ok()) << echo.out << echo.err << "\n" << gw->log();
  EXPECT_TRUE(gw->process().running());
}

// The broken P-DATA-TF entries come after a valid A-ASSOCIATE-RQ: the gateway accepts, then its
// PDV parser refuses the P-DATA-TF and it aborts (AC, then A-ABORT), and it keeps serving.
TEST(MalformedPdu, BrokenPdvOnAnEstablishedAssociationIsAborted) {
  auto gw = start_hardened_gateway();
  for (const auto& [name, bytes] : malformed_pdu_corpus()) {
    if (name.rfind("p_data_", 0) != 0 || !starts_with_valid_rq(name)) continue;
    SCOPED_TRACE(name);
    RawConnection conn(gw->port());
    conn.send_all(bytes);
    const Reply reply = conn.read_until_closed(kReadBound);
    EXPECT_FALSE(reply.timed_out);
    std::vector<std::uint8_t> types;
    std::vector<std::uint32_t> lengths;
    ASSERT_TRUE(split_pdus(reply.bytes, types, lengths)) << hex_prefix(reply.bytes);
    EXPECT_EQ(types, (std::vector<std::uint8_t>{0x02, 0x07}))
        << "expected A-ASSOCIATE-AC then A-ABORT: " << hex_prefix(reply.bytes);
    ASSERT_TRUE(gw->process().running()) << gw->log();
  }
  const CommandResult echo = gateway_echo(gw->port());
  EXPECT_TRUE(echo.ok()) << echo.out << echo.err << "\n" << gw->log();
}

TEST(MalformedPdu, SilentAssociationIsAbortedAfterIdleTimeout) {
  auto gw = start_hardened_gateway();
  auto conn = associate(gw->port());
  ASSERT_NE(conn, nullptr);
  // idle_timeout is 5 s; nothing more is sent. docs/config.md: "no PDU from the peer for this
  // long -> A-ABORT" (then the close).
  SCOPED_TRACE("idle_timeout must end the association with an A-ABORT, not a bare close");
  expect_abort_then_close(conn->read_until_closed(kReadBound));
  EXPECT_TRUE(gw->process().running()) << gw->log();
}

TEST(MalformedPdu, PDataLongerThanNegotiatedMaximumIsAborted) {
  auto gw = start_hardened_gateway();
  auto conn = associate(gw->port());
  ASSERT_NE(conn, nullptr);

  // 100000 > 16384: one P-DATA-TF whose body is a single command PDV of zeros. The bytes are
  // sent from another thread so that the gateway's abort is read while we are still writing.
  constexpr std::uint32_t kLength = 100000;
  Bytes pdu = p_data_header(kLength);
  const std::uint32_t item = kLength - 4;
  pdu.insert(pdu.end(),
             {static_cast<std::uint8_t>(item >> 24), static_cast<std::uint8_t>(item >> 16),
              static_cast<std::uint8_t>(item >> 8), static_cast<std::uint8_t>(item), 0x01, 0x03});
  pdu.resize(dicom::kPduHeaderSize + kLength, 0x00);
  std::thread writer([&conn, &pdu]() { conn->send_all(pdu); });
  const Reply reply = conn->read_until_closed(kReadBound);
  writer.join();
  expect_abort_then_close(reply);

  EXPECT_TRUE(gw->process().running()) << gw->log();
  const CommandResult echo = gateway_echo(gw->port());
  EXPECT_TRUE(echo.ok()) << echo.out << echo.err;
}

TEST(MalformedPdu, DeclaredPduLength0xFFFFFFFFIsAbortedWithoutAllocating) {
  auto gw = start_hardened_gateway();
  const pid_t pid = gw->process().pid();
  const auto hwm_before = proc_status_kib(pid, "VmHWM");
  ASSERT_TRUE(hwm_before.has_value());

  // Several associations at once, each declaring a 4 GiB P-DATA-TF (and one A-ASSOCIATE-RQ
  // on an established association declaring the same): a gateway that allocated even one of
  // them would show it in its peak RSS.
  constexpr int kConnections = 4;
  std::vector<Reply> replies(kConnections);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConnections; ++i) {
    threads.emplace_back([&, i]() {
      auto conn = associate(gw->port());
      if (!conn) return;
      Bytes header = p_data_header(0xFFFFFFFFu);
      if (i % 2 == 1) header[0] = 0x01;  // A-ASSOCIATE-RQ on an established association
      header.insert(header.end(), {0x00, 0x00, 0x00, 0x10, 0x01, 0x03});
      conn->send_all(header);
      replies[i] = conn->read_until_closed(kReadBound);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kConnections; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    expect_abort_then_close(replies[i]);
  }

  ASSERT_TRUE(gw->process().running()) << gw->log();
  const auto hwm_after = proc_status_kib(pid, "VmHWM");
  ASSERT_TRUE(hwm_after.has_value());
  std::cout << "VmHWM before " << *hwm_before << " KiB, after " << *hwm_after << " KiB\n";
  EXPECT_LT(*hwm_after - *hwm_before, kRssGrowthKib) << "the declared length was allocated";
  EXPECT_LT(*hwm_after, kRssCeilingKib);
  const CommandResult echo = gateway_echo(gw->port());
  EXPECT_TRUE(echo.ok()) << echo.out << echo.err;
}

}  // namespace
}  // namespace gw::test
