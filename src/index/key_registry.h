#pragma once
/// The key registry's rules (ADR 010), shared by both backends: which version each configured
/// key has, whether a new current key may be registered, and when to refuse to start. The
/// backends only read and write the `encryption_keys` table.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "crypto/keyring.h"

namespace gw::index {

struct RegisteredKey {
  std::uint32_t version = 0;
  std::string check_value;
};

struct KeyPlan {
  crypto::Keyring keyring;  ///< with versions assigned
  /// A key to add to the registry before use (the first key, or a new current key beside a
  /// registered previous one).
  std::optional<RegisteredKey> add;
};

/// `versions_in_use`: the distinct key versions of stored rows (0 = plaintext). Errors are
/// kConfig and say what to do; they never show a key, only versions and check values.
core::Result<KeyPlan> plan_keys(const std::vector<RegisteredKey>& registry, crypto::Keyring keyring,
                                const std::vector<std::uint32_t>& versions_in_use);

}  // namespace gw::index
