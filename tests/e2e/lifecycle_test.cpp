// The gateway process over its life: stopping with SIGTERM (idle and in the middle of a
// transfer), `dicom-gw config check`, and command-line misuse. `dicom-gw demo`: demo_test.cpp.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dicom/dimse.h"
#include "dicom/part10.h"
#include "dicom/pdu.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/text.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(p));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string both(const CommandResult& r) { return r.out + r.err; }

// ---- SIGTERM ----------------------------------------------------------------------------------

TEST(Lifecycle, SigtermOnAnIdleGatewayExitsZero) {
  auto gw = Gateway::start();
  ASSERT_TRUE(run_echoscu("127.0.0.1", gw->port(), "DICOM_GW").ok());
  // stop(): SIGTERM, then waits up to the bound; 137 would mean it had to be killed.
  EXPECT_EQ(gw->stop(10s), 0) << gw->log();
  EXPECT_FALSE(port_accepts(gw->port()));
}

TEST(Lifecycle, SigtermDuringATransferKeepsEveryConfirmedInstance) {
  TempDir dir("gw-life");
  constexpr int kCount = 300;
  const auto files = generate_dicom(
      dir / "source", {"--count", std::to_string(kCount), "--seed", "41", "--size-kib", "32"});
  ASSERT_EQ(files.size(), static_cast<std::size_t>(kCount));
  std::map<std::string, fs::path> source_by_uid;
  for (const auto& f : files) source_by_uid[sop_instance_uid_of(f)] = f;

  auto gw = Gateway::start();  // fsync on: every answered instance is durable
  const fs::path report = dir / "report.txt";
  ProcessOptions po;
  po.argv = {gateway_binary().string(),
             "send",
             "--no-progress",
             "--timeout",
             "10",
             "--aec",
             "DICOM_GW",
             "--report",
             report.string(),
             "127.0.0.1",
             std::to_string(gw->port()),
             (dir / "source").string()};
  po.log_dir = dir / "logs";
  po.log_name = "sender";
  Process sender = Process::start(std::move(po));

  // SIGTERM once some instances are confirmed (the report is flushed per response).
  ASSERT_TRUE(wait_until([&] { return read_lines(report).size() >= 20; }, 60s, 5ms))
      << sender.read_stderr();
  const int gw_exit = gw->stop(60s);
  EXPECT_EQ(gw_exit, 0) << gw->log();

  // The sender does not hang: its remaining instances fail and it exits (bounded by its
  // response timeout).
  const auto sender_exit = sender.wait_for_exit(90s);
  ASSERT_TRUE(sender_exit.has_value()) << "the sender hangs after the gateway stopped";
  EXPECT_EQ(*sender_exit, 1) << sender.read_stdout() << sender.read_stderr();

  const auto lines = read_lines(report);
  EXPECT_EQ(lines.size(), static_cast<std::size_t>(kCount)) << "every instance is reported";
  std::set<std::string> confirmed;
  std::size_t failed = 0;
  for (const auto& line : lines) {
    const auto words = words_of(line);
    ASSERT_GE(words.size(), 4u) << line;
    if (words[0] == "OK") {
      confirmed.insert(words[words.size() - 2]);
    } else {
      EXPECT_EQ(words[0], "FAILED") << line;
      ++failed;
    }
  }
  EXPECT_GE(confirmed.size(), 20u);
  EXPECT_GE(failed, 1u) << "the SIGTERM landed after the whole transfer; nothing was tested";

  // Every confirmed instance is indexed with an intact file; nothing is half-written.
  const auto indexed_list = gw->sop_instance_uids();
  const std::set<std::string> indexed(indexed_list.begin(), indexed_list.end());
  for (const auto& uid : confirmed) {
    ASSERT_TRUE(indexed.contains(uid)) << uid << " was confirmed but is not in the index";
  }
  // And nothing more. The SCP answers the store it is receiving before it aborts
  // (scp_requests.cpp: the loop top waits for in_progress == 0 once stopping), and this sender
  // (no --async: a window of one) sends the next request only after it has read and reported
  // the previous response. So when the gateway closes, nothing the sender sent is unread (the
  // close is a FIN, not a reset that could drop the last response), and the response of the
  // last stored instance is in the sender's socket ahead of the A-ABORT: every indexed
  // instance was confirmed. (With a window > 1 the sender may have more requests in flight,
  // whose unread bytes make the close a reset: then this would not hold.)
  EXPECT_EQ(indexed.size(), confirmed.size()) << "stored, but the sender never saw the answer";
  for (const auto& uid : indexed) {
    const auto source = source_by_uid.find(uid);
    ASSERT_NE(source, source_by_uid.end()) << uid;
    const auto stored = gw->stored_file(uid);
    ASSERT_TRUE(stored.has_value() && fs::is_regular_file(*stored)) << uid;
    EXPECT_TRUE(data_set_bytes(*stored) == data_set_bytes(source->second)) << *stored;
  }
  EXPECT_EQ(gw->storage_files().size(), indexed.size());
  EXPECT_TRUE(gw->spool_files().empty()) << gw->spool_files().size() << " file(s) left in spool/";
}

/// A raw DICOM peer on a loopback TCP connection: whole PDUs out, whole PDUs in, every read
/// bounded (poll).
class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("RawPeer: cannot connect to 127.0.0.1:" + std::to_string(port));
    }
  }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;
  ~RawPeer() { ::close(fd_); }

  /// False if the peer has closed (EPIPE, ECONNRESET).
  bool send(std::span<const std::uint8_t> bytes) {
    for (std::size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// One P-DATA-TF with one PDV.
  bool send_pdv(std::uint8_t context_id, bool is_command, bool is_last,
                std::span<const std::uint8_t> data) {
    const auto header = dicom::encode_p_data_header(context_id, is_command, is_last,
                                                    static_cast<std::uint32_t>(data.size()));
    return send(header) && send(data);
  }

  /// The next whole PDU (header included); nullopt when the connection ended (EOF or reset)
  /// first. Throws if nothing arrives within `bound`.
  std::optional<std::vector<std::uint8_t>> read_pdu(std::chrono::milliseconds bound = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    std::vector<std::uint8_t> pdu;
    std::size_t want = dicom::kPduHeaderSize;
    while (pdu.size() < want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("RawPeer: no PDU within the bound");
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      std::uint8_t buf[4096];
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, want - pdu.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      pdu.insert(pdu.end(), buf, buf + n);
      if (want == dicom::kPduHeaderSize && pdu.size() == want) {
        want += std::size_t{pdu[2]} << 24 | std::size_t{pdu[3]} << 16 | std::size_t{pdu[4]} << 8 |
                std::size_t{pdu[5]};
        if (want > (1u << 20)) throw std::runtime_error("RawPeer: PDU too long for this test");
      }
    }
    return pdu;
  }

 private:
  int fd_;
};

dicom::AssociateRq associate_rq(const std::string& abstract_syntax,
                                const std::string& transfer_syntax) {
  dicom::AssociateRq rq;
  rq.called_ae = "DICOM_GW";
  rq.calling_ae = "RAW_PEER";
  rq.contexts.push_back({1, abstract_syntax, {transfer_syntax}});
  rq.user_info.max_pdu_length = 16384;
  rq.user_info.implementation_class_uid = "1.2.826.0.1.3680043.10.98";
  return rq;
}

// After SIGTERM no association starts, while one that is receiving a store still gets its
// answer. What a peer sees depends on where it was (scp.cpp, docs/ARCHITECTURE.md "Shutdown"):
//  - connect() after the listeners closed: refused by the kernel;
//  - connected before, A-ASSOCIATE-RQ not yet sent: the connection is idle, so the shutdown
//    cancels it and closes it; its RQ after the SIGTERM is never accepted;
//  - an RQ read after the shutdown began (a connection registered after begin_shutdown(), e.g.
//    one still in its TLS handshake) is answered A-ASSOCIATE-RJ transient "shutting down". That
//    path is a race by nature here, so the held connection accepts it too, but never an AC.
TEST(Lifecycle, AfterSigtermNoNewAssociationAndTheStoreInProgressIsAnswered) {
  TempDir dir("gw-life");
  const auto files =
      generate_dicom(dir / "source", {"--count", "1", "--seed", "44", "--size-kib", "64"});
  ASSERT_EQ(files.size(), 1u);
  const auto header = dicom::read_part10_header(files[0]);
  ASSERT_TRUE(header.ok());
  const auto data_set = data_set_bytes(files[0]);
  ASSERT_GT(data_set.size(), 32u * 1024);

  auto gw = Gateway::start();  // shutdown_grace 30 s, idle_timeout 300 s

  // A store in progress: the C-STORE-RQ and the first 16 KiB of its data set.
  RawPeer busy(gw->port());
  const auto rq =
      associate_rq(header->meta.media_storage_sop_class_uid, header->meta.transfer_syntax_uid);
  ASSERT_TRUE(busy.send(dicom::encode_associate_rq(rq)));
  const auto ac = busy.read_pdu();
  ASSERT_TRUE(ac.has_value() && (*ac)[0] == 0x02) << gw->log();
  dicom::Command store;
  store.command_field = dicom::CommandField::kCStoreRq;
  store.message_id = 7;
  store.affected_sop_class_uid = header->meta.media_storage_sop_class_uid;
  store.affected_sop_instance_uid = header->meta.media_storage_sop_instance_uid;
  store.priority = 0;
  store.data_set_type = dicom::kDataSetPresent;
  ASSERT_TRUE(busy.send_pdv(1, true, true, dicom::encode_command(store)));
  constexpr std::size_t kChunk = 8192;
  const std::span<const std::uint8_t> all(data_set);
  std::size_t sent = 0;
  for (; sent < 2 * kChunk; sent += kChunk) {
    ASSERT_TRUE(busy.send_pdv(1, false, false, all.subspan(sent, kChunk)));
  }
  // A connection that has not said anything yet.
  RawPeer held(gw->port());
  // The gateway has read the C-STORE-RQ and spools the data set (no longer idle); SIGTERM.
  ASSERT_TRUE(wait_until([&] { return !gw->spool_files().empty(); }, 10s)) << gw->log();
  ASSERT_TRUE(gw->process().signal_group(SIGTERM));
  ASSERT_TRUE(wait_until(
      [&] { return gw->log().find("event=shutdown_started") != std::string::npos; }, 10s))
      << gw->log();

  // The listener is closed: a new connection is refused.
  EXPECT_TRUE(wait_until([&] { return !port_accepts(gw->port()); }, 10s));
  // The held connection's A-ASSOCIATE-RQ is not accepted.
  held.send(dicom::encode_associate_rq(associate_rq("1.2.840.10008.1.1", "1.2.840.10008.1.2")));
  const auto answer = held.read_pdu();
  if (answer.has_value()) {
    ASSERT_EQ((*answer)[0], 0x03) << "expected A-ASSOCIATE-RJ or a closed connection";
    const auto rj = dicom::parse_associate_rj(std::span(*answer).subspan(dicom::kPduHeaderSize));
    ASSERT_TRUE(rj.ok());
    EXPECT_EQ(rj->result, dicom::RejectResult::kTransient) << dicom::describe(*rj);
  }
  EXPECT_TRUE(gw->process().running()) << "the gateway left before answering the store";

  // The rest of the data set: the store is answered (success), then the association aborted.
  for (; sent < data_set.size(); sent += kChunk) {
    const std::size_t n = std::min(kChunk, data_set.size() - sent);
    ASSERT_TRUE(busy.send_pdv(1, false, sent + n == data_set.size(), all.subspan(sent, n)));
  }
  const auto rsp_pdu = busy.read_pdu();
  ASSERT_TRUE(rsp_pdu.has_value()) << gw->log();
  ASSERT_EQ((*rsp_pdu)[0], 0x04) << gw->log();
  std::vector<dicom::Pdv> pdvs;
  ASSERT_TRUE(
      dicom::parse_p_data_tf(std::span(*rsp_pdu).subspan(dicom::kPduHeaderSize), pdvs).ok());
  ASSERT_EQ(pdvs.size(), 1u);
  ASSERT_TRUE(pdvs[0].is_command && pdvs[0].is_last);
  const auto rsp = dicom::parse_command(pdvs[0].data);
  ASSERT_TRUE(rsp.ok());
  EXPECT_EQ(rsp->command_field, dicom::CommandField::kCStoreRsp);
  EXPECT_EQ(rsp->message_id_responded_to, std::optional<std::uint16_t>(7));
  EXPECT_EQ(rsp->status, std::optional<std::uint16_t>(dicom::status::kSuccess));
  const auto abort = busy.read_pdu();
  ASSERT_TRUE(abort.has_value()) << gw->log();
  EXPECT_EQ((*abort)[0], 0x07) << "expected A-ABORT after the response";

  const auto exit_code = gw->process().wait_for_exit(40s);
  ASSERT_TRUE(exit_code.has_value()) << gw->log();
  EXPECT_EQ(*exit_code, 0) << gw->log();
  EXPECT_EQ(gw->count_instances(), 1);
  const auto stored = gw->stored_file(header->meta.media_storage_sop_instance_uid);
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(data_set_bytes(*stored) == data_set);
}

/// A fake Storage SCP on 127.0.0.1 that accepts one association (every proposed context, first
/// transfer syntax), reads the start of the first message and then resets the connection
/// (SO_LINGER 0): a peer that crashes or is killed in the middle of a transfer.
class DroppingScp {
 public:
  DroppingScp() : listen_fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("DroppingScp: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve_one(); });
  }
  DroppingScp(const DroppingScp&) = delete;
  DroppingScp& operator=(const DroppingScp&) = delete;
  ~DroppingScp() {
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept() if nobody came
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  bool associated() const { return associated_; }

 private:
  static bool read_exact(int fd, std::uint8_t* out, std::size_t n) {
    timeval tv{10, 0};  // never block the test for long
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (std::size_t got = 0; got < n;) {
      const ssize_t r = ::recv(fd, out + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

  void serve_one() {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::vector<std::uint8_t> header(6);
    if (read_exact(fd, header.data(), 6) && header[0] == 0x01) {
      const std::size_t length = static_cast<std::size_t>(header[2]) << 24 |
                                 static_cast<std::size_t>(header[3]) << 16 |
                                 static_cast<std::size_t>(header[4]) << 8 | header[5];
      std::vector<std::uint8_t> body(std::min<std::size_t>(length, 1 << 16));
      if (length == body.size() && read_exact(fd, body.data(), body.size())) {
        auto rq = dicom::parse_associate_rq(body);
        if (rq.ok()) {
          dicom::AssociateAc ac;
          ac.called_ae = rq->called_ae;
          ac.calling_ae = rq->calling_ae;
          for (const auto& pc : rq->contexts) {
            ac.contexts.push_back(
                {pc.id, dicom::PcResult::kAcceptance, pc.transfer_syntaxes.front()});
          }
          ac.user_info.max_pdu_length = 16384;
          ac.user_info.implementation_class_uid = "1.2.826.0.1.3680043.10.98";
          const auto pdu = dicom::encode_associate_ac(ac);
          if (::send(fd, pdu.data(), pdu.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(pdu.size())) {
            associated_ = true;
            std::vector<std::uint8_t> some(1024);
            (void)read_exact(fd, some.data(), some.size());  // the start of the C-STORE-RQ
          }
        }
      }
    }
    linger reset{1, 0};  // close → RST, as when the process dies with unread data
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(fd);
  }

  int listen_fd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> associated_{false};
  std::thread thread_;
};

TEST(Lifecycle, SenderExitsWhenThePeerDropsTheConnectionMidTransfer) {
  TempDir dir("gw-life");
  const auto files =
      generate_dicom(dir / "source", {"--count", "5", "--seed", "43", "--size-kib", "256"});
  ASSERT_EQ(files.size(), 5u);
  DroppingScp scp;
  const fs::path report = dir / "report.txt";
  // --timeout 30: connect/association 30 s, responses 60 s. The connection is gone at once, so
  // there is nothing left to wait for: the sender must not sit out one of its timeouts.
  const CommandResult sent = run_command(
      {gateway_binary().string(), "send", "--no-progress", "--timeout", "30", "--report",
       report.string(), "127.0.0.1", std::to_string(scp.port()), (dir / "source").string()},
      {}, 20s);
  EXPECT_TRUE(scp.associated());
  EXPECT_FALSE(sent.timed_out)
      << "dicom-gw send still runs 20 s after the peer reset the connection (killed):\n"
      << both(sent) << "report:\n"
      << read_text(report);
  EXPECT_EQ(sent.exit_code, 1) << both(sent);
  const auto lines = read_lines(report);
  EXPECT_EQ(lines.size(), files.size()) << read_text(report);
  for (const auto& line : lines) EXPECT_EQ(line.rfind("FAILED ", 0), 0u) << line;
}

// ---- config check -----------------------------------------------------------------------------

TEST(Lifecycle, ConfigCheckListsEveryMistake) {
  TempDir dir("gw-life");
  const fs::path bad = dir / "bad.yaml";
  std::ofstream(bad) << "data_dir: " << (dir / "data").string() << "\n"
                     << "listeners:\n"
                     << "  - {name: plain, bind: 127.0.0.1, port: 70000}\n"
                     << "storage:\n"
                     << "  duplicates: sometimes\n"
                     << "limits:\n"
                     << "  max_associations: 0\n";
  const CommandResult r =
      run_command({gateway_binary().string(), "config", "check", "--config", bad.string()});
  EXPECT_EQ(r.exit_code, 2) << both(r);
  for (const char* path : {"listeners[0].port", "storage.duplicates", "limits.max_associations"}) {
    EXPECT_NE(r.err.find(path), std::string::npos) << path << " missing from:\n" << r.err;
  }

  const fs::path good = dir / "good.yaml";
  std::ofstream(good) << "data_dir: " << (dir / "data").string() << "\n"
                      << "listeners:\n"
                      << "  - {name: plain, bind: 127.0.0.1, port: 11112}\n"
                      << "storage:\n"
                      << "  duplicates: reject\n"
                      << "limits:\n"
                      << "  max_associations: 4\n";
  const CommandResult ok =
      run_command({gateway_binary().string(), "config", "check", "--config", good.string()});
  EXPECT_EQ(ok.exit_code, 0) << both(ok);
}

// ---- CLI misuse -------------------------------------------------------------------------------

TEST(Lifecycle, BadUsageExitsTwo) {
  const CommandResult no_args = run_command({gateway_binary().string(), "send"});
  EXPECT_EQ(no_args.exit_code, 2) << both(no_args);
  EXPECT_FALSE(no_args.err.empty());

  const CommandResult no_command = run_command({gateway_binary().string()});
  EXPECT_EQ(no_command.exit_code, 2) << both(no_command);

  const CommandResult unknown = run_command({gateway_binary().string(), "send", "--bogus", "x"});
  EXPECT_EQ(unknown.exit_code, 2) << both(unknown);
}

}  // namespace
}  // namespace gw::test
