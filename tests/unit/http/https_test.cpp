// HTTPS: the listener serves its certificate with the project's TLS profile, adds HSTS, and a
// reloaded certificate serves the next handshake without a restart (the old one stays when
// the new files are bad).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "http/server.h"
#include "index/index.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace gw::http {
namespace {

struct TlsAnswer {
  std::string serial;  ///< of the server certificate, upper-case hex
  std::string version;
  std::string response;
};

/// One HTTPS request (no certificate verification: the test checks which one is served).
TlsAnswer https_get(std::uint16_t port, int max_version = 0) {
  TlsAnswer out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (max_version != 0) {
    SSL_CTX_set_min_proto_version(ctx, max_version);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL* ssl = nullptr;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      out.version = SSL_get_version(ssl);
      if (X509* cert = SSL_get1_peer_certificate(ssl)) {
        BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
        char* hex = BN_bn2hex(bn);
        out.serial = hex;
        OPENSSL_free(hex);
        BN_free(bn);
        X509_free(cert);
      }
      const std::string request = "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, request.data(), static_cast<int>(request.size()));
      char buf[4096];
      for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) out.response.append(buf, n);
    }
    SSL_free(ssl);
  }
  ::close(fd);
  SSL_CTX_free(ctx);
  return out;
}

std::string strip_leading_zeros(std::string hex) {
  while (hex.size() > 1 && hex[0] == '0') hex.erase(0, 1);
  return hex;
}

TEST(Https, ServesTheCertificateAddsHstsAndReloadsWithoutRestart) {
  test::TempDir dir("gw-https");
  test::TestPki pki(dir.path() / "pki");
  const auto first = pki.issue("first", certs::CertKind::kServer, {"IP:127.0.0.1"});
  const auto second = pki.issue("second", certs::CertKind::kServer, {"IP:127.0.0.1"});

  auto index = index::open_index(":memory:", {});
  ASSERT_TRUE(index.ok());
  Authenticator auth(**index);
  auto router = Router::create({{"GET", "/health", std::nullopt,
                                 [](const Request&) {
                                   return json_response(200, {{"status", "ok"}});
                                 },
                                 ""}});
  ASSERT_TRUE(router.ok());
  Dispatcher dispatcher(std::move(router).value(), auth);
  ServerOptions options;
  options.tls = {true, pki.cert("first"), pki.key("first")};
  auto server = Server::create(options, dispatcher);
  ASSERT_TRUE(server.ok()) << server.error().message;
  (*server)->start();
  const auto port = (*server)->port();
  ASSERT_TRUE((*server)->https());

  auto a = https_get(port);
  EXPECT_EQ(strip_leading_zeros(a.serial), strip_leading_zeros(first));
  EXPECT_NE(a.response.find("HTTP/1.1 200"), std::string::npos) << a.response;
  EXPECT_NE(a.response.find("Strict-Transport-Security: max-age=31536000"), std::string::npos);
  EXPECT_EQ(a.version, "TLSv1.3");
  EXPECT_TRUE(https_get(port, TLS1_1_VERSION).version.empty()) << "TLS 1.1 must be refused";

  ASSERT_TRUE((*server)->reload_tls({true, pki.cert("second"), pki.key("second")}).ok());
  EXPECT_EQ(strip_leading_zeros(https_get(port).serial), strip_leading_zeros(second));

  // A key that does not match: refused, the current certificate stays.
  auto bad = (*server)->reload_tls({true, pki.cert("first"), pki.key("second")});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(strip_leading_zeros(https_get(port).serial), strip_leading_zeros(second));
  (*server)->stop();
}

TEST(Https, MissingFilesFailAtCreate) {
  auto index = index::open_index(":memory:", {});
  ASSERT_TRUE(index.ok());
  Authenticator auth(**index);
  auto router = Router::create({});
  ASSERT_TRUE(router.ok());
  Dispatcher dispatcher(std::move(router).value(), auth);
  ServerOptions options;
  options.tls = {true, "/nonexistent/cert.pem", "/nonexistent/key.pem"};
  auto server = Server::create(options, dispatcher);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("http.tls"), std::string::npos) << server.error().message;
}

}  // namespace
}  // namespace gw::http
