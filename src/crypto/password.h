#pragma once
/// Password hashing for API users: argon2id (libsodium's crypto_pwhash_str), with at least
/// OWASP's parameters (memory >= 19 MiB, iterations >= 2). The encoded string carries its own
/// salt and parameters, so stronger settings later still verify old hashes.

#include <string>
#include <string_view>

#include "core/result.h"

namespace gw::crypto {

/// The argon2id encoded hash of `password`. kInvalidArgument for an empty password or one
/// longer than 1024 bytes; kResourceExhausted when memory for the hash is not available.
core::Result<std::string> hash_password(std::string_view password);

/// True when `password` matches `encoded` (constant time within libsodium); false for a wrong
/// password or a malformed hash.
bool verify_password(std::string_view password, const std::string& encoded);

/// True when `encoded` was made with weaker parameters than hash_password uses now (rehash it
/// at the next successful login).
bool password_needs_rehash(const std::string& encoded);

}  // namespace gw::crypto
