#pragma once
/// The master keys for encryption at rest (ADR 010): the current key and, during a rotation,
/// the previous one. A key is the operator's text (at least 32 characters, e.g. `openssl rand
/// -base64 32`); every use takes its own 32-byte subkey derived with HKDF-SHA256, and a key
/// check value names a key without revealing it. Versions are assigned by the index's key
/// registry (index::Index::register_keys), not by the operator.

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gw::crypto {

using Key256 = std::array<std::uint8_t, 32>;

/// Purposes of the subkeys (HKDF info strings). Each is used for exactly one thing.
inline constexpr std::string_view kFieldAead = "dicom-gw field-aead v1";    ///< SQLite values
inline constexpr std::string_view kBlindIndex = "dicom-gw blind-index v1";  ///< search hashes
inline constexpr std::string_view kFileWrap = "dicom-gw file-wrap v1";      ///< file data keys

class MasterKey {
 public:
  /// kInvalidArgument when `secret` (surrounding white space removed) is shorter than 32
  /// characters. The secret is kept only in memory and never logged.
  static core::Result<MasterKey> from_secret(std::string_view secret);

  /// The key text, for OpenPGP values (pgcrypto's passphrase) only.
  const std::string& secret() const { return secret_; }
  /// 32 hex digits: HMAC-SHA256(HKDF(secret, "dicom-gw check v1"), label), first 16 bytes.
  const std::string& check_value() const { return check_value_; }
  /// HKDF-SHA256(secret, salt none, info = purpose), 32 bytes.
  Key256 derive(std::string_view purpose) const;

  /// Registry version (1, 2, …); 0 until the index registered it.
  std::uint32_t version = 0;

 private:
  std::string secret_;
  std::string check_value_;
};

/// Where the keys come from (config: database.encryption_key_env / encryption_key_file /
/// previous_encryption_key_file). The environment wins over a file when both are set.
struct KeySources {
  std::string env_name = "DICOM_GW_DB_ENCRYPTION_KEY";  ///< previous key: env_name + "_PREVIOUS"
  std::filesystem::path key_file;           ///< owner-only (0400/0600), first line is the key
  std::filesystem::path previous_key_file;  ///< same rules
};

struct Keyring {
  std::optional<MasterKey> current;   ///< nullopt: no encryption configured
  std::optional<MasterKey> previous;  ///< during a rotation only

  bool empty() const { return !current.has_value(); }
  /// The key with this registry version, or null.
  const MasterKey* find(std::uint32_t version) const;
};

/// Reads the keys. No key at all is not an error (empty keyring). A key file that is missing,
/// unreadable, readable by group/others, or a key that is too short -> kInvalidArgument
/// with a message that names the source (env variable or file) but never the key.
core::Result<Keyring> load_keyring(const KeySources& sources);

}  // namespace gw::crypto
