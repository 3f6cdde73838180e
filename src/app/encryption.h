#pragma once
/// Encryption at rest, the gateway's side (ADR 010): where the master keys come from, their
/// registration with the index, and `dicom-gw db rotate-key`.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"
#include "crypto/keyring.h"
#include "index/index.h"

namespace gw::app {

crypto::KeySources key_sources(const config::Database& database);

/// Reads the keys named by `database` (crypto::load_keyring: key file modes, key length) without
/// registering them; kConfig when `storage_encrypt` (storage.encrypt) but no key is configured.
/// What start, reload and `config check` read.
core::Result<crypto::Keyring> read_keys(const config::Database& database, bool storage_encrypt);

/// Reads the keys named by the config and registers them with the index (versions, the
/// wrong-key and missing-key checks). An empty keyring when no key is configured.
core::Result<std::shared_ptr<const crypto::Keyring>> load_keys(const config::Config& config,
                                                               index::Index& index);

struct RotationProgress {
  std::int64_t rows_reencrypted = 0;  ///< patient and study rows re-sealed so far
  std::int64_t rows_left = 0;         ///< rows of other key versions still to do
  std::int64_t files_listed = 0;      ///< stored files of the index looked at so far
  std::int64_t files_checked = 0;     ///< encrypted ones among them
  std::int64_t files_rewrapped = 0;
  /// Listed in the index but not found (ENOENT): deleted meanwhile, or a storage volume that
  /// is not mounted. Any other failure to read a file ends the run with an error instead.
  std::int64_t files_missing = 0;
  static constexpr std::size_t kMissingListed = 10;
  std::vector<std::string> missing_files;  ///< the first kMissingListed (relative paths)
  /// No row left under another key and no file missing: the previous key is no longer needed.
  bool done = false;
};

struct RotationOptions {
  std::int64_t batch = 500;  ///< rows per transaction, files per index page
  bool fsync = true;
  std::chrono::milliseconds pause{0};  ///< between batches
  /// Called after every batch (progress output; tests stop the process from here).
  std::function<void(const RotationProgress&)> on_progress;
};

/// Re-seals every PHI row that is not under the current key and rewraps the data key of every
/// encrypted stored file (storage.encrypt) with it. Resumable: what is done stays done, a rerun
/// carries on. A stored file that cannot be opened or read for any reason but ENOENT (EACCES,
/// EIO, a directory in its place) ends the run with kIo naming the path and errno; a missing
/// one is counted in files_missing and keeps `done` false.
core::Result<RotationProgress> rotate_keys(index::Index& index,
                                           const std::filesystem::path& data_dir,
                                           std::shared_ptr<const crypto::Keyring> keyring,
                                           const RotationOptions& options);

}  // namespace gw::app
