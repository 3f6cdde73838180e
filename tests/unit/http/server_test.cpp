// The HTTP layer on a real loopback socket (port 0): security headers on every response, body
// limits whatever the framing, JSON for httplib's own errors, and a stop that returns.
#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/ip_network.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/routes.h"
#include "index/index.h"

namespace gw::http {
namespace {

/// Sends `request` as is and returns the first response (headers, then Content-Length bytes of
/// body unless `head`), as a client does that then closes.
std::string round_trip(std::uint16_t port, const std::string& request, bool head = false,
                       int timeout_s = 10) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    ADD_FAILURE() << "connect failed";
    return {};
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (413): read what it answered
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  char buf[4096];
  for (;;) {
    const auto end = response.find("\r\n\r\n");
    if (end != std::string::npos) {
      const auto cl = response.find("Content-Length: ");
      const std::size_t length =
          head || cl == std::string::npos || cl > end ? 0 : std::stoul(response.substr(cl + 16));
      if (response.size() >= end + 4 + length) break;
    }
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return response;
}

int status_of(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}
std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}
bool has_header(const std::string& response, const std::string& line) {
  const std::string head = response.substr(0, response.find("\r\n\r\n")) + "\r\n";
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

class ServerTest : public ::testing::Test {
 protected:
  /// Options of the server under test beyond the body limit (derived fixtures).
  virtual void customize(ServerOptions&) {}

  void SetUp() override {
    auto index = index::open_index(":memory:", {});
    ASSERT_TRUE(index.ok());
    index_ = std::move(index).value();
    auth_ = std::make_unique<Authenticator>(*index_);
    auto router = Router::create({
        {"GET", "/health", std::nullopt,
         [](const Request&) {
           return json_response(200, {{"status", "ok"}});
         },
         ""},
        {"POST", "/echo", std::nullopt,
         [](const Request& r) {
           Json files = Json::object();
           for (const auto& [name, part] : r.files) files[name] = part.content.size();
           return json_response(200, {{"size", r.body.size()},
                                      {"files", files},
                                      {"peer", r.peer_address},
                                      {"client", r.client_ip},
                                      {"query", r.query_value("q").value_or("")}});
         },
         ""},
        {"GET", "/boom", std::nullopt,
         [](const Request&) -> Response { throw std::runtime_error("bug"); }, ""},
        {"GET", "/private", index::Role::kViewer,
         [](const Request&) { return json_response(200, nullptr); }, ""},
    });
    ASSERT_TRUE(router.ok());
    dispatcher_ = std::make_unique<Dispatcher>(std::move(router).value(), *auth_);
    ServerOptions options;
    options.max_body_bytes = 64 * 1024;
    customize(options);
    auto server = Server::create(options, *dispatcher_);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
    server_->start();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  std::unique_ptr<index::Index> index_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

constexpr const char* kSecurityHeaders[] = {
    "X-Content-Type-Options: nosniff", "X-Frame-Options: DENY",
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy: no-referrer", "Cache-Control: no-store"};

TEST_F(ServerTest, SecurityHeadersOnEveryResponseAndNoCors) {
  for (const std::string request :
       {"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /private HTTP/1.1\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n",
        "BREW /health HTTP/1.1\r\nConnection: close\r\n\r\n", "garbage\r\n\r\n"}) {
    const auto response = round_trip(port_, request);
    ASSERT_FALSE(response.empty()) << request;
    for (const char* h : kSecurityHeaders) EXPECT_TRUE(has_header(response, h)) << h << response;
    EXPECT_EQ(response.find("Access-Control-"), std::string::npos);
    EXPECT_EQ(response.find("Strict-Transport-Security"), std::string::npos);  // plain HTTP
    const auto body = Json::parse(body_of(response), nullptr, false);
    EXPECT_TRUE(body.is_object()) << response;
    if (status_of(response) >= 400) {
      EXPECT_TRUE(body.contains("error") && body.contains("message")) << response;
    }
  }
  EXPECT_EQ(status_of(round_trip(port_, "GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n")),
            404);
  EXPECT_EQ(status_of(round_trip(port_, "BREW /health HTTP/1.1\r\nConnection: close\r\n\r\n")),
            400);
}

TEST_F(ServerTest, BodiesAreLimitedWhateverTheFraming) {
  const std::string big(100 * 1024, 'x');
  // Declared too large: refused before the body is read.
  auto declared = round_trip(port_,
                             "POST /echo HTTP/1.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: " +
                                 std::to_string(big.size()) + "\r\n\r\n" + big);
  EXPECT_EQ(status_of(declared), 413);
  EXPECT_TRUE(has_header(declared, "Connection: close")) << declared;
  EXPECT_EQ(Json::parse(body_of(declared))["error"], "too_large");
  // Declared with Expect: 100-continue: answered at once, with a length (no wait for a close).
  auto expect = round_trip(port_,
                           "POST /echo HTTP/1.1\r\nContent-Type: application/json\r\n"
                           "Expect: 100-continue\r\nContent-Length: 200000\r\n\r\n");
  EXPECT_EQ(status_of(expect), 413) << expect;
  EXPECT_NE(expect.find("Content-Length: "), std::string::npos) << expect;
  EXPECT_EQ(Json::parse(body_of(expect), nullptr, false)["error"], "too_large");
  // Chunked: counted as it arrives.
  std::string chunked = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i) chunked += "2800\r\n" + std::string(0x2800, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  EXPECT_EQ(status_of(round_trip(port_, chunked)), 413);
  // Within the limit, chunked or not.
  auto small = round_trip(port_,
                          "POST /echo?q=a%20b HTTP/1.1\r\nContent-Length: 5\r\nConnection: "
                          "close\r\n\r\nhello");
  ASSERT_EQ(status_of(small), 200) << small;
  EXPECT_EQ(Json::parse(body_of(small))["size"], 5);
  EXPECT_EQ(Json::parse(body_of(small))["query"], "a b");
  EXPECT_EQ(Json::parse(body_of(small))["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
  auto small_chunked =
      round_trip(port_,
                 "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: "
                 "close\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(Json::parse(body_of(small_chunked))["size"], 3);
}

TEST_F(ServerTest, APostWithoutLengthHasAnEmptyBodyAndDoesNotWait) {
  // The client keeps its side open and gives up reading after 5 s. A server that waited for a
  // body would hit its own 10 s read timeout first and never answer 200 within that bound.
  auto r = round_trip(port_, "POST /echo HTTP/1.1\r\nConnection: close\r\n\r\n", false, 5);
  EXPECT_EQ(status_of(r), 200) << r;
  EXPECT_EQ(Json::parse(body_of(r))["size"], 0);
}

TEST_F(ServerTest, MultipartPartsAreCountedAgainstTheLimitToo) {
  auto multipart = [&](std::size_t size) {
    const std::string body =
        "--XyZ\r\nContent-Disposition: form-data; name=\"cert_file\"; "
        "filename=\"c.pem\"\r\nContent-Type: application/x-pem-file\r\n\r\n" +
        std::string(size, 'c') + "\r\n--XyZ--\r\n";
    return round_trip(port_,
                      "POST /echo HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
                      "Connection: close\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  auto ok = multipart(1000);
  ASSERT_EQ(status_of(ok), 200) << ok;
  EXPECT_EQ(Json::parse(body_of(ok))["files"]["cert_file"], 1000);
  EXPECT_EQ(status_of(multipart(70 * 1024)), 413);
}

TEST_F(ServerTest, ADuplicatePartEndsTheConnectionItsBodyWasNotReadTo) {
  const std::string part =
      "--XyZ\r\nContent-Disposition: form-data; name=\"cert_file\"; "
      "filename=\"c.pem\"\r\n\r\ncert\r\n";
  const std::string body = part + part +
                           "--XyZ\r\nContent-Disposition: form-data; name=\"key_file\"\r\n\r\n" +
                           std::string(20 * 1024, 'k') + "\r\n--XyZ--\r\n";
  // Keep-alive: only the server can tell the client the connection ends.
  auto r = round_trip(port_,
                      "POST /echo HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
                      "Content-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(status_of(r), 400) << r;
  EXPECT_TRUE(has_header(r, "Connection: close")) << r;
  EXPECT_EQ(Json::parse(body_of(r))["error"], "invalid_argument");
}

TEST_F(ServerTest, WithoutTrustedProxiesXForwardedForIsIgnored) {
  auto r = round_trip(port_,
                      "POST /echo HTTP/1.1\r\nX-Forwarded-For: 203.0.113.5\r\n"
                      "Connection: close\r\n\r\n");
  ASSERT_EQ(status_of(r), 200) << r;
  EXPECT_EQ(Json::parse(body_of(r))["client"], "127.0.0.1");
  EXPECT_EQ(Json::parse(body_of(r))["peer"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
}

class TrustedProxyServerTest : public ServerTest {
 protected:
  void customize(ServerOptions& options) override {
    options.trusted_proxies.push_back(*config::parse_ip_network("127.0.0.0/8"));
  }
  Json echo(const std::string& forwarded_for) {
    const auto r = round_trip(port_, "POST /echo HTTP/1.1\r\nX-Forwarded-For: " + forwarded_for +
                                         "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_of(r), 200) << r;
    return Json::parse(body_of(r), nullptr, false);
  }
};

TEST_F(TrustedProxyServerTest, TheClientIsTheRightmostHopThatIsNotAProxy) {
  auto e = echo("198.51.100.1, 203.0.113.5");
  EXPECT_EQ(e["client"], "203.0.113.5");
  EXPECT_EQ(e["peer"], "203.0.113.5");
  EXPECT_EQ(echo("2001:DB8::7")["client"], "2001:db8::7");
  // A malformed header: the proxy itself is the client.
  EXPECT_EQ(echo("203.0.113.5, not-an-address")["client"], "127.0.0.1");
  // Without the header (a request from the proxy's host itself): the peer.
  auto plain = round_trip(port_, "POST /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Json::parse(body_of(plain))["client"], "127.0.0.1");
}

TEST(ClientAddress, OnlyATrustedPeerIsBelievedAndOnlyUpToTheFirstUntrustedHop) {
  const std::vector<config::IpNetwork> proxies = {*config::parse_ip_network("127.0.0.1"),
                                                  *config::parse_ip_network("10.0.0.0/8")};
  auto client = [&](const std::string& peer, std::optional<std::string> xff) {
    return client_address(peer, xff, proxies);
  };
  // An untrusted peer is the client, whatever it claims.
  EXPECT_EQ(client("192.0.2.1", "203.0.113.5").ip, "192.0.2.1");
  EXPECT_FALSE(client("192.0.2.1", "203.0.113.5").forwarded);
  EXPECT_EQ(client_address("127.0.0.1", "203.0.113.5", {}).ip, "127.0.0.1");
  // Trusted: the rightmost hop that is not a proxy; what the client wrote left of it is unread.
  EXPECT_EQ(client("127.0.0.1", "203.0.113.5").ip, "203.0.113.5");
  EXPECT_TRUE(client("127.0.0.1", "203.0.113.5").forwarded);
  EXPECT_EQ(client("127.0.0.1", "1.1.1.1, 203.0.113.5, 10.1.2.3").ip, "203.0.113.5");
  const auto junk_left = client("127.0.0.1", "junk, <script>, 203.0.113.5");
  EXPECT_EQ(junk_left.ip, "203.0.113.5");
  EXPECT_FALSE(junk_left.malformed);
  EXPECT_EQ(client("127.0.0.1", "10.0.0.9, 10.0.0.8").ip, "10.0.0.9");  // all proxies
  EXPECT_EQ(client("::ffff:127.0.0.1", "203.0.113.5").ip, "203.0.113.5");
  EXPECT_EQ(client("127.0.0.1", " [2001:DB8::1] ").ip, "2001:db8::1");
  EXPECT_EQ(client("127.0.0.1", "::ffff:203.0.113.5").ip, "203.0.113.5");
  // Absent or empty: the peer, not malformed.
  EXPECT_EQ(client("127.0.0.1", std::nullopt).ip, "127.0.0.1");
  EXPECT_FALSE(client("127.0.0.1", " ").malformed);
  // Malformed where it must be read: the peer.
  for (const std::string bad : {"203.0.113.5:4711", "unknown", "203.0.113.5,", "10.0.0.1, x"}) {
    const auto c = client("127.0.0.1", bad);
    EXPECT_EQ(c.ip, "127.0.0.1") << bad;
    EXPECT_TRUE(c.malformed) << bad;
    EXPECT_FALSE(c.forwarded) << bad;
  }
}

TEST(HttpConfig, TrustedProxiesAreAddressesOrBlocksRefusedWithTheirIndex) {
  const std::string minimal =
      "data_dir: /var/lib/dicom-gw\nlisteners:\n  - {name: plain, port: 11112}\n";
  auto none = config::parse_config(minimal, "/");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->http.trusted_proxies.empty()) << "nobody is trusted by default";
  auto ok = config::parse_config(
      minimal + "http: {trusted_proxies: [127.0.0.1, \"::1\", 10.0.0.0/8]}\n", "/");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->http.trusted_proxies, (std::vector<std::string>{"127.0.0.1", "::1", "10.0.0.0/8"}));
  std::vector<config::ConfigIssue> issues;
  auto bad = config::parse_config(
      minimal + "http: {trusted_proxies: [127.0.0.1, nginx, 10.0.0.0/33, [1]]}\n", "/", &issues);
  ASSERT_FALSE(bad.ok());
  std::vector<std::string> paths;
  for (const auto& issue : issues) paths.push_back(issue.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"http.trusted_proxies[1]", "http.trusted_proxies[2]",
                                             "http.trusted_proxies[3]"}));
}

/// The login route behind a proxy: its rate limit counts the forwarded client.
class LoginBehindProxyTest : public ::testing::Test {
 protected:
  void start(bool trust_loopback) {
    auto index = index::open_index(":memory:", {});
    ASSERT_TRUE(index.ok());
    index_ = std::move(index).value();
    RateLimitPolicy policy;
    policy.max_failures_per_user_address = 1;
    policy.max_failures_per_address = 1;
    limiter_ = std::make_unique<LoginRateLimiter>(policy);
    ctx_ = std::make_unique<ApiContext>(ApiContext{*index_, *limiter_, nullptr, system_now_ms});
    auth_ = std::make_unique<Authenticator>(*index_);
    auto router = Router::create(auth_routes(*ctx_));
    ASSERT_TRUE(router.ok());
    dispatcher_ = std::make_unique<Dispatcher>(std::move(router).value(), *auth_);
    ServerOptions options;
    if (trust_loopback) options.trusted_proxies.push_back(*config::parse_ip_network("127.0.0.1"));
    auto server = Server::create(options, *dispatcher_);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
    server_->start();
  }
  int login(const std::string& forwarded_for) {
    const std::string body = R"({"username": "vic", "password": "guess"})";
    return status_of(round_trip(
        server_->port(), "POST /api/v1/auth/token HTTP/1.1\r\nX-Forwarded-For: " + forwarded_for +
                             "\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body));
  }

  std::unique_ptr<index::Index> index_;
  std::unique_ptr<LoginRateLimiter> limiter_;
  std::unique_ptr<ApiContext> ctx_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Server> server_;
};

TEST_F(LoginBehindProxyTest, TheLimitCountsTheForwardedClient) {
  ASSERT_NO_FATAL_FAILURE(start(/*trust_loopback=*/true));
  EXPECT_EQ(login("203.0.113.5"), 401);
  EXPECT_EQ(login("203.0.113.5"), 429);
  EXPECT_EQ(login("203.0.113.6"), 401) << "another client behind the same proxy is not locked out";
  index::AuditQuery q;
  q.action = "auth.login_failed";
  auto rows = index_->list_audit(q);
  ASSERT_TRUE(rows.ok());
  std::set<std::string> peers;
  for (const auto& row : *rows) peers.insert(row.peer_address);
  EXPECT_EQ(peers, (std::set<std::string>{"203.0.113.5", "203.0.113.6"}));
}

TEST_F(LoginBehindProxyTest, AnUntrustedPeerCannotChooseItsAddress) {
  ASSERT_NO_FATAL_FAILURE(start(/*trust_loopback=*/false));
  EXPECT_EQ(login("203.0.113.5"), 401);
  EXPECT_EQ(login("203.0.113.6"), 429) << "a new X-Forwarded-For is no new address";
}

TEST_F(ServerTest, AHandlerExceptionIs500AndTheServerGoesOn) {
  auto r = round_trip(port_, "GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(r), 500);
  EXPECT_EQ(Json::parse(body_of(r))["error"], "internal");
  EXPECT_EQ(status_of(round_trip(port_, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")), 200);
}

TEST_F(ServerTest, HeadAnswersWithoutABody) {
  auto r = round_trip(port_, "HEAD /health HTTP/1.1\r\nConnection: close\r\n\r\n", true);
  EXPECT_EQ(status_of(r), 200);
  EXPECT_TRUE(body_of(r).empty());
}

TEST_F(ServerTest, StopReturnsAndThePortCloses) {
  const auto port = port_;
  // That stop() returns at all is the outcome (a hang is the failure, bounded by ctest's
  // timeout); how fast is not this test's business.
  server_->stop();
  server_->stop();  // idempotent
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
}

// httplib 0.11 gives a request no overall deadline: each connection holds a thread while its
// client trickles. Eight silent half-requests (twice the threads kept ready) must not keep
// /health waiting for their 10 s read timeouts.
TEST_F(ServerTest, SlowClientsDoNotTakeEveryThread) {
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string partial = "GET /health HTTP/1.1\r\nHost: x\r\n";  // no blank line yet
    ASSERT_EQ(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(partial.size()));
    slow.push_back(fd);
  }
  const auto response =
      round_trip(port_, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", false, 5);
  EXPECT_EQ(status_of(response), 200) << response;
  for (const int fd : slow) ::close(fd);
}

TEST(ServerCreate, APortInUseFailsAtCreate) {
  auto index = index::open_index(":memory:", {});
  ASSERT_TRUE(index.ok());
  Authenticator auth(**index);
  auto router = Router::create({});
  ASSERT_TRUE(router.ok());
  Dispatcher d(std::move(router).value(), auth);
  auto first = Server::create({}, d);
  ASSERT_TRUE(first.ok());
  ServerOptions same;
  same.port = (*first)->port();
  auto second = Server::create(same, d);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find(std::to_string(same.port)), std::string::npos);
}

}  // namespace
}  // namespace gw::http
