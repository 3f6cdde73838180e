// Several clients at once: parallel senders, connections that never (or only half) associate,
// and the max_associations limit, checked on the wire with a raw socket client.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dicom/pdu.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

/// A plain TCP client socket to 127.0.0.1, for speaking (or not speaking) DICOM by hand.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("connect: ") + std::strerror(e));
    }
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient() { close(); }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  void send_all(const Bytes& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
      sent += static_cast<std::size_t>(n);
    }
  }

  /// Reads exactly `n` bytes within `timeout`; nullopt on EOF, error or timeout.
  std::optional<Bytes> read_exact(std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Bytes out(n);
    std::size_t got = 0;
    while (got < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return std::nullopt;
      const ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return std::nullopt;
      got += static_cast<std::size_t>(r);
    }
    return out;
  }

  /// One whole PDU (header + body) within `timeout`.
  std::optional<Bytes> read_pdu(std::chrono::milliseconds timeout) {
    auto header = read_exact(6, timeout);
    if (!header) return std::nullopt;
    const std::uint32_t length = static_cast<std::uint32_t>((*header)[2]) << 24 |
                                 static_cast<std::uint32_t>((*header)[3]) << 16 |
                                 static_cast<std::uint32_t>((*header)[4]) << 8 | (*header)[5];
    if (length > (1u << 20)) return std::nullopt;
    auto body = read_exact(length, timeout);
    if (!body) return std::nullopt;
    header->insert(header->end(), body->begin(), body->end());
    return header;
  }

  /// True if the peer has closed the connection (EOF or reset), false if it is still open
  /// (nothing to read right now). Bytes the peer sent before closing are discarded.
  bool peer_closed() {
    std::uint8_t buf[4096];
    for (;;) {
      const ssize_t r = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0) return true;
      if (r > 0) continue;
      if (errno == EINTR) continue;
      return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  int fd_ = -1;
};

/// An A-ASSOCIATE-RQ proposing Verification, built with the gateway's own encoder.
Bytes verification_rq(const std::string& calling_ae = "RAWCLIENT") {
  dicom::AssociateRq rq;
  rq.called_ae = "DICOM_GW";
  rq.calling_ae = calling_ae;
  rq.contexts.push_back({1, "1.2.840.10008.1.1", {"1.2.840.10008.1.2"}});
  rq.user_info.max_pdu_length = 16384;
  rq.user_info.implementation_class_uid = "1.2.826.0.1.3680043.10.99";
  rq.user_info.implementation_version_name = "RAW_TEST";
  return dicom::encode_associate_rq(rq);
}

/// Associates (RQ → AC) on a fresh connection and keeps it open.
std::unique_ptr<RawClient> hold_association(std::uint16_t port) {
  auto client = std::make_unique<RawClient>(port);
  client->send_all(verification_rq());
  auto pdu = client->read_pdu(10s);
  if (!pdu || (*pdu)[0] != 0x02) {
    throw std::runtime_error(pdu ? "expected A-ASSOCIATE-AC, got PDU type " +
                                       std::to_string((*pdu)[0])
                                 : std::string("no answer to the A-ASSOCIATE-RQ"));
  }
  return client;
}

CommandResult gw_echo(std::uint16_t port, std::chrono::milliseconds timeout) {
  return run_command({gateway_binary().string(), "echo", "--aec", "DICOM_GW", "--timeout", "15",
                      "127.0.0.1", std::to_string(port)},
                     {}, timeout);
}

std::string both(const CommandResult& r) { return r.out + r.err; }

// ---- parallel senders -------------------------------------------------------------------------

TEST(Concurrency, EightSendersAtOnceAllIndexed) {
  TempDir dir("gw-conc");
  constexpr int kSenders = 8;
  constexpr int kPerSender = 25;
  const auto files = generate_dicom(
      dir / "source", {"--count", std::to_string(kSenders * kPerSender), "--seed", "31",
                       "--size-kib", "16", "--studies", "4", "--series-per-study", "2"});
  ASSERT_EQ(files.size(), static_cast<std::size_t>(kSenders * kPerSender));

  auto gw = Gateway::start();
  std::vector<Process> senders;
  for (int s = 0; s < kSenders; ++s) {
    std::vector<std::string> argv = {gateway_binary().string(),
                                     "send",
                                     "--no-progress",
                                     "--aec",
                                     "DICOM_GW",
                                     "--aet",
                                     "SENDER" + std::to_string(s),
                                     "127.0.0.1",
                                     std::to_string(gw->port())};
    for (int i = 0; i < kPerSender; ++i) argv.push_back(files[s * kPerSender + i].string());
    ProcessOptions po;
    po.argv = std::move(argv);
    po.log_dir = dir / "logs";
    po.log_name = "sender-" + std::to_string(s);
    senders.push_back(Process::start(std::move(po)));
  }
  for (auto& sender : senders) {
    const auto code = sender.wait_for_exit(120s);
    ASSERT_TRUE(code.has_value()) << sender.describe() << " did not finish";
    EXPECT_EQ(*code, 0) << sender.read_stdout() << sender.read_stderr();
  }

  EXPECT_EQ(gw->count_instances(), kSenders * kPerSender);
  const auto uids = gw->sop_instance_uids();
  const std::set<std::string> indexed(uids.begin(), uids.end());
  for (const auto& f : files) EXPECT_TRUE(indexed.contains(sop_instance_uid_of(f))) << f;
  EXPECT_EQ(gw->storage_files().size(), files.size());
  EXPECT_TRUE(gw->spool_files().empty());
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(Concurrency, OneSenderEightAssociations) {
  TempDir dir("gw-conc");
  const auto files =
      generate_dicom(dir / "source", {"--count", "200", "--seed", "32", "--size-kib", "16"});
  ASSERT_EQ(files.size(), 200u);
  auto gw = Gateway::start();
  const CommandResult sent =
      run_command({gateway_binary().string(), "send", "--no-progress", "-j", "8", "--aec",
                   "DICOM_GW", "127.0.0.1", std::to_string(gw->port()), (dir / "source").string()},
                  {}, 120s);
  ASSERT_TRUE(sent.ok()) << both(sent) << "\ngateway log:\n" << gw->log();
  EXPECT_EQ(gw->count_instances(), 200);
  EXPECT_TRUE(gw->spool_files().empty());
}

/// storage.fsync: false finishes each C-STORE on the association's own I/O thread (no hop to
/// the worker pool): several associations at once must still all be indexed, and another
/// client's C-ECHO still answered meanwhile.
TEST(Concurrency, WithoutFsyncFourAssociationsAllIndexedAndEchoAnswered) {
  TempDir dir("gw-conc");
  const auto files =
      generate_dicom(dir / "source", {"--count", "200", "--seed", "33", "--size-kib", "64"});
  ASSERT_EQ(files.size(), 200u);
  GatewayOptions options;
  options.fsync = false;
  auto gw = Gateway::start(options);
  ProcessOptions po;
  po.argv = {gateway_binary().string(),
             "send",
             "--no-progress",
             "-j",
             "4",
             "--aec",
             "DICOM_GW",
             "127.0.0.1",
             std::to_string(gw->port()),
             (dir / "source").string()};
  po.log_dir = dir / "logs";
  po.log_name = "sender";
  auto sender = Process::start(std::move(po));
  const CommandResult echo = gw_echo(gw->port(), 20s);
  EXPECT_TRUE(echo.ok()) << both(echo);
  const auto code = sender.wait_for_exit(120s);
  ASSERT_TRUE(code.has_value()) << sender.describe() << " did not finish";
  EXPECT_EQ(*code, 0) << sender.read_stdout() << sender.read_stderr();
  EXPECT_EQ(gw->count_instances(), 200);
  EXPECT_EQ(gw->storage_files().size(), files.size());
  EXPECT_TRUE(gw->spool_files().empty());
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

// ---- connections that do not associate ---------------------------------------------------------

/// Half an A-ASSOCIATE-RQ: the header announces the whole body, only half of it follows.
Bytes half_associate_rq() {
  const Bytes full = verification_rq("HALFOPEN");
  return Bytes(full.begin(), full.begin() + static_cast<long>(6 + (full.size() - 6) / 2));
}

TEST(Concurrency, IdleAndHalfOpenConnectionsDoNotBlockOthers) {
  GatewayOptions options;
  options.artim_timeout_s = 60;  // a serialized acceptor would hold every other client ≥ 60 s
  auto gw = Gateway::start(options);

  RawClient idle(gw->port());  // connects, sends nothing
  RawClient half_open(gw->port());
  half_open.send_all(half_associate_rq());

  const CommandResult dcmtk = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {}, 20s);
  EXPECT_TRUE(dcmtk.ok()) << both(dcmtk);
  const CommandResult ours = gw_echo(gw->port(), 20s);
  EXPECT_TRUE(ours.ok()) << both(ours);

  // Both silent connections are still open: ARTIM (60 s) has not expired.
  EXPECT_FALSE(idle.peer_closed());
  EXPECT_FALSE(half_open.peer_closed());
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(Concurrency, ArtimClosesIdleAndHalfOpenConnections) {
  GatewayOptions options;
  options.artim_timeout_s = 2;
  auto gw = Gateway::start(options);

  RawClient idle(gw->port());
  RawClient half_open(gw->port());
  half_open.send_all(half_associate_rq());

  bool idle_closed = false;
  bool half_open_closed = false;
  wait_until(
      [&] {
        idle_closed = idle_closed || idle.peer_closed();
        half_open_closed = half_open_closed || half_open.peer_closed();
        return idle_closed && half_open_closed;
      },
      15s, 50ms);
  EXPECT_TRUE(idle_closed)
      << "the idle connection is still open 15 s after connecting (artim_timeout: 2)";
  EXPECT_TRUE(half_open_closed)
      << "the half-open connection is still open 15 s after connecting (artim_timeout: 2)";
  // The gateway still serves.
  const CommandResult echo = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {}, 20s);
  EXPECT_TRUE(echo.ok()) << both(echo);
}

TEST(Concurrency, SilentConnectionsOverTheCapAreClosedAtOnce) {
  GatewayOptions options;
  options.max_associations = 1;
  options.max_pending_connections = 2;
  options.artim_timeout_s = 60;  // the counted ones stay open for the whole test
  auto gw = Gateway::start(options);

  // max_associations + max_pending_connections = 3 silent connections are held ...
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<RawClient>(gw->port()));
  // ... the next is closed at once, long before ARTIM, and says nothing.
  RawClient over(gw->port());
  EXPECT_TRUE(wait_until([&] { return over.peer_closed(); }, 20s, 20ms))
      << "a connection over the cap is still open";
  EXPECT_TRUE(wait_until(
      [&] { return gw->log().find("event=connection_refused") != std::string::npos; }, 10s))
      << gw->log();
  for (auto& c : held) EXPECT_FALSE(c->peer_closed());

  // Once they go, the gateway serves again.
  held.clear();
  EXPECT_TRUE(wait_until(
      [&] { return run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {}, 20s).ok(); }, 20s, 100ms))
      << gw->log();
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

// ---- max_associations -------------------------------------------------------------------------

TEST(Concurrency, OverTheLimitIsRejectedTransientLocalLimit) {
  GatewayOptions options;
  options.max_associations = 2;
  auto gw = Gateway::start(options);

  auto first = hold_association(gw->port());
  auto second = hold_association(gw->port());

  // DCMTK: rejected, and says why.
  const CommandResult rejected = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {}, 20s);
  EXPECT_FALSE(rejected.ok()) << both(rejected);
  EXPECT_FALSE(rejected.timed_out);
  EXPECT_NE(both(rejected).find("Association Rejected"), std::string::npos) << both(rejected);
  EXPECT_NE(both(rejected).find("Rejected Transient"), std::string::npos) << both(rejected);
  EXPECT_NE(both(rejected).find("Local Limit Exceeded"), std::string::npos) << both(rejected);

  // On the wire: A-ASSOCIATE-RJ, result 2 (transient), source 3 (service provider,
  // presentation), reason 2 (local limit exceeded).
  {
    RawClient third(gw->port());
    third.send_all(verification_rq("THIRD"));
    const auto pdu = third.read_pdu(10s);
    ASSERT_TRUE(pdu.has_value()) << "no answer to the third A-ASSOCIATE-RQ";
    ASSERT_EQ(pdu->size(), 10u);
    EXPECT_EQ((*pdu)[0], 0x03) << "expected A-ASSOCIATE-RJ";
    EXPECT_EQ((*pdu)[7], 2) << "result";
    EXPECT_EQ((*pdu)[8], 3) << "source";
    EXPECT_EQ((*pdu)[9], 2) << "reason";
  }

  // Free a slot (the peer just goes away): the next echo is accepted again.
  first->close();
  EXPECT_TRUE(wait_until(
      [&] { return run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {}, 20s).ok(); }, 20s, 100ms))
      << gw->log();
  // The second held association is still alive and counted: still at most 2.
  auto again = hold_association(gw->port());
  const CommandResult over = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {}, 20s);
  EXPECT_FALSE(over.ok()) << both(over);
  EXPECT_NE(both(over).find("Local Limit Exceeded"), std::string::npos) << both(over);
  EXPECT_FALSE(second->peer_closed());
}

}  // namespace
}  // namespace gw::test
