#include "app/encryption.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <thread>

#include "core/log.h"
#include "storage/encrypted_file.h"

namespace gw::app {
namespace {

std::int64_t rows_left(const index::EncryptionStatus& status) {
  std::int64_t n = 0;
  for (const auto& [version, rows] : status.rows_by_version) {
    if (version != status.current_key_version) n += rows;
  }
  return n;
}

/// Whether the file starts with the encrypted-file magic (a missing file: false).
bool is_encrypted_file(const std::filesystem::path& path) {
  std::array<std::uint8_t, storage::kEncryptedMagic.size()> head{};
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(head.data()), head.size())) return false;
  return storage::is_encrypted(head);
}

}  // namespace

crypto::KeySources key_sources(const config::Database& database) {
  crypto::KeySources sources;
  sources.env_name = database.encryption_key_env;
  sources.key_file = database.encryption_key_file;
  sources.previous_key_file = database.previous_encryption_key_file;
  return sources;
}

core::Result<std::shared_ptr<const crypto::Keyring>> load_keys(const config::Config& config,
                                                               index::Index& index) {
  GW_ASSIGN_OR_RETURN(auto keyring, crypto::load_keyring(key_sources(config.database)));
  return index.use_keyring(std::move(keyring));
}

core::Result<RotationProgress> rotate_keys(index::Index& index,
                                           const std::filesystem::path& data_dir,
                                           std::shared_ptr<const crypto::Keyring> keyring,
                                           const RotationOptions& options) {
  if (!keyring || keyring->empty()) {
    return core::make_error(core::ErrorCode::kConfig,
                            "rotate-key: no encryption key is configured (set "
                            "DICOM_GW_DB_ENCRYPTION_KEY or database.encryption_key_file)");
  }
  RotationProgress progress;
  GW_ASSIGN_OR_RETURN(auto status, index.encryption_status());
  progress.rows_left = rows_left(status);
  // Bounded: every batch re-seals at least one row or ends the loop, and rows only move to
  // the current version; the cap guards against a writer that keeps adding old-key rows.
  const std::int64_t max_batches = progress.rows_left / options.batch + 1000;
  for (std::int64_t i = 0; i < max_batches; ++i) {
    GW_ASSIGN_OR_RETURN(auto changed, index.reencrypt_batch(options.batch));
    if (changed == 0) break;
    progress.rows_reencrypted += changed;
    progress.rows_left = std::max<std::int64_t>(0, progress.rows_left - changed);
    if (options.on_progress) options.on_progress(progress);
    if (options.pause.count() > 0) std::this_thread::sleep_for(options.pause);
  }
  // Stored files: every encrypted one gets its data key wrapped by the current key (the
  // content is not rewritten). Plain files (stored before storage.encrypt) are left alone.
  std::int64_t after = 0;
  for (;;) {
    GW_ASSIGN_OR_RETURN(auto page, index.list_stored_files(after, options.batch));
    if (page.empty()) break;
    for (const auto& [id, relative] : page) {
      after = id;
      const auto path = data_dir / relative;
      if (!is_encrypted_file(path)) continue;
      ++progress.files_checked;
      auto changed = storage::rewrap(path, *keyring, options.fsync);
      if (!changed.ok()) {
        if (changed.error().code == core::ErrorCode::kNotFound) continue;  // removed meanwhile
        return core::make_error(changed.error().code,
                                "rotate-key: " + relative + ": " + changed.error().message);
      }
      if (*changed) ++progress.files_rewrapped;
    }
    if (options.on_progress) options.on_progress(progress);
  }
  GW_ASSIGN_OR_RETURN(status, index.encryption_status());
  progress.rows_left = rows_left(status);
  progress.done = progress.rows_left == 0;
  if (options.on_progress) options.on_progress(progress);
  return progress;
}

}  // namespace gw::app
