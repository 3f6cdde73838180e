// OpenPGP symmetric messages (pgcrypto's format): round trips, lengths, messages made by GnuPG,
// other framings (old headers, partial lengths), tampering, wrong key, what is refused.
// The interop with a real pgcrypto is tests/e2e/pgcrypto_interop_test.cpp.
#include "crypto/openpgp_sym.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <memory>

namespace gw::crypto {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr const char* kPass = "Tq0n6xVb1kq4S0m1+fH8yA0rDgq7m9bQ3wZpL2eN5sU=";

Bytes from_hex(std::string_view hex) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

/// A new-format header for a body of `length` octets (1, 2 or 5 length octets).
void put_header(Bytes& out, std::uint8_t tag, std::size_t length) {
  out.push_back(static_cast<std::uint8_t>(0xC0 | tag));
  if (length < 192) {
    out.push_back(static_cast<std::uint8_t>(length));
  } else if (length < 8384) {
    out.push_back(static_cast<std::uint8_t>(((length - 192) >> 8) + 192));
    out.push_back(static_cast<std::uint8_t>((length - 192) & 0xff));
  } else {
    out.push_back(0xff);
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<std::uint8_t>(length >> shift));
    }
  }
}

/// Where the body of the packet at `pos` starts and how long it is (no partial lengths).
std::pair<std::size_t, std::size_t> body_of(const Bytes& m, std::size_t pos) {
  const std::uint8_t l0 = m.at(pos + 1);
  if (l0 < 192) return {pos + 2, l0};
  if (l0 < 224) return {pos + 3, ((l0 - 192u) << 8) + m.at(pos + 2) + 192u};
  return {pos + 6, (std::size_t{m.at(pos + 2)} << 24) | (std::size_t{m.at(pos + 3)} << 16) |
                       (std::size_t{m.at(pos + 4)} << 8) | m.at(pos + 5)};
}

/// A message written apart from openpgp_sym.cpp (S2K salted SHA-256 with a zero salt, AES-256,
/// SEIPD), with the packets inside given as they are and the MDC as chosen, to make what
/// the writer never makes.
enum class Mdc { kRight, kWrong, kNone };
Bytes handmade(const Bytes& packets, Mdc mdc) {
  const std::array<std::uint8_t, 8> salt{};
  std::string s2k_input(salt.size(), '\0');  // salt ‖ passphrase
  s2k_input += kPass;
  std::array<std::uint8_t, 32> key{};
  unsigned int len = 0;
  EVP_Digest(s2k_input.data(), s2k_input.size(), key.data(), &len, EVP_sha256(), nullptr);
  Bytes inner(16, 0x5c);
  inner.push_back(0x5c);
  inner.push_back(0x5c);
  inner.insert(inner.end(), packets.begin(), packets.end());
  if (mdc != Mdc::kNone) {
    inner.push_back(0xD3);
    inner.push_back(0x14);
    std::array<std::uint8_t, 20> hash{};
    EVP_Digest(inner.data(), inner.size(), hash.data(), &len, EVP_sha1(), nullptr);
    if (mdc == Mdc::kWrong) hash[7] ^= 1;
    inner.insert(inner.end(), hash.begin(), hash.end());
  }
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  const std::array<std::uint8_t, 16> iv{};
  int n = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cfb128(), nullptr, key.data(), iv.data()), 1);
  EXPECT_EQ(
      EVP_EncryptUpdate(ctx.get(), inner.data(), &n, inner.data(), static_cast<int>(inner.size())),
      1);
  Bytes out = {0xC3, 12, 4, 9, 1, 8};
  out.insert(out.end(), salt.begin(), salt.end());
  put_header(out, 18, inner.size() + 1);
  out.push_back(1);
  out.insert(out.end(), inner.begin(), inner.end());
  return out;
}

Bytes literal(std::string_view text) {
  Bytes out;
  put_header(out, 11, text.size() + 6);
  out.insert(out.end(), {'u', 0, 0, 0, 0, 0});
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

TEST(OpenPgpSym, RoundTripsEveryLengthClass) {
  // 142/143: the SEIPD body is 191/192 octets; 185/186 the literal's; 8377/8378 the
  // literal's 8383/8384 (5-octet length from there).
  for (std::size_t n :
       {0u, 1u, 142u, 143u, 185u, 186u, 191u, 192u, 8377u, 8378u, 8383u, 8384u, 100000u}) {
    std::string text(n, 'a');
    for (std::size_t i = 0; i < n; ++i) text[i] = static_cast<char>('a' + i % 26);
    auto message = pgp_sym_encrypt(text, kPass);
    ASSERT_TRUE(message.ok()) << n;
    auto back = pgp_sym_decrypt(*message, kPass);
    ASSERT_TRUE(back.ok()) << n << ": " << back.error().message;
    EXPECT_EQ(*back, text) << n;
  }
}

TEST(OpenPgpSym, TheLayoutIsWhatPgcryptoExpects) {
  for (std::size_t n : {0u, 142u, 143u, 8377u, 8378u, 100000u}) {
    auto m = pgp_sym_encrypt(std::string(n, 'q'), kPass).value();
    // SKESK v4: AES-256, salted S2K with SHA-256, 8 salt octets, no encrypted session key.
    ASSERT_GE(m.size(), 16u);
    EXPECT_EQ(Bytes(m.begin(), m.begin() + 6), (Bytes{0xC3, 12, 4, 9, 1, 8}));
    // SEIPD v1 over 18 + (literal header + 6 + n) + 22 octets, the shortest length form.
    EXPECT_EQ(m[14], 0xD2);
    const std::size_t literal_length = n + 6;
    const std::size_t literal_header = literal_length < 192 ? 2 : literal_length < 8384 ? 3 : 6;
    const std::size_t seipd_length = 1 + 18 + literal_header + literal_length + 22;
    const auto [start, length] = body_of(m, 14);
    EXPECT_EQ(length, seipd_length) << n;
    EXPECT_EQ(start + length, m.size()) << n;
    EXPECT_EQ(start - 15, seipd_length < 192 ? 1u : seipd_length < 8384 ? 2u : 5u) << n;
    EXPECT_EQ(m[start], 1);
  }
}

TEST(OpenPgpSym, ReadsMessagesMadeByGnuPg) {
  const std::string pass = "interop-test-passphrase-0123456789abcdef";
  // gpg 2.2.40 -c --compress-algo none --force-mdc, with an old-format SKESK header:
  // --s2k-mode 3 --s2k-count 65536 --s2k-digest-algo SHA1 --cipher-algo AES (AES-128).
  const auto v1 = from_hex(
      "8c0d04070302b768c15ec9334aed60d24001eb31deb346838713a57b91679605d917177988c21d4847938ea6"
      "6b5b0c1e9c33a861a7f9f104191a0eeb48aad55d5fb12eacfd19a295888ca9eda92d7e47e4");
  EXPECT_EQ(pgp_sym_decrypt(v1, pass).value(), "Müller^Jürgen");
  // --s2k-mode 0 --s2k-digest-algo SHA256 --cipher-algo AES192.
  const auto v2 = from_hex(
      "8c0404080008d23901e5a027979b41ccb7ee68e732b4ad7d86bb020ec14850f00a42c4bbae7e5ace8ed39e8d"
      "513d92e59a7a37ae55def71435f79dda6eb384592d");
  EXPECT_EQ(pgp_sym_decrypt(v2, pass).value(), "DOE^JANE");
  auto wrong = pgp_sym_decrypt(v1, kPass);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, core::ErrorCode::kDataLoss);
  EXPECT_EQ(pgp_sym_decrypt(v2, kPass).error().code, core::ErrorCode::kDataLoss);

  // --compress-algo zip: refused, not returned compressed.
  const auto v3 = from_hex(
      "8c0c04090108f8ae72c052699310d23d0132748a4ff6665eb42f9bdc995cff140a66244c2adad35aa348aaa9"
      "5ccbfb63e71c2167b636bf927b77b62e35e6a52fb3b2bd347394ac6c570228e4f7");
  auto compressed = pgp_sym_decrypt(v3, pass);
  ASSERT_FALSE(compressed.ok());
  EXPECT_EQ(compressed.error().code, core::ErrorCode::kUnsupported);
  EXPECT_NE(compressed.error().message.find("compressed"), std::string::npos);
  // --rfc2440: a symmetrically encrypted packet without integrity protection (tag 9).
  const auto v4 = from_hex(
      "8c0d0407030225e3ed5e187979ff60c9223b321b9ce6d42050bdba5365a9b77aa648fed690f935be98f76f"
      "7fc2cc7917fb22bd");
  auto unprotected = pgp_sym_decrypt(v4, pass);
  ASSERT_FALSE(unprotected.ok());
  EXPECT_EQ(unprotected.error().code, core::ErrorCode::kUnsupported);
}

TEST(OpenPgpSym, ReadsAMessageMadeByPgcryptoWithItsDefaults) {
  // PostgreSQL 15: SELECT pgp_sym_encrypt('Müller^Jürgen', '<pass>'): iterated+salted SHA-1
  // S2K (count 253952), AES-128, SEIPD with MDC (tests/e2e/pgcrypto_interop_test.cpp does
  // this live, long values with partial lengths too).
  const auto m = from_hex(
      "c30d0407030265680a94ef5206d17fd24001e9f3bcf3dc5aa91c66f6ca9ef516cc0db34229a8b942338e1cc4"
      "1848d71908108d0df98d93fd543907cef481ff8ffb74a5591adbdcdbbfa16eb3d266ba2f6d");
  EXPECT_EQ(pgp_sym_decrypt(m, "interop-test-passphrase-0123456789abcdef").value(),
            "Müller^Jürgen");
  EXPECT_EQ(pgp_sym_decrypt(m, kPass).error().code, core::ErrorCode::kDataLoss);
}

TEST(OpenPgpSym, ReadsOldHeadersPartialLengthsAndMarkers) {
  const std::string text(5000, 'p');
  const auto m = pgp_sym_encrypt(text, kPass).value();
  const auto [start, length] = body_of(m, 14);
  ASSERT_EQ(start + length, m.size());
  // The SKESK with an old-format header (tag 3, one length octet), a marker packet ("PGP"),
  // then the SEIPD body in partial lengths 2048, 1024, 512, 1, 1 and a normal last length.
  Bytes framed = {0x8C, 12};
  framed.insert(framed.end(), m.begin() + 2, m.begin() + 14);
  framed.insert(framed.end(), {0xCA, 3, 'P', 'G', 'P'});
  framed.push_back(0xD2);
  std::size_t at = start;
  for (std::uint8_t exponent : {11, 10, 9, 0, 0}) {
    framed.push_back(static_cast<std::uint8_t>(0xE0 | exponent));
    const std::size_t chunk = std::size_t{1} << exponent;
    framed.insert(framed.end(), m.begin() + static_cast<std::ptrdiff_t>(at),
                  m.begin() + static_cast<std::ptrdiff_t>(at + chunk));
    at += chunk;
  }
  const std::size_t rest = m.size() - at;
  ASSERT_LT(rest, 8384u);
  framed.push_back(static_cast<std::uint8_t>(((rest - 192) >> 8) + 192));
  framed.push_back(static_cast<std::uint8_t>((rest - 192) & 0xff));
  framed.insert(framed.end(), m.begin() + static_cast<std::ptrdiff_t>(at), m.end());
  auto back = pgp_sym_decrypt(framed, kPass);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, text);

  // A partial length with nothing after it, and a chain cut short: refused.
  Bytes cut(framed.begin(), framed.begin() + 14 + 5 + 1 + 1 + 2048 + 1 + 100);
  EXPECT_FALSE(pgp_sym_decrypt(cut, kPass).ok());
  Bytes dangling(framed.begin(), framed.begin() + 14 + 5 + 1 + 1 + 2048);
  EXPECT_FALSE(pgp_sym_decrypt(dangling, kPass).ok());
}

TEST(OpenPgpSym, AHandmadeMessageIsReadOnlyWithARightMdc) {
  auto good = pgp_sym_decrypt(handmade(literal("DOE^JANE"), Mdc::kRight), kPass);
  ASSERT_TRUE(good.ok()) << good.error().message;  // the test's own writer is right
  EXPECT_EQ(*good, "DOE^JANE");

  auto wrong_mdc = pgp_sym_decrypt(handmade(literal("DOE^JANE"), Mdc::kWrong), kPass);
  ASSERT_FALSE(wrong_mdc.ok());
  EXPECT_EQ(wrong_mdc.error().code, core::ErrorCode::kDataLoss);
  EXPECT_NE(wrong_mdc.error().message.find("wrong key or corrupted value"), std::string::npos);
  EXPECT_FALSE(pgp_sym_decrypt(handmade(literal("DOE^JANE"), Mdc::kNone), kPass).ok());

  // A compressed data packet (tag 8, ZIP) under a right MDC: refused as unsupported.
  const Bytes compressed = {0xC8, 5, 1, 0x73, 0x71, 0x75, 0x00};
  auto refused = pgp_sym_decrypt(handmade(compressed, Mdc::kRight), kPass);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kUnsupported);

  // Two literal packets, or one followed by junk, or none: not a value.
  Bytes two = literal("A");
  const auto second = literal("B");
  two.insert(two.end(), second.begin(), second.end());
  EXPECT_FALSE(pgp_sym_decrypt(handmade(two, Mdc::kRight), kPass).ok());
  EXPECT_FALSE(pgp_sym_decrypt(handmade({}, Mdc::kRight), kPass).ok());
  Bytes truncated_literal = {0xCB, 20, 'u', 0};
  EXPECT_FALSE(pgp_sym_decrypt(handmade(truncated_literal, Mdc::kRight), kPass).ok());
  // A file name longer than the packet.
  EXPECT_FALSE(pgp_sym_decrypt(handmade({0xCB, 3, 'u', 200, 'x'}, Mdc::kRight), kPass).ok());
}

TEST(OpenPgpSym, NothingMayFollowTheMessage) {
  auto m = pgp_sym_encrypt("DOE^JANE", kPass).value();
  m.push_back(0);
  EXPECT_FALSE(pgp_sym_decrypt(m, kPass).ok());
}

TEST(OpenPgpSym, Utf8TextAndNoPlaintextInTheMessage) {
  const std::string text = "Müller^Jürgen";
  auto message = pgp_sym_encrypt(text, kPass);
  ASSERT_TRUE(message.ok());
  const std::string raw(message->begin(), message->end());
  EXPECT_EQ(raw.find("ller^J"), std::string::npos);
  EXPECT_EQ(raw.find(kPass), std::string::npos);
  EXPECT_EQ(*pgp_sym_decrypt(*message, kPass), text);
  EXPECT_NE(*pgp_sym_encrypt(text, kPass), *message);  // fresh salt and prefix
}

TEST(OpenPgpSym, AWrongKeyAndEveryChangedByteAreRefused) {
  for (std::string_view text : {"", "DOE^JANE", "Müller^Jürgen"}) {
    auto message = pgp_sym_encrypt(text, kPass);
    ASSERT_TRUE(message.ok());
    auto wrong = pgp_sym_decrypt(*message, "another key that is long enough 12345");
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, core::ErrorCode::kDataLoss);
    EXPECT_EQ(wrong.error().message, "openpgp: wrong key or corrupted value");
    for (std::size_t i = 0; i < message->size(); ++i) {
      for (std::uint8_t flip : {0x01, 0x40, 0xff}) {
        auto changed = *message;
        changed[i] ^= flip;
        EXPECT_FALSE(pgp_sym_decrypt(changed, kPass).ok()) << "byte " << i;
      }
    }
    for (std::size_t n = 0; n < message->size(); ++n) {
      EXPECT_FALSE(pgp_sym_decrypt(std::span(message->data(), n), kPass).ok()) << "length " << n;
    }
  }
}

TEST(OpenPgpSym, GarbageNeverCrashes) {
  std::vector<std::uint8_t> junk(300);
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<std::uint8_t>(i * 37 + 11);
  EXPECT_FALSE(pgp_sym_decrypt(junk, kPass).ok());
  junk[0] = 0xC3;  // a SKESK header with nonsense after it
  EXPECT_FALSE(pgp_sym_decrypt(junk, kPass).ok());
  EXPECT_FALSE(pgp_sym_decrypt({}, kPass).ok());
}

}  // namespace
}  // namespace gw::crypto
