#pragma once
// The DICOM TLS e2e tests' fixture (tls_test.cpp, tls_policy_test.cpp): a test PKI per test,
// gateways with TLS listeners, raw connections and an in-process SCU association.
//
// Certificates are generated per test with gw::certs (a root CA with an intermediate; leaves
// carry the intermediate in their cert file, as a server must present it).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "certs/pki.h"
#include "dicom/scu.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/test_pki.h"

namespace gw::test::tls_e2e {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::system_clock;

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline std::string strip_leading_zeros(std::string hex) {
  const auto pos = hex.find_first_not_of('0');
  return pos == std::string::npos ? "0" : hex.substr(pos);
}

/// A raw TCP connection to 127.0.0.1:PORT that sends only what the test tells it to.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
    }
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() { ::close(fd_); }

  bool send_all(const std::vector<std::uint8_t>& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// True if the peer has closed the connection (EOF or error) by now; does not wait.
  bool peer_closed() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    std::uint8_t byte = 0;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

 private:
  int fd_;
};

/// An io_context on its own thread, for coroutines the test runs one at a time while the
/// associations they opened stay open in between.
class IoThread {
 public:
  IoThread() : work_(asio::make_work_guard(io_)), thread_([this]() { io_.run(); }) {}
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  ~IoThread() { stop(); }

  asio::any_io_executor executor() { return io_.get_executor(); }
  /// Runs `body` on the io thread and waits (bounded) for its result.
  template <class T>
  T run(const std::function<asio::awaitable<T>()>& body,
        std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::optional<T> out;  // co_spawn's future would need a default-constructible T
    auto done = asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { out.emplace(co_await body()); }, asio::use_future);
    if (done.wait_for(timeout) != std::future_status::ready) {
      stop();  // the coroutine refers to this frame: it must not run on
      throw std::runtime_error("coroutine did not finish in time");
    }
    done.get();  // rethrows what the coroutine threw
    return std::move(*out);
  }
  /// Stops and joins the thread; the io_context (and what lives on it) stays until destroyed.
  void stop() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::jthread thread_;
};

/// C-STORE of one file on an open association; the response status.
asio::awaitable<core::Result<std::uint16_t>> store_one(dicom::ScuAssociation& assoc,
                                                       const dicom::SendItem& item) {
  auto id = co_await assoc.send_store(item);
  if (!id.ok()) co_return id.error();
  auto rsp = co_await assoc.next_response();
  if (!rsp.ok()) co_return rsp.error();
  co_return rsp->status.value_or(0xFFFF);
}

/// Refused-protocol probes: ECDHE-ECDSA suites our ECDSA server certificate could serve, with
/// the *client's* security level lowered (PEERS.md), so only the server's policy can refuse.
struct OldTlsProbe {
  std::string version_flag;  ///< s_client's
  std::string protocol;      ///< as s_client's "Protocol  :" line names it
  std::string cipher;        ///< the suite a permissive server picks
};
inline const std::vector<OldTlsProbe>& old_tls_probes() {
  static const std::vector<OldTlsProbe> probes = {
      {"-tls1", "TLSv1", "ECDHE-ECDSA-AES128-SHA"},
      {"-tls1_1", "TLSv1.1", "ECDHE-ECDSA-AES128-SHA"},
      {"-tls1_2", "TLSv1.2", "ECDHE-ECDSA-AES128-SHA256"},  // CBC under TLS 1.2
  };
  return probes;
}
inline constexpr const char* kCbcSuites =
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0";

class TlsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_.path());
    chain_ = pki_->chain();
    root_ = pki_->root();
    server_serial_ = issue("server", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    issue("client", certs::CertKind::kClient, {});
  }

  fs::path ca_dir() const { return pki_->ca_dir(); }
  fs::path cert(const std::string& name) const { return pki_->cert(name); }
  fs::path key(const std::string& name) const { return pki_->key(name); }

  /// Issues NAME.pem/NAME.key (leaf + intermediate) from the test CA; returns the serial.
  std::string issue(const std::string& name, certs::CertKind kind, std::vector<std::string> sans) {
    return pki_->issue(name, kind, std::move(sans));
  }

  /// A certificate the gateway must refuse (leaf only in the cert file).
  void issue_test(const std::string& name, certs::TestCertificateOptions o) {
    pki_->issue_test(name, std::move(o));
  }

  /// The `tls:` block: server certificate NAME, CA bundle `ca` (default: intermediate + root).
  std::string tls_yaml(const std::string& extra = "", const std::string& server = "server",
                       fs::path ca = {}) const {
    if (ca.empty()) ca = chain_;
    return "tls:\n  enabled: true\n  cert_file: " + cert(server).string() +
           "\n  key_file: " + key(server).string() + "\n  ca_file: " + ca.string() + "\n" + extra;
  }

  std::unique_ptr<Gateway> start(const std::string& tls) {
    GatewayOptions o;
    o.tls_yaml = tls;
    return Gateway::start(o);
  }

  /// DCMTK's TLS flags: own identity NAME, trust `ca` (default: intermediate + root).
  std::vector<std::string> dcmtk_tls(const std::string& name, fs::path ca = {}) const {
    return {"+tls", key(name).string(), cert(name).string(), "+cf",
            (ca.empty() ? chain_ : ca).string()};
  }

  /// `dicom-gw echo --aec DICOM_GW --tls [flags] HOST PORT`.
  CommandResult gw_echo(const std::string& host, std::uint16_t port,
                        std::vector<std::string> flags) const {
    std::vector<std::string> argv{
        gateway_binary().string(), "echo", "--aec", "DICOM_GW", "--timeout", "10", "--tls"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(host);
    argv.push_back(std::to_string(port));
    return run_command(argv, {}, std::chrono::seconds(30));
  }
  std::vector<std::string> gw_identity(const std::string& name) const {
    return {"--cert", cert(name).string(), "--key", key(name).string(), "--ca", chain_.string()};
  }

  /// `openssl s_client -connect 127.0.0.1:PORT ARGS` (stdin /dev/null: it ends after the
  /// handshake).
  CommandResult s_client(std::uint16_t port, std::vector<std::string> args) const {
    std::vector<std::string> argv{"openssl", "s_client", "-connect",
                                  "127.0.0.1:" + std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, {}, std::chrono::seconds(20));
  }

  /// The serial number of the certificate the listener serves now.
  std::string served_serial(std::uint16_t port) const {
    const std::string cmd = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                            " -cert " + cert("client").string() + " -key " +
                            key("client").string() + " -CAfile " + chain_.string() +
                            " </dev/null 2>/dev/null | openssl x509 -noout -serial";
    auto r = run_command({"sh", "-c", cmd}, {}, std::chrono::seconds(20));
    auto out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    const std::string prefix = "serial=";
    return out.rfind(prefix, 0) == 0 ? strip_leading_zeros(out.substr(prefix.size())) : out;
  }

  /// Waits (bounded) until the gateway's log mentions `text`.
  static bool log_shows(Gateway& gw, const std::string& text) {
    return wait_until([&]() { return contains(gw.log(), text); }, std::chrono::seconds(10));
  }

  /// Waits (bounded) until the gateway's log after its first `from` bytes mentions `text`.
  static bool log_shows_after(Gateway& gw, std::size_t from, const std::string& text) {
    return wait_until([&]() { return gw.log().find(text, from) != std::string::npos; },
                      std::chrono::seconds(10));
  }

  /// s_client arguments of an old-protocol probe, with the client certificate (so a refusal is
  /// never about a missing certificate).
  std::vector<std::string> probe_args(const OldTlsProbe& probe) const {
    return {"-cert",
            cert("client").string(),
            "-key",
            key("client").string(),
            probe.version_flag,
            "-cipher",
            kCbcSuites};
  }

  /// `openssl s_server` with our server certificate that allows TLS 1.0+ and every suite
  /// (security level 0): the control that shows a probe can succeed. Returns its port.
  std::uint16_t start_permissive_server(std::optional<Process>& server) const {
    for (int attempt = 0; attempt < 5; ++attempt) {
      const std::uint16_t port = free_tcp_port();
      ProcessOptions po;
      po.argv = {"openssl", "s_server",
                 "-accept", "127.0.0.1:" + std::to_string(port),
                 "-cert",   cert("server").string(),
                 "-key",    key("server").string(),
                 "-cipher", "ALL:@SECLEVEL=0",
                 "-www"};  // -www: serves connection after connection
      po.log_dir = dir_.path() / "s_server-log";
      server.emplace(Process::start(po));
      if (wait_for_port(port, std::chrono::seconds(10)) && server->running()) return port;
      server.reset();
    }
    throw std::runtime_error("openssl s_server did not listen");
  }

  /// An admin bearer token for the gateway's REST API (made with the CLI).
  std::string admin_token(Gateway& gw) const {
    const std::string config = gw.config_path().string();
    auto added =
        run_command_with_input({gateway_binary().string(), "user", "add", "--name", "admin",
                                "--role", "admin", "--config", config},
                               "admin password, long enough\n", {}, std::chrono::seconds(60));
    EXPECT_TRUE(added.ok()) << added.out << added.err;
    auto token = run_command({gateway_binary().string(), "user", "token", "--name", "admin",
                              "--ttl", "1h", "--config", config},
                             {}, std::chrono::seconds(60));
    EXPECT_TRUE(token.ok()) << token.out << token.err;
    std::string out = token.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

  /// GET /api/v1/metrics (Prometheus text); empty on failure.
  static std::string metrics(Gateway& gw, const std::string& token) {
    const auto r =
        run_command({"curl", "-sS", "--max-time", "20", "-H", "Authorization: Bearer " + token,
                     "http://127.0.0.1:" + std::to_string(gw.http_port()) + "/api/v1/metrics"},
                    {}, std::chrono::seconds(30));
    return r.ok() ? r.out : std::string();
  }

  TempDir dir_{"gw-e2e-tls"};
  std::unique_ptr<TestPki> pki_;
  fs::path chain_;
  fs::path root_;
  std::string server_serial_;
};

}  // namespace gw::test::tls_e2e
