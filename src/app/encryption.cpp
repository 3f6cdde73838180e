#include "app/encryption.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>
#include <system_error>
#include <thread>

#include "core/log.h"
#include "core/unique_fd.h"
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

enum class StoredFile { kEncrypted, kPlain, kMissing };

/// "rotate-key: cannot <what> <path>: <strerror> (errno N)"; rotation stops on it.
core::Error probe_error(int err, std::string_view what, const std::filesystem::path& path) {
  std::string message = "rotate-key: cannot " + std::string(what) + " " + path.string() + ": ";
  message += std::generic_category().message(err) + " (errno " + std::to_string(err) + ")";
  message += "; stopped there: fix it (a storage volume not mounted, permissions) and run it again";
  return core::make_error(core::ErrorCode::kIo, std::move(message));
}

/// Whether the file starts with the encrypted-file magic. kMissing only for ENOENT; any other
/// failure to open or read it (EACCES, EIO, EISDIR, ...) is an error: an unreadable file may well
/// be encrypted, and skipping it would leave it wrapped only by the old key.
core::Result<StoredFile> probe_stored_file(const std::filesystem::path& path) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) return StoredFile::kMissing;
    return probe_error(err, "open", path);
  }
  std::array<std::uint8_t, storage::kEncryptedMagic.size()> head{};
  std::size_t filled = 0;
  // Bounded: every pass reads at least one byte or ends the loop.
  while (filled < head.size()) {
    const ssize_t n = ::read(fd.get(), head.data() + filled, head.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return probe_error(errno, "read", path);
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  // Shorter than the magic: a plain file (needs no key).
  if (filled < head.size()) return StoredFile::kPlain;
  return storage::is_encrypted(head) ? StoredFile::kEncrypted : StoredFile::kPlain;
}

/// crypto::load_keyring, and kConfig when database.encryption_key_env names a variable other
/// than the default that is not set (or empty) and no key file is given: the operator meant to
/// turn encryption on, so it must not be silently off (a key pasted there as a "name" ends here
/// too, when it passed as one). Without the setting, no key means no encryption, as documented.
core::Result<crypto::Keyring> load_configured_keyring(const config::Database& database) {
  GW_ASSIGN_OR_RETURN(auto keyring, crypto::load_keyring(key_sources(database)));
  if (keyring.empty() && database.encryption_key_env != config::Database{}.encryption_key_env) {
    const std::string& name = database.encryption_key_env;
    // A name that could be a key (config lets through upper case with _ only at this length)
    // is not repeated.
    const std::string named = name.size() < 32 ? " " + name : std::string();
    return core::make_error(
        core::ErrorCode::kConfig,
        "database.encryption_key_env names the environment variable" + named +
            ", which is not set (or is empty) here, and no database.encryption_key_file is given: "
            "encryption at rest would be off. Set the variable (systemd: Environment= or "
            "EnvironmentFile=), or remove database.encryption_key_env to run without a key");
  }
  return keyring;
}

void note_missing(RotationProgress& progress, const std::string& relative) {
  ++progress.files_missing;
  if (progress.missing_files.size() < RotationProgress::kMissingListed) {
    progress.missing_files.push_back(relative);
  }
}

}  // namespace

crypto::KeySources key_sources(const config::Database& database) {
  crypto::KeySources sources;
  sources.env_name = database.encryption_key_env;
  sources.key_file = database.encryption_key_file;
  sources.previous_key_file = database.previous_encryption_key_file;
  return sources;
}

core::Result<crypto::Keyring> read_keys(const config::Database& database, bool storage_encrypt) {
  GW_ASSIGN_OR_RETURN(auto keyring, load_configured_keyring(database));
  if (storage_encrypt && keyring.empty()) {
    return core::make_error(core::ErrorCode::kConfig,
                            "storage.encrypt needs an encryption key: set " +
                                database.encryption_key_env + " or database.encryption_key_file");
  }
  return keyring;
}

core::Result<std::shared_ptr<const crypto::Keyring>> load_keys(const config::Config& config,
                                                               index::Index& index) {
  GW_ASSIGN_OR_RETURN(auto keyring, load_configured_keyring(config.database));
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
    for (const auto& file : page) {
      after = file.id;
      const auto& relative = file.storage_path;
      ++progress.files_listed;
      const auto path = data_dir / relative;
      GW_ASSIGN_OR_RETURN(const auto kind, probe_stored_file(path));
      if (kind == StoredFile::kMissing) {
        note_missing(progress, relative);
        continue;
      }
      if (kind == StoredFile::kPlain) continue;
      ++progress.files_checked;
      auto changed = storage::rewrap(path, *keyring, options.fsync);
      if (!changed.ok()) {
        if (changed.error().code == core::ErrorCode::kNotFound) {  // removed meanwhile
          note_missing(progress, relative);
          continue;
        }
        return core::make_error(changed.error().code,
                                "rotate-key: " + relative + ": " + changed.error().message);
      }
      if (*changed) ++progress.files_rewrapped;
    }
    if (options.on_progress) options.on_progress(progress);
  }
  GW_ASSIGN_OR_RETURN(status, index.encryption_status());
  progress.rows_left = rows_left(status);
  // Done only when no row is left under another key and every listed file was looked at: a
  // missing file may be a volume that is not mounted, so the old key must stay until it is known.
  progress.done = progress.rows_left == 0 && progress.files_missing == 0;
  if (options.on_progress) options.on_progress(progress);
  return progress;
}

}  // namespace gw::app
