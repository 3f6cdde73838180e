#include "crypto/token.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <array>

#include "crypto/sodium.h"

namespace gw::crypto {
namespace {

constexpr std::string_view kPrefix = "dgw_";
constexpr std::size_t kRandomBytes = 32;  // 256 bits: no guessing, no brute force of the hash
// base64 without padding: 4 characters per 3 bytes, rounded up.
constexpr std::size_t kEncodedChars = (kRandomBytes * 4 + 2) / 3;  // 43
constexpr std::size_t kTokenChars = kPrefix.size() + kEncodedChars;

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

core::Result<std::string> new_api_token() {
  if (!detail::sodium_ready()) {
    return core::make_error(core::ErrorCode::kInternal, "libsodium failed to initialise");
  }
  std::array<unsigned char, kRandomBytes> random{};
  randombytes_buf(random.data(), random.size());  // the OS CSPRNG (getrandom)
  std::array<char,
             sodium_base64_ENCODED_LEN(kRandomBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)>
      encoded{};
  sodium_bin2base64(encoded.data(), encoded.size(), random.data(), random.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(random.data(), random.size());
  std::string token(kPrefix);
  token += encoded.data();
  sodium_memzero(encoded.data(), encoded.size());
  if (token.size() != kTokenChars) {
    return core::make_error(core::ErrorCode::kInternal, "token encoding has the wrong length");
  }
  return token;
}

std::string token_hash(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // EVP_Digest with SHA-256 fails only when OpenSSL cannot allocate a context; an empty result
  // then matches no stored hash (and create_token refuses it).
  if (EVP_Digest(token.data(), token.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(std::size_t{length} * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

bool looks_like_api_token(std::string_view text) {
  if (text.size() != kTokenChars || !text.starts_with(kPrefix)) return false;
  text.remove_prefix(kPrefix.size());
  for (char c : text) {
    if (!base64url_char(c)) return false;
  }
  return true;
}

}  // namespace gw::crypto
