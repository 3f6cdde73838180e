#include "index/key_registry.h"

#include <algorithm>

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

std::optional<std::uint32_t> version_of(const std::vector<RegisteredKey>& registry,
                                        const std::string& check_value) {
  for (const auto& k : registry) {
    if (k.check_value == check_value) return k.version;
  }
  return std::nullopt;
}

std::string version_list(const std::vector<std::uint32_t>& versions) {
  std::string out;
  for (auto v : versions) {
    if (v == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::to_string(v);
  }
  return out;
}

}  // namespace

core::Result<KeyPlan> plan_keys(const std::vector<RegisteredKey>& registry, crypto::Keyring keyring,
                                const std::vector<std::uint32_t>& versions_in_use) {
  KeyPlan plan;
  std::vector<std::uint32_t> encrypted;
  for (auto v : versions_in_use) {
    if (v != 0) encrypted.push_back(v);
  }
  std::sort(encrypted.begin(), encrypted.end());

  if (keyring.empty()) {
    if (!encrypted.empty()) {
      return make_error(ErrorCode::kConfig,
                        "the database holds encrypted patient data (key version " +
                            version_list(encrypted) +
                            ") but no encryption key is configured: set "
                            "DICOM_GW_DB_ENCRYPTION_KEY or database.encryption_key_file");
    }
    plan.keyring = std::move(keyring);
    return plan;
  }

  std::uint32_t max_version = 0;
  for (const auto& k : registry) max_version = std::max(max_version, k.version);

  if (keyring.previous) {
    const auto v = version_of(registry, keyring.previous->check_value());
    if (!v) {
      return make_error(ErrorCode::kConfig,
                        "the previous encryption key is not a key this database knows (key "
                        "check value " +
                            keyring.previous->check_value() + ")");
    }
    keyring.previous->version = *v;
  }
  if (const auto v = version_of(registry, keyring.current->check_value())) {
    keyring.current->version = *v;
  } else if (registry.empty() || keyring.previous) {
    keyring.current->version = max_version + 1;
    plan.add = RegisteredKey{keyring.current->version, keyring.current->check_value()};
  } else {
    std::string known;
    for (const auto& k : registry) {
      if (!known.empty()) known += ", ";
      known += std::to_string(k.version);
    }
    return make_error(
        ErrorCode::kConfig,
        "wrong encryption key: DICOM_GW_DB_ENCRYPTION_KEY (or database.encryption_key_file) is "
        "not a key this database knows (it knows key version " +
            known +
            "). To move to a new key, give the old one as the previous key "
            "(DICOM_GW_DB_ENCRYPTION_KEY_PREVIOUS or database.previous_encryption_key_file) and "
            "run `dicom-gw db rotate-key`");
  }
  for (auto v : encrypted) {
    if (keyring.find(v) == nullptr) {
      return make_error(ErrorCode::kConfig,
                        "the database holds patient data encrypted with key version " +
                            std::to_string(v) +
                            ", which is neither the current nor the previous key: give that key "
                            "as the previous key and run `dicom-gw db rotate-key`");
    }
  }
  plan.keyring = std::move(keyring);
  return plan;
}

}  // namespace gw::index
