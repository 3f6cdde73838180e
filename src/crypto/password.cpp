#include "crypto/password.h"

#include <sodium.h>

#include <array>

#include "crypto/sodium.h"

namespace gw::crypto {
namespace {

// crypto_pwhash_str in libsodium >= 1.0.15 already means argon2id; the explicit argon2id
// functions keep it so whatever a future libsodium picks as its default.
constexpr unsigned long long kOpsLimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;  // t = 2
constexpr std::size_t kMemLimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;         // 64 MiB
static_assert(kOpsLimit >= 2, "OWASP: at least 2 iterations");
static_assert(kMemLimit >= std::size_t{19} * 1024 * 1024, "OWASP: at least 19 MiB");

/// libsodium reads the encoded hash as a C string of at most crypto_pwhash_STRBYTES bytes
/// (terminator included); anything longer or with an embedded NUL is not one of ours.
bool plausible_encoding(const std::string& encoded) {
  return !encoded.empty() && encoded.size() < crypto_pwhash_STRBYTES &&
         encoded.find('\0') == std::string::npos;
}

}  // namespace

core::Result<std::string> hash_password(std::string_view password) {
  if (password.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "password is empty");
  }
  if (password.size() > kMaxPasswordBytes) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "password is longer than 1024 bytes");
  }
  if (!detail::sodium_ready()) {
    return core::make_error(core::ErrorCode::kInternal, "libsodium failed to initialise");
  }
  std::array<char, crypto_pwhash_STRBYTES> out{};
  // Fails only when the memory for the hash cannot be allocated.
  if (crypto_pwhash_argon2id_str(out.data(), password.data(), password.size(), kOpsLimit,
                                 kMemLimit) != 0) {
    return core::make_error(core::ErrorCode::kResourceExhausted,
                            "password hashing: out of memory (argon2id needs 64 MiB)");
  }
  return std::string(out.data());
}

bool verify_password(std::string_view password, const std::string& encoded) {
  if (password.empty() || password.size() > kMaxPasswordBytes) return false;
  if (!plausible_encoding(encoded) || !detail::sodium_ready()) return false;
  // Only our algorithm: an argon2i or scrypt string in the table did not come from us.
  if (!encoded.starts_with(crypto_pwhash_argon2id_STRPREFIX)) return false;
  return crypto_pwhash_argon2id_str_verify(encoded.c_str(), password.data(), password.size()) == 0;
}

bool password_needs_rehash(const std::string& encoded) {
  if (!plausible_encoding(encoded) || !detail::sodium_ready()) return true;
  // 0: same parameters; 1: different; -1: not an argon2id string. Both of the latter: rehash.
  return crypto_pwhash_argon2id_str_needs_rehash(encoded.c_str(), kOpsLimit, kMemLimit) != 0;
}

}  // namespace gw::crypto
