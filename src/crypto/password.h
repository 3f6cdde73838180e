#pragma once
/// Password hashing for API users: argon2id (libsodium's crypto_pwhash_str), with at least
/// OWASP's parameters (memory >= 19 MiB, iterations >= 2). The encoded string carries its own
/// salt and parameters, so stronger settings later still verify old hashes.
///
/// Parameters now: libsodium's "interactive" preset, t = 2 passes over m = 64 MiB, one lane
/// (about 0.1 s on a server core). That is above OWASP's floor without letting a burst of
/// logins exhaust a small gateway's memory: each concurrent hash holds 64 MiB, so callers that
/// hash on behalf of the network bound how many run at once.

#include <cstddef>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gw::crypto {

/// Longest password hash_password accepts (argon2 itself takes more; this bounds the work an
/// unauthenticated request can cause before the hash runs).
inline constexpr std::size_t kMaxPasswordBytes = 1024;
/// Shortest password a user may set (checked by the commands that set one, not by
/// verify_password: an existing short password still verifies).
inline constexpr std::size_t kMinPasswordBytes = 8;

/// The argon2id encoded hash of `password`. kInvalidArgument for an empty password or one
/// longer than 1024 bytes; kResourceExhausted when memory for the hash is not available.
core::Result<std::string> hash_password(std::string_view password);

/// True when `password` matches `encoded` (constant time within libsodium); false for a wrong
/// password or a malformed hash.
bool verify_password(std::string_view password, const std::string& encoded);

/// True when `encoded` was made with other parameters (or another algorithm) than
/// hash_password uses now: rehash it at the next successful login. Also true for a string that
/// is not a hash we can parse.
bool password_needs_rehash(const std::string& encoded);

}  // namespace gw::crypto
