// AES-256-GCM and HMAC-SHA256 helpers (ADR 010).
#include "crypto/aead.h"

#include <gtest/gtest.h>

namespace gw::crypto {
namespace {

Key256 key(std::uint8_t fill) {
  Key256 k{};
  k.fill(fill);
  return k;
}

std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(Aead, OpensAValueSealedByAnotherImplementation) {
  // Python `cryptography` AESGCM: key 00..1f, nonce 64..6f, AAD "patients.patient_name".
  Key256 k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i);
  const auto sealed = from_hex(
      "6465666768696a6b6c6d6e6f05d8620a158c24c074a1e39abd00045bd2b87267aa314d61c81a52ee67ec45");
  auto opened = aes256gcm_open(k, sealed, "patients.patient_name");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, bytes("Müller^Jürgen"));
  auto other_aad = aes256gcm_open(k, sealed, "patients.patient_id");
  ASSERT_FALSE(other_aad.ok());
  EXPECT_NE(other_aad.error().message.find("authentication failed"), std::string::npos);
}

TEST(Aead, RoundTripWithAad) {
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 1000u}) {
    const std::vector<std::uint8_t> plain(n, 0x5a);
    auto sealed = aes256gcm_seal(key(1), plain, "patients.patient_name");
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->size(), n + kGcmNonceSize + kGcmTagSize);
    auto opened = aes256gcm_open(key(1), *sealed, "patients.patient_name");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(*opened, plain);
  }
}

TEST(Aead, EveryChangedByteWrongKeyOrAadFails) {
  const auto plain = bytes("DOE^JANE");
  auto sealed = aes256gcm_seal(key(1), plain, "a");
  ASSERT_TRUE(sealed.ok());
  for (std::size_t i = 0; i < sealed->size(); ++i) {
    auto changed = *sealed;
    changed[i] ^= 0x01;
    auto opened = aes256gcm_open(key(1), changed, "a");
    ASSERT_FALSE(opened.ok()) << "byte " << i;
    EXPECT_EQ(opened.error().code, core::ErrorCode::kDataLoss);
  }
  EXPECT_FALSE(aes256gcm_open(key(2), *sealed, "a").ok());
  EXPECT_FALSE(aes256gcm_open(key(1), *sealed, "b").ok());
  for (std::size_t n = 0; n < sealed->size(); ++n) {
    EXPECT_FALSE(aes256gcm_open(key(1), std::span(sealed->data(), n), "a").ok()) << "length " << n;
  }
  auto longer = *sealed;
  longer.push_back(0);
  EXPECT_FALSE(aes256gcm_open(key(1), longer, "a").ok());
}

TEST(Aead, NoncesAreFresh) {
  const auto plain = bytes("same");
  EXPECT_NE(*aes256gcm_seal(key(1), plain, ""), *aes256gcm_seal(key(1), plain, ""));
}

TEST(Aead, HmacSha256HexIsTheStandardMac) {
  const auto mac = hmac_sha256_hex(key(7), "value");
  // Python: hmac.new(bytes([7]) * 32, b"value", hashlib.sha256).hexdigest()
  EXPECT_EQ(mac, "1a275ea7a06a1e32b3c9c5b10fe342f0c7d4645e291a201980cde3c5ff15cf73");
  EXPECT_NE(mac, hmac_sha256_hex(key(8), "value"));
  EXPECT_NE(mac, hmac_sha256_hex(key(7), "value2"));
  EXPECT_EQ(mac.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace gw::crypto
