#pragma once
/// AES-256-GCM and HMAC-SHA256 for encryption at rest (ADR 010), on OpenSSL 3.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "crypto/keyring.h"

namespace gw::crypto {

inline constexpr std::size_t kGcmNonceSize = 12;
inline constexpr std::size_t kGcmTagSize = 16;

/// nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes); `aad` is authenticated, not stored.
core::Result<std::vector<std::uint8_t>> aes256gcm_seal(const Key256& key,
                                                       std::span<const std::uint8_t> plaintext,
                                                       std::string_view aad);
/// The plaintext of aes256gcm_seal's output; kDataLoss ("authentication failed") for a wrong
/// key, other AAD, a changed byte or a short input.
core::Result<std::vector<std::uint8_t>> aes256gcm_open(const Key256& key,
                                                       std::span<const std::uint8_t> sealed,
                                                       std::string_view aad);

/// HMAC-SHA256(key, data) as 64 lower-case hex digits.
std::string hmac_sha256_hex(const Key256& key, std::string_view data);

}  // namespace gw::crypto
