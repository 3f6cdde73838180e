#include "tls/profile.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace gw::tls {
namespace {

using config::TlsProfile;

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

/// The TLS 1.2 suites (not the TLS 1.3 ones) a context would offer.
std::vector<const SSL_CIPHER*> tls12_suites(SSL_CTX* ctx) {
  std::vector<const SSL_CIPHER*> out;
  STACK_OF(SSL_CIPHER)* all = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(all); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(all, i);
    if (SSL_CIPHER_get_kx_nid(c) != NID_kx_any) out.push_back(c);
  }
  return out;
}

CtxPtr applied(TlsProfile id, std::string_view min_version = "", std::string_view ciphers = "") {
  auto p = resolve_profile(id, min_version, ciphers);
  EXPECT_TRUE(p.ok()) << p.error().message;
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  auto st = apply_profile(ctx.get(), *p);
  EXPECT_TRUE(st.ok()) << st.error().message;
  return ctx;
}

TEST(ProfileTest, ParsesTheYamlNames) {
  EXPECT_EQ(parse_profile("bcp195-rfc8996"), TlsProfile::kBcp195Rfc8996);
  EXPECT_EQ(parse_profile("bcp195-nd"), TlsProfile::kBcp195Nd);
  EXPECT_EQ(parse_profile("bcp195-extended"), TlsProfile::kBcp195Extended);
  EXPECT_EQ(parse_profile("modern"), TlsProfile::kModern);
  EXPECT_FALSE(parse_profile("bcp195").has_value());  // the retired profile allowed TLS 1.0
  EXPECT_FALSE(parse_profile("").has_value());
}

TEST(ProfileTest, EveryProfileRefusesOldProtocolsAndCbc) {
  for (auto id : {TlsProfile::kBcp195Rfc8996, TlsProfile::kBcp195Nd, TlsProfile::kBcp195Extended,
                  TlsProfile::kModern}) {
    auto ctx = applied(id);
    SCOPED_TRACE(std::string(config::to_string(id)));
    EXPECT_GE(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx.get()), TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_get_security_level(ctx.get()), 2);
    const auto opts = SSL_CTX_get_options(ctx.get());
    EXPECT_NE(opts & SSL_OP_NO_RENEGOTIATION, 0u);
    EXPECT_NE(opts & SSL_OP_NO_COMPRESSION, 0u);
    EXPECT_NE(opts & SSL_OP_CIPHER_SERVER_PREFERENCE, 0u);
    if (id == TlsProfile::kModern) continue;  // no TLS 1.2 list is applied
    const auto suites = tls12_suites(ctx.get());
    EXPECT_FALSE(suites.empty());
    for (const SSL_CIPHER* c : suites) {
      EXPECT_EQ(SSL_CIPHER_is_aead(c), 1) << SSL_CIPHER_get_name(c);
      const int kx = SSL_CIPHER_get_kx_nid(c);
      EXPECT_TRUE(kx == NID_kx_ecdhe || kx == NID_kx_dhe) << SSL_CIPHER_get_name(c);
    }
  }
}

TEST(ProfileTest, VersionsPerProfile) {
  EXPECT_EQ(resolve_profile(TlsProfile::kBcp195Rfc8996)->min_version, TLS1_2_VERSION);
  EXPECT_EQ(resolve_profile(TlsProfile::kBcp195Nd)->min_version, TLS1_2_VERSION);
  EXPECT_EQ(resolve_profile(TlsProfile::kBcp195Extended)->min_version, TLS1_2_VERSION);
  EXPECT_EQ(resolve_profile(TlsProfile::kModern)->min_version, TLS1_3_VERSION);
  EXPECT_TRUE(resolve_profile(TlsProfile::kModern)->tls12_ciphers.empty());
  // min_version 1.3 raises the floor of any profile.
  auto raised = resolve_profile(TlsProfile::kBcp195Nd, "1.3");
  ASSERT_TRUE(raised.ok());
  EXPECT_EQ(raised->min_version, TLS1_3_VERSION);
  EXPECT_FALSE(resolve_profile(TlsProfile::kBcp195Nd, "1.1").ok());
}

TEST(ProfileTest, SuitesPerProfile) {
  const auto rfc = resolve_profile(TlsProfile::kBcp195Rfc8996)->tls12_ciphers;
  const auto nd = resolve_profile(TlsProfile::kBcp195Nd)->tls12_ciphers;
  const auto ext = resolve_profile(TlsProfile::kBcp195Extended)->tls12_ciphers;
  EXPECT_NE(rfc.find("ECDHE-RSA-AES128-GCM-SHA256"), std::string::npos);
  EXPECT_NE(rfc.find("ECDHE-ECDSA-CHACHA20-POLY1305"), std::string::npos);
  EXPECT_EQ((":" + rfc).find(":DHE-"), std::string::npos);  // ECDHE only
  EXPECT_NE(nd.find("ECDHE-ECDSA-AES256-GCM-SHA384"), std::string::npos);
  EXPECT_NE(ext.find("DHE-RSA-AES128-GCM-SHA256"), std::string::npos);
  EXPECT_EQ(resolve_profile(TlsProfile::kBcp195Rfc8996)->tls13_suites,
            "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
}

TEST(ProfileTest, CipherOverrideMustBeAead) {
  EXPECT_TRUE(
      check_tls12_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384").ok());
  auto cbc = check_tls12_ciphers("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA");
  ASSERT_FALSE(cbc.ok());
  EXPECT_EQ(cbc.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(cbc.error().message.find("AES128-SHA"), std::string::npos) << cbc.error().message;
  EXPECT_NE(cbc.error().message.find("tls.ciphers"), std::string::npos);
  EXPECT_FALSE(check_tls12_ciphers("ALL").ok());
  EXPECT_FALSE(check_tls12_ciphers("ECDHE-RSA-AES128-SHA256").ok());  // CBC with ECDHE
  EXPECT_FALSE(check_tls12_ciphers("AES256-GCM-SHA384").ok());        // AEAD, static RSA kx
  auto unknown = check_tls12_ciphers("ECDHE-RSA-AES128-GCM-SHA256:NOT-A-CIPHER");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("NOT-A-CIPHER"), std::string::npos);
  EXPECT_FALSE(check_tls12_ciphers("").ok());
  // resolve_profile applies the same check.
  EXPECT_FALSE(resolve_profile(TlsProfile::kBcp195Rfc8996, "", "AES128-SHA").ok());
  auto ok = resolve_profile(TlsProfile::kBcp195Rfc8996, "", "ECDHE-RSA-AES256-GCM-SHA384");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->tls12_ciphers, "ECDHE-RSA-AES256-GCM-SHA384");
}

TEST(ProfileTest, CipherOverrideCannotLowerTheSecurityLevel) {
  // OpenSSL applies "@SECLEVEL=n" from a cipher list to the whole context.
  auto lowered = check_tls12_ciphers("ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0");
  ASSERT_FALSE(lowered.ok());
  EXPECT_NE(lowered.error().message.find("@SECLEVEL=0"), std::string::npos)
      << lowered.error().message;
  EXPECT_FALSE(
      resolve_profile(TlsProfile::kBcp195Nd, "", "@SECLEVEL=1:ECDHE-RSA-AES128-GCM-SHA256").ok());
  // Even a profile built by hand with one stays at level 2: the level is set after the lists.
  Profile p = *resolve_profile(TlsProfile::kBcp195Rfc8996);
  p.tls12_ciphers = "ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0";
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_TRUE(apply_profile(ctx.get(), p).ok());
  EXPECT_EQ(SSL_CTX_get_security_level(ctx.get()), 2);
}

}  // namespace
}  // namespace gw::tls
