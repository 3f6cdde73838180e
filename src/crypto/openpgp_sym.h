#pragma once
/// OpenPGP symmetrically encrypted messages (RFC 4880) of the kind PostgreSQL's pgcrypto reads
/// and writes with pgp_sym_encrypt / pgp_sym_decrypt. The gateway makes and reads them itself,
/// so the key never travels to the database server (ADR 010), while an operator can still
/// decrypt a value in plain SQL: SELECT pgp_sym_decrypt(col, 'key').

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gw::crypto {

/// A message: SKESK v4 (AES-256, salted SHA-256 S2K, session key = S2K output) then SEIPD v1
/// with MDC holding a UTF-8 literal data packet with `plaintext`.
core::Result<std::vector<std::uint8_t>> pgp_sym_encrypt(std::string_view plaintext,
                                                        std::string_view passphrase);

/// The text of a message made by pgp_sym_encrypt above or by pgcrypto's (S2K simple, salted or
/// iterated; SHA-1/SHA-256; AES-128/192/256; SEIPD with MDC; old or new packet headers,
/// partial lengths). kDataLoss "wrong key or corrupted value" for a wrong key or any change;
/// kUnsupported for compressed data or a message without integrity protection.
core::Result<std::string> pgp_sym_decrypt(std::span<const std::uint8_t> message,
                                          std::string_view passphrase);

}  // namespace gw::crypto
