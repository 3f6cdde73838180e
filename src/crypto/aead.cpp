#include "crypto/aead.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <memory>

namespace gw::crypto {
namespace {

using core::ErrorCode;
using core::make_error;

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

/// EVP takes int lengths; values are database fields, far below this.
constexpr std::size_t kMaxLength = std::size_t{1} << 30;

const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

core::Result<std::vector<std::uint8_t>> aes256gcm_seal(const Key256& key,
                                                       std::span<const std::uint8_t> plaintext,
                                                       std::string_view aad) {
  if (plaintext.size() > kMaxLength || aad.size() > kMaxLength) {
    return make_error(ErrorCode::kTooLarge, "aes-256-gcm: value too large");
  }
  std::vector<std::uint8_t> out(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  if (RAND_bytes(out.data(), static_cast<int>(kGcmNonceSize)) != 1) {
    return make_error(ErrorCode::kInternal, "aes-256-gcm: no randomness for a nonce");
  }
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  int done = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), out.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, u8(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kGcmNonceSize, &n, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kGcmNonceSize + n, &done) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagSize),
                          out.data() + kGcmNonceSize + plaintext.size()) != 1) {
    return make_error(ErrorCode::kInternal, "aes-256-gcm: encryption failed");
  }
  return out;
}

core::Result<std::vector<std::uint8_t>> aes256gcm_open(const Key256& key,
                                                       std::span<const std::uint8_t> sealed,
                                                       std::string_view aad) {
  if (sealed.size() > kMaxLength || aad.size() > kMaxLength) {
    return make_error(ErrorCode::kTooLarge, "aes-256-gcm: value too large");
  }
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) {
    return make_error(ErrorCode::kDataLoss, "aes-256-gcm: authentication failed (too short)");
  }
  const std::size_t length = sealed.size() - kGcmNonceSize - kGcmTagSize;
  std::vector<std::uint8_t> out(length);
  std::array<std::uint8_t, kGcmTagSize> tag{};
  std::copy(sealed.end() - kGcmTagSize, sealed.end(), tag.begin());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  int done = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), sealed.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, u8(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &n, sealed.data() + kGcmNonceSize,
                        static_cast<int>(length)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagSize),
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &done) != 1) {
    return make_error(ErrorCode::kDataLoss, "aes-256-gcm: authentication failed");
  }
  return out;
}

std::string hmac_sha256_hex(const Key256& key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), u8(data), data.size(), mac.data(),
       &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

}  // namespace gw::crypto
