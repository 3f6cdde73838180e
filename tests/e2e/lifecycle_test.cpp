// The gateway process over its life: stopping with SIGTERM (idle and in the middle of a
// transfer), `dicom-gw demo`, `dicom-gw config check`, and command-line misuse.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dicom/pdu.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(p));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string both(const CommandResult& r) { return r.out + r.err; }

/// Number of rows in `instances` of an index database (read-only).
long long count_rows(const fs::path& db_path) {
  sqlite3* db = nullptr;
  long long n = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM instances", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return n;
}

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
  // The index may hold one more than confirmed (stored, answer lost), never a broken one.
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

// ---- demo -------------------------------------------------------------------------------------

struct Demo {
  Process process;
  std::uint16_t port;
};

/// The demo's TLS port defaults to 2762; tests running in parallel each need their own, and the
/// same demo directory keeps the same one (its config must not change between runs).
std::uint16_t tls_port_for(const fs::path& demo_dir) {
  static std::map<std::string, std::uint16_t> ports;
  auto [it, inserted] = ports.try_emplace(demo_dir.string(), 0);
  if (inserted) it->second = free_tcp_port();
  return it->second;
}

/// Likewise for the REST API port (default 8080).
std::uint16_t http_port_for(const fs::path& demo_dir) {
  static std::map<std::string, std::uint16_t> ports;
  auto [it, inserted] = ports.try_emplace(demo_dir.string(), 0);
  if (inserted) it->second = free_tcp_port();
  return it->second;
}

/// The token `dicom-gw demo` prints at its first run ("" when the output has none).
std::string printed_token(const std::string& out) {
  const std::string marker = "admin API token (shown once, valid 30 days): ";
  const auto at = out.find(marker);
  if (at == std::string::npos) return "";
  const auto start = at + marker.size();
  return out.substr(start, out.find('\n', start) - start);
}

Demo start_demo(const fs::path& demo_dir, std::uint16_t port, const fs::path& log_dir,
                const std::string& name) {
  ProcessOptions po;
  po.argv = {gateway_binary().string(),
             "demo",
             "--dir",
             demo_dir.string(),
             "--port",
             std::to_string(port),
             "--tls-port",
             std::to_string(tls_port_for(demo_dir)),
             "--http-port",
             std::to_string(http_port_for(demo_dir))};
  po.log_dir = log_dir;
  po.log_name = name;
  po.die_with_parent = false;
  return Demo{Process::start(std::move(po)), port};
}

TEST(Lifecycle, DemoServesAndReusesItsDirectory) {
  TempDir dir("gw-life");
  const fs::path demo_dir = dir / "demo";
  const std::uint16_t port = free_tcp_port();

  Demo demo = start_demo(demo_dir, port, dir / "logs", "demo-1");
  ASSERT_TRUE(wait_for_port(port, 15s)) << demo.process.read_stderr();
  const std::string out = demo.process.read_stdout();
  EXPECT_NE(out.find("echoscu -aec DICOM_GW 127.0.0.1 " + std::to_string(port)), std::string::npos)
      << out;
  EXPECT_NE(out.find("dicom-gw send"), std::string::npos) << out;
  EXPECT_NE(out.find(demo_dir.string()), std::string::npos) << out;
  ASSERT_TRUE(fs::is_regular_file(demo_dir / "config.yaml"));

  const CommandResult echo = run_echoscu("127.0.0.1", port, "DICOM_GW");
  EXPECT_TRUE(echo.ok()) << both(echo);
  // The first run made an admin and printed its API token once; the API takes it.
  const std::string token = printed_token(out);
  ASSERT_FALSE(token.empty()) << out;
  const std::string api = "http://127.0.0.1:" + std::to_string(http_port_for(demo_dir));
  ASSERT_TRUE(wait_for_port(http_port_for(demo_dir), 15s));
  const CommandResult status =
      run_command({"curl", "-sS", "--fail", "--max-time", "10", "-H",
                   "Authorization: Bearer " + token, api + "/api/v1/status"});
  EXPECT_TRUE(status.ok()) << both(status);
  const CommandResult anonymous =
      run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                   api + "/api/v1/status"});
  EXPECT_EQ(anonymous.out, "401");
  const auto files = generate_dicom(dir / "source", {"--count", "3", "--seed", "42"});
  const CommandResult sent =
      run_command({gateway_binary().string(), "send", "--no-progress", "--aec", "DICOM_GW",
                   "127.0.0.1", std::to_string(port), (dir / "source").string()});
  EXPECT_TRUE(sent.ok()) << both(sent);
  EXPECT_EQ(demo.process.terminate(15s), 0) << demo.process.read_stderr();
  const std::string config_before = read_text(demo_dir / "config.yaml");

  // Again on the same directory: same config, the data received before is still there.
  Demo again = start_demo(demo_dir, port, dir / "logs", "demo-2");
  ASSERT_TRUE(wait_for_port(port, 15s)) << again.process.read_stderr();
  EXPECT_EQ(read_text(demo_dir / "config.yaml"), config_before);
  // The token is shown once: a later run says how to make another one.
  const std::string out_again = again.process.read_stdout();
  EXPECT_EQ(printed_token(out_again), "") << out_again;
  EXPECT_NE(out_again.find("dicom-gw user token"), std::string::npos) << out_again;
  EXPECT_TRUE(run_echoscu("127.0.0.1", port, "DICOM_GW").ok());
  EXPECT_EQ(count_rows(demo_dir / "data" / "index.db"), 3);
  EXPECT_EQ(again.process.terminate(15s), 0) << again.process.read_stderr();
}

TEST(Lifecycle, DemoAgainWithAnotherPortServesWhereItSays) {
  TempDir dir("gw-life");
  const fs::path demo_dir = dir / "demo";
  const std::uint16_t first_port = free_tcp_port();
  {
    const CommandResult made = run_command(
        {gateway_binary().string(), "demo", "--dir", demo_dir.string(), "--port",
         std::to_string(first_port), "--tls-port", std::to_string(tls_port_for(demo_dir)),
         "--http-port", std::to_string(http_port_for(demo_dir)), "--no-serve"});
    ASSERT_TRUE(made.ok()) << both(made);
  }
  std::uint16_t second_port = free_tcp_port();
  while (second_port == first_port) second_port = free_tcp_port();
  Demo demo = start_demo(demo_dir, second_port, dir / "logs", "demo");
  // It listens on one of the two ports; whichever, the instructions must name that one.
  ASSERT_TRUE(
      wait_until([&] { return port_accepts(first_port) || port_accepts(second_port); }, 15s))
      << demo.process.read_stderr();
  const std::uint16_t serving = port_accepts(second_port) ? second_port : first_port;
  const std::string out = demo.process.read_stdout();
  EXPECT_NE(out.find("127.0.0.1:" + std::to_string(serving)), std::string::npos)
      << "demo prints port " << second_port << " but serves on " << serving << ":\n"
      << out;
  EXPECT_NE(out.find("echoscu -aec DICOM_GW 127.0.0.1 " + std::to_string(serving)),
            std::string::npos)
      << out;
  EXPECT_EQ(demo.process.terminate(15s), 0);
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
