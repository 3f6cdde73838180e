// In-memory handshakes (BIO pair) between a server context and a client context: what each
// profile negotiates, which certificates are refused, and what diagnose() says about it.

#include <gtest/gtest.h>

#include "tls_test_pki.h"

namespace gw::tls::testing {
namespace {

using ::testing::HasSubstr;

class HandshakeTest : public TlsPkiTest {
 protected:
  std::shared_ptr<const TlsContext> server(config::Tls t) {
    auto ctx = make_server_context(t);
    EXPECT_TRUE(ctx.ok()) << ctx.error().message;
    return ctx.ok() ? *ctx : nullptr;
  }
  std::shared_ptr<const TlsContext> client(const ClientTlsOptions& o) {
    auto ctx = make_client_context(o);
    EXPECT_TRUE(ctx.ok()) << ctx.error().message;
    return ctx.ok() ? *ctx : nullptr;
  }
};

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

/// A permissive client (security level 0) limited to `version` and `ciphers`: the probes that
/// must fail because of the server, not because of the client.
std::unique_ptr<SSL_CTX, CtxDeleter> old_client(int version, const char* ciphers,
                                                const std::filesystem::path& ca) {
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_security_level(ctx.get(), 0);
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  SSL_CTX_set_cipher_list(ctx.get(), ciphers);
  SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr);
  return ctx;
}

TEST_F(HandshakeTest, MutualTlsNegotiatesTls13) {
  auto r = handshake(*server(server_config()), *client(client_options()), "localhost");
  EXPECT_TRUE(r.server.ok) << r.server.diagnosis;
  EXPECT_TRUE(r.client.ok) << r.client.diagnosis;
  EXPECT_EQ(r.server.protocol, "TLSv1.3");
  EXPECT_EQ(r.server.cipher, "TLS_AES_256_GCM_SHA384");
}

TEST_F(HandshakeTest, Tls12UsesAnAeadSuite) {
  auto o = client_options();
  auto c = client(o);
  SSL_CTX_set_max_proto_version(c->native(), TLS1_2_VERSION);  // test-only: a TLS 1.2 peer
  auto r = handshake(*server(server_config()), *c, "127.0.0.1");
  ASSERT_TRUE(r.server.ok) << r.server.diagnosis;
  EXPECT_EQ(r.server.protocol, "TLSv1.2");
  EXPECT_EQ(r.server.cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");
}

TEST_F(HandshakeTest, ModernRefusesTls12) {
  auto t = server_config();
  t.profile = config::TlsProfile::kModern;
  auto c = client(client_options());
  SSL_CTX_set_max_proto_version(c->native(), TLS1_2_VERSION);
  auto r = handshake(*server(t), *c);
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("protocol too old"));
}

TEST_F(HandshakeTest, Tls11IsProtocolTooOld) {
  auto c = old_client(TLS1_1_VERSION, "ALL:@SECLEVEL=0", chain_);
  auto r = handshake(*server(server_config()), c.get());
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("protocol too old"));
}

TEST_F(HandshakeTest, CbcOnlyClientHasNoSharedCipher) {
  // The server certificate is ECDSA, so offer the ECDSA CBC suite too.
  auto c = old_client(TLS1_2_VERSION, "AES128-SHA:ECDHE-ECDSA-AES128-SHA", chain_);
  auto r = handshake(*server(server_config()), c.get());
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("no shared cipher"));
}

TEST_F(HandshakeTest, ExpiredClientCertificate) {
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.not_before = system_clock::now() - hours(24 * 30);
  o.not_after = system_clock::now() - hours(24);
  issue_test("expired", o);
  auto r = handshake(*server(server_config()), *client(client_options("expired")));
  EXPECT_FALSE(r.server.ok);
  EXPECT_EQ(r.server.verify.error, X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("client certificate expired"));
  EXPECT_THAT(r.server.diagnosis, HasSubstr("CN=expired"));
  EXPECT_FALSE(r.client.ok);  // TLS 1.3: learnt on the first read
  EXPECT_THAT(r.client.diagnosis, HasSubstr("the peer refused our certificate"));
}

TEST_F(HandshakeTest, NotYetValidClientCertificate) {
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.not_before = system_clock::now() + hours(24);
  o.not_after = system_clock::now() + hours(48);
  issue_test("future", o);
  auto r = handshake(*server(server_config()), *client(client_options("future")));
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("not yet valid"));
}

TEST_F(HandshakeTest, UntrustedAndSelfSignedClientCertificates) {
  // Another CA's client certificate.
  auto other = tmp_.path() / "other-ca";
  ASSERT_TRUE(certs::init_ca(other, certs::CaOptions{}).ok());
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.common_name = "stranger";
  o.ca_dir = other;
  o.out_cert = cert("stranger");
  o.out_key = key("stranger");
  ASSERT_TRUE(certs::make_test_certificate(o).ok());
  auto r = handshake(*server(server_config()), *client(client_options("stranger")));
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("unknown CA"));

  certs::TestCertificateOptions s;
  s.kind = certs::CertKind::kClient;
  s.self_signed = true;
  issue_test("selfie", s);
  r = handshake(*server(server_config()), *client(client_options("selfie")));
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("self-signed"));
}

TEST_F(HandshakeTest, WeakClientKeyIsRefused) {
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.key.type = certs::KeySpec::Type::kRsa1024;
  o.key.allow_weak = true;
  issue_test("weak", o);
  // The client's own context refuses to load a 1024-bit key at level 2: build it by hand.
  auto c = old_client(TLS1_3_VERSION, "ALL", chain_);
  ASSERT_EQ(SSL_CTX_use_certificate_file(c.get(), cert("weak").c_str(), SSL_FILETYPE_PEM), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(c.get(), key("weak").c_str(), SSL_FILETYPE_PEM), 1);
  auto r = handshake(*server(server_config()), c.get());
  EXPECT_FALSE(r.server.ok);
  EXPECT_EQ(r.server.verify.error, X509_V_ERR_EE_KEY_TOO_SMALL);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("key too small"));
}

TEST_F(HandshakeTest, ServerOnlyCertificateIsNotAClientCertificate) {
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kServer;  // serverAuth EKU only
  issue_test("serveronly", o);
  auto r = handshake(*server(server_config()), *client(client_options("serveronly")));
  EXPECT_FALSE(r.server.ok);
  EXPECT_EQ(r.server.verify.error, X509_V_ERR_INVALID_PURPOSE);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("unsupported certificate purpose"));
  EXPECT_THAT(r.server.diagnosis, HasSubstr("clientAuth"));
}

TEST_F(HandshakeTest, ClientOnlyCertificateIsNotAServerCertificate) {
  auto t = server_config();
  t.cert_file = cert("client");
  t.key_file = key("client");
  auto r = handshake(*server(t), *client(client_options()));
  EXPECT_FALSE(r.client.ok);
  EXPECT_THAT(r.client.diagnosis, HasSubstr("serverAuth"));
}

TEST_F(HandshakeTest, NoClientCertificateUnderRequiredAndOptional) {
  auto r = handshake(*server(server_config()), *client(client_options("")));
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("peer sent no certificate"));
  EXPECT_FALSE(r.client.ok);
  EXPECT_THAT(r.client.diagnosis, HasSubstr("requires a certificate"));

  auto t = server_config();
  t.peer_certificate = config::PeerCertificate::kOptional;
  r = handshake(*server(t), *client(client_options("")));
  EXPECT_TRUE(r.server.ok) << r.server.diagnosis;
  EXPECT_TRUE(r.client.ok) << r.client.diagnosis;

  // optional still refuses a bad certificate.
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.self_signed = true;
  issue_test("selfie", o);
  r = handshake(*server(t), *client(client_options("selfie")));
  EXPECT_FALSE(r.server.ok);
}

TEST_F(HandshakeTest, NoVerifyAcceptsAnythingButRecordsWhy) {
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  o.self_signed = true;
  issue_test("selfie", o);
  auto t = server_config();
  t.no_verify = true;
  auto r = handshake(*server(t), *client(client_options("selfie")));
  EXPECT_TRUE(r.server.ok) << r.server.diagnosis;
  EXPECT_EQ(r.server.verify.error, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST_F(HandshakeTest, IntermediateIssuedClientNeedsTheChainInTheBundle) {
  // The client sends only its leaf (it trusts the root alone, so OpenSSL cannot complete
  // the chain from its own store); the server's bundle holds intermediate + root.
  certs::TestCertificateOptions o;
  o.kind = certs::CertKind::kClient;
  issue_test("leafonly", o);
  auto co = client_options("leafonly");
  co.ca = root_;
  auto r = handshake(*server(server_config()), *client(co));
  EXPECT_TRUE(r.server.ok) << r.server.diagnosis;
  // With the root alone in the server's bundle, the intermediate is missing.
  auto t = server_config();
  t.ca_file = root_;
  r = handshake(*server(t), *client(co));
  EXPECT_FALSE(r.server.ok);
  EXPECT_THAT(r.server.diagnosis, HasSubstr("unknown CA"));
}

TEST_F(HandshakeTest, HostNameMismatchIsRefusedByTheClient) {
  auto r = handshake(*server(server_config()), *client(client_options()), "pacs.example.org");
  EXPECT_FALSE(r.client.ok);
  EXPECT_EQ(r.client.verify.error, X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_THAT(r.client.diagnosis, HasSubstr("host name mismatch"));
  EXPECT_THAT(r.client.diagnosis, HasSubstr("pacs.example.org"));
}

TEST_F(HandshakeTest, ClientRefusesUntrustedServer) {
  auto o = client_options();
  auto other = tmp_.path() / "other-ca";
  ASSERT_TRUE(certs::init_ca(other, certs::CaOptions{}).ok());
  o.ca = other / "ca.pem";
  auto r = handshake(*server(server_config()), *client(o), "localhost");
  EXPECT_FALSE(r.client.ok);
  EXPECT_THAT(r.client.diagnosis, HasSubstr("server certificate: unknown CA"));
}

}  // namespace
}  // namespace gw::tls::testing
