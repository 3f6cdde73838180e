#include "tls/context.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <stop_token>
#include <thread>
#include <vector>

#include "tls_test_pki.h"

namespace gw::tls::testing {
namespace {

using ::testing::HasSubstr;

class ContextTest : public TlsPkiTest {};

std::string error_of(const core::Result<std::shared_ptr<const TlsContext>>& r) {
  return r.ok() ? std::string("(built)") : r.error().message;
}

TEST_F(ContextTest, BuildsServerContextFromTheFiles) {
  auto ctx = make_server_context(server_config());
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  EXPECT_EQ((*ctx)->side(), Side::kServer);
  EXPECT_EQ((*ctx)->certificate_subject(), "CN=server");
  EXPECT_FALSE((*ctx)->certificate_serial().empty());
  EXPECT_TRUE((*ctx)->warnings().empty());
  EXPECT_EQ(SSL_CTX_get_verify_mode((*ctx)->native()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  EXPECT_EQ(SSL_CTX_get_security_level((*ctx)->native()), 2);
}

TEST_F(ContextTest, PeerPolicyChoosesTheVerifyMode) {
  auto t = server_config();
  t.peer_certificate = config::PeerCertificate::kOptional;
  auto optional = make_server_context(t);
  ASSERT_TRUE(optional.ok());
  EXPECT_EQ(SSL_CTX_get_verify_mode((*optional)->native()), SSL_VERIFY_PEER);
  t.peer_certificate = config::PeerCertificate::kNone;
  t.ca_file.clear();
  auto none = make_server_context(t);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(SSL_CTX_get_verify_mode((*none)->native()), SSL_VERIFY_NONE);
}

TEST_F(ContextTest, MismatchedKeyIsRefused) {
  auto t = server_config();
  t.key_file = key("client");
  auto ctx = make_server_context(t);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().code, core::ErrorCode::kConfig);
  EXPECT_THAT(error_of(ctx), HasSubstr("does not match the certificate in tls.cert_file"));
}

TEST_F(ContextTest, MissingFilesAreNamed) {
  auto t = server_config();
  t.cert_file = tmp_.path() / "nope.pem";
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("tls.cert_file: "));
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("no such file"));
  t = server_config();
  t.key_file = tmp_.path() / "nope.key";
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("tls.key_file: "));
  t = server_config();
  t.ca_file.clear();
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("tls.ca_file: required"));
  t = server_config();
  t.crl_file = tmp_.path() / "nope.crl";
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("tls.crl_file: "));
}

TEST_F(ContextTest, GarbageFilesAreRefused) {
  std::ofstream(tmp_.path() / "garbage.pem") << "not a certificate\n";
  auto t = server_config();
  t.ca_file = tmp_.path() / "garbage.pem";
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("no usable CA certificate"));
  t = server_config();
  t.cert_file = tmp_.path() / "garbage.pem";
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("tls.cert_file"));
}

TEST_F(ContextTest, WeakServerKeyIsRefused) {
  certs::TestCertificateOptions o;
  o.key.type = certs::KeySpec::Type::kRsa1024;
  o.key.allow_weak = true;
  o.sans = {"DNS:localhost"};
  issue_test("weak", o);
  auto t = server_config();
  t.cert_file = cert("weak");
  t.key_file = key("weak");
  EXPECT_THAT(error_of(make_server_context(t)), HasSubstr("key too small"));
}

TEST_F(ContextTest, CipherOverrideMustBeAead) {
  auto t = server_config();
  t.ciphers = "AES128-SHA";
  auto ctx = make_server_context(t);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().code, core::ErrorCode::kConfig);
  EXPECT_THAT(ctx.error().message, HasSubstr("tls.ciphers"));
}

TEST_F(ContextTest, NoVerifyAndExpiringCertificatesAreWarned) {
  auto t = server_config();
  t.no_verify = true;
  auto ctx = make_server_context(t);
  ASSERT_TRUE(ctx.ok());
  ASSERT_FALSE((*ctx)->warnings().empty());
  EXPECT_THAT((*ctx)->warnings()[0], HasSubstr("no_verify"));

  certs::TestCertificateOptions o;
  o.sans = {"DNS:localhost"};
  o.not_after = system_clock::now() + hours(24 * 3);
  issue_test("soon", o);
  t = server_config();
  t.cert_file = cert("soon");
  t.key_file = key("soon");
  auto soon = make_server_context(t);
  ASSERT_TRUE(soon.ok()) << soon.error().message;
  ASSERT_EQ((*soon)->warnings().size(), 1u);
  EXPECT_THAT((*soon)->warnings()[0], HasSubstr("expires in"));
}

TEST_F(ContextTest, ClientContextNeedsCaUnlessNoVerify) {
  auto o = client_options();
  o.ca.clear();
  auto r = make_client_context(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("--ca"));
  o.verify_peer = false;
  auto nv = make_client_context(o);
  ASSERT_TRUE(nv.ok()) << nv.error().message;
  EXPECT_TRUE((*nv)->no_verify());
  EXPECT_FALSE((*nv)->warnings().empty());
  o = client_options();
  o.key = key("server");
  EXPECT_THAT(error_of(make_client_context(o)), HasSubstr("does not match"));
}

TEST_F(ContextTest, HolderSwapsOnReloadAndKeepsTheOldOnFailure) {
  auto holder = TlsContextHolder::create(server_config());
  ASSERT_TRUE(holder.ok()) << holder.error().message;
  auto first = (*holder)->current();
  const std::string first_serial = first->certificate_serial();

  // A new certificate in the same files: reload picks it up.
  issue("server", certs::CertKind::kServer, {"DNS:localhost"});
  ASSERT_TRUE((*holder)->reload(server_config()).ok());
  auto second = (*holder)->current();
  EXPECT_NE(second->certificate_serial(), first_serial);
  EXPECT_EQ(first->certificate_serial(), first_serial);  // the old snapshot is untouched

  // A key that does not match: the reload fails and the second snapshot stays.
  auto bad = server_config();
  bad.key_file = key("client");
  auto st = (*holder)->reload(bad);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("does not match"));
  EXPECT_EQ((*holder)->current(), second);
}

TEST_F(ContextTest, HolderIsSafeUnderConcurrentReaders) {
  auto holder = TlsContextHolder::create(server_config());
  ASSERT_TRUE(holder.ok());
  std::atomic<int> reads{0};
  // The readers stop on their jthread's stop token: a failing ASSERT below returns early, and
  // the jthreads' destructors (request_stop + join) still end them.
  std::vector<std::jthread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&](const std::stop_token& stop) {
      while (!stop.stop_requested()) {
        auto c = (*holder)->current();
        if (c && !c->certificate_serial().empty()) ++reads;
      }
    });
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*holder)->reload(server_config()).ok());
  // The readers may not have run yet on a busy machine: give them a bounded while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (reads.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  readers.clear();
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace gw::tls::testing
