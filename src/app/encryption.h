#pragma once
/// Encryption at rest, the gateway's side (ADR 010): where the master keys come from, their
/// registration with the index, and `dicom-gw db rotate-key`.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "config/config.h"
#include "core/result.h"
#include "crypto/keyring.h"
#include "index/index.h"

namespace gw::app {

crypto::KeySources key_sources(const config::Database& database);

/// Reads the keys named by the config and registers them with the index (versions, the
/// wrong-key and missing-key checks). An empty keyring when no key is configured.
core::Result<std::shared_ptr<const crypto::Keyring>> load_keys(const config::Config& config,
                                                               index::Index& index);

struct RotationProgress {
  std::int64_t rows_reencrypted = 0;  ///< patient and study rows re-sealed so far
  std::int64_t rows_left = 0;         ///< rows of other key versions still to do
  std::int64_t files_checked = 0;
  std::int64_t files_rewrapped = 0;
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
/// carries on.
core::Result<RotationProgress> rotate_keys(index::Index& index,
                                           const std::filesystem::path& data_dir,
                                           std::shared_ptr<const crypto::Keyring> keyring,
                                           const RotationOptions& options);

}  // namespace gw::app
