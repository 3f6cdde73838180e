#pragma once
/// A throw-away PKI for the TLS unit tests (gw::certs): a root CA with an intermediate, a
/// server certificate for localhost/127.0.0.1, a client certificate, and helpers for the
/// broken certificates the checks must refuse. Plus an in-memory handshake between two
/// contexts (BIO pair), so verification and diagnosis are tested without sockets.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "certs/pki.h"
#include "config/config.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"
#include "tls/context.h"
#include "tls/diagnose.h"

namespace gw::tls::testing {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::system_clock;

class TlsPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<gw::test::TestPki>(tmp_.path());
    chain_ = pki_->chain();
    root_ = pki_->root();
    issue("server", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    issue("client", certs::CertKind::kClient, {});
  }

  fs::path ca_dir() const { return pki_->ca_dir(); }
  fs::path cert(const std::string& name) const { return pki_->cert(name); }
  fs::path key(const std::string& name) const { return pki_->key(name); }

  /// A normal certificate from the intermediate (leaf + intermediate in the cert file).
  void issue(const std::string& name, certs::CertKind kind, std::vector<std::string> sans) {
    pki_->issue(name, kind, std::move(sans));
  }

  /// A certificate the checks must refuse (expired, weak key, wrong EKU, self-signed...).
  void issue_test(const std::string& name, certs::TestCertificateOptions o) {
    pki_->issue_test(name, std::move(o));
  }

  config::Tls server_config() const {
    config::Tls t;
    t.enabled = true;
    t.cert_file = cert("server");
    t.key_file = key("server");
    t.ca_file = chain_;
    return t;
  }

  ClientTlsOptions client_options(const std::string& name = "client") const {
    ClientTlsOptions o;
    if (!name.empty()) {
      o.cert = cert(name);
      o.key = key(name);
    }
    o.ca = chain_;
    return o;
  }

  gw::test::TempDir tmp_{"gw-tls-test"};
  std::unique_ptr<gw::test::TestPki> pki_;
  fs::path chain_;
  fs::path root_;
};

/// The outcome of one side of an in-memory handshake.
struct SideResult {
  bool ok = false;
  std::error_code error;  ///< Asio ssl category, like the channel sees it
  VerifyFailure verify;
  std::string protocol;
  std::string cipher;
  std::string diagnosis;
};

struct HandshakeResult {
  SideResult server;
  SideResult client;
};

struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

/// Runs a handshake between two contexts over a BIO pair. `host`: the client checks the
/// server's name (SSL_set1_host) when non-empty. Both sides then exchange one byte, so a
/// TLS 1.3 server's refusal of the client certificate reaches the client too.
inline HandshakeResult handshake(const TlsContext& server_ctx, SSL_CTX* client_ctx,
                                 const std::string& host = "") {
  HandshakeResult r;
  std::unique_ptr<SSL, SslDeleter> s(SSL_new(server_ctx.native()));
  std::unique_ptr<SSL, SslDeleter> c(SSL_new(client_ctx));
  BIO* sb = nullptr;
  BIO* cb = nullptr;
  BIO_new_bio_pair(&sb, 0, &cb, 0);
  SSL_set_bio(s.get(), sb, sb);
  SSL_set_bio(c.get(), cb, cb);
  SSL_set_accept_state(s.get());
  SSL_set_connect_state(c.get());
  attach_verify_record(s.get(), &r.server.verify);
  attach_verify_record(c.get(), &r.client.verify);
  if (!host.empty()) SSL_set1_host(c.get(), host.c_str());

  bool s_done = false, c_done = false, s_failed = false, c_failed = false;
  auto step = [](SSL* ssl, bool& done, bool& failed, SideResult& out) {
    if (done || failed) return;
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
      done = true;
      return;
    }
    const int err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    failed = true;
    out.error = std::error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    ERR_clear_error();
  };
  for (int i = 0; i < 50 && !((s_done || s_failed) && (c_done || c_failed)); ++i) {
    step(c.get(), c_done, c_failed, r.client);
    step(s.get(), s_done, s_failed, r.server);
  }
  // One byte each way: a TLS 1.3 client learns about a refused certificate only now.
  auto exchange = [](SSL* ssl, bool& failed, SideResult& out) {
    if (failed) return;
    char b = 'x';
    ERR_clear_error();
    const int rc = SSL_write(ssl, &b, 1);
    if (rc <= 0 && SSL_get_error(ssl, rc) == SSL_ERROR_SSL) {
      failed = true;
      out.error =
          std::error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    }
  };
  auto drain = [](SSL* ssl, bool& failed, SideResult& out) {
    if (failed) return;
    char b = 0;
    ERR_clear_error();
    const int rc = SSL_read(ssl, &b, 1);
    if (rc <= 0 && SSL_get_error(ssl, rc) == SSL_ERROR_SSL) {
      failed = true;
      out.error =
          std::error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    }
  };
  if (s_done && c_done) {
    exchange(s.get(), s_failed, r.server);
    exchange(c.get(), c_failed, r.client);
    drain(c.get(), c_failed, r.client);
    drain(s.get(), s_failed, r.server);
  } else if (c_done && s_failed) {
    drain(c.get(), c_failed, r.client);
  }
  r.server.ok = s_done && !s_failed;
  r.client.ok = c_done && !c_failed;
  auto fill = [&](SSL* ssl, SideResult& out, Side side) {
    out.protocol = SSL_get_version(ssl);
    if (const SSL_CIPHER* ci = SSL_get_current_cipher(ssl)) out.cipher = SSL_CIPHER_get_name(ci);
    if (!out.ok) {
      HandshakeFailure f;
      f.side = side;
      f.error = out.error;
      f.verify = out.verify;
      f.host = side == Side::kClient ? host : "";
      out.diagnosis = diagnose(f);
    }
  };
  fill(s.get(), r.server, Side::kServer);
  fill(c.get(), r.client, Side::kClient);
  return r;
}

inline HandshakeResult handshake(const TlsContext& server_ctx, const TlsContext& client_ctx,
                                 const std::string& host = "") {
  return handshake(server_ctx, client_ctx.native(), host);
}

}  // namespace gw::tls::testing
