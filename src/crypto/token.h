#pragma once
/// API bearer tokens: 256 random bits, shown once, stored only as their SHA-256.

#include <string>
#include <string_view>

#include "core/result.h"

namespace gw::crypto {

/// A new token: "dgw_" followed by 43 base64url characters (32 bytes from the OS CSPRNG).
core::Result<std::string> new_api_token();

/// The hash stored and looked up: lower-case hex SHA-256 of the token text.
std::string token_hash(std::string_view token);

/// Whether `text` has the shape of a token we issue (prefix, length, alphabet); a cheap check
/// before any lookup.
bool looks_like_api_token(std::string_view text);

}  // namespace gw::crypto
