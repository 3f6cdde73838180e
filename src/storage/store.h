#pragma once
/// The durable instance store: data arrives in a spool file, is flushed to stable storage, then
/// renamed into storage/ under a random name (never derived from peer-supplied strings), and the
/// directory entry is flushed too. Only after that may the index row be committed and the sender
/// told "success".
///
/// Layout under data_dir:  spool/  (in-progress files, removed at start-up)
///                         storage/<2 hex>/<32 hex>.dcm  (committed files)

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/unique_fd.h"
#include "storage/sha256.h"

namespace gw::storage {

using core::Result;
using core::Status;

struct StoreOptions {
  std::filesystem::path data_dir;
  bool fsync = true;  ///< storage.fsync: fdatasync files and fsync directories
};

/// A file being received. Move-only; the destructor removes the temp file unless it was
/// committed. Writes go straight to the kernel (no user-space buffer beyond the caller's).
class SpoolFile {
 public:
  SpoolFile(SpoolFile&& other) noexcept;
  SpoolFile& operator=(SpoolFile&& other) noexcept;
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;
  ~SpoolFile();

  /// Appends bytes. ENOSPC/EDQUOT/EFBIG -> kResourceExhausted; other errors kIo. After a failed
  /// write the file is incomplete: further writes fail and commit() refuses it.
  Status write(std::span<const std::uint8_t> bytes);
  std::uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  /// SHA-256 of everything written so far, lower-case hex, when the file was begun with an
  /// inline digest (computed incrementally by write()); empty otherwise.
  std::string sha256_hex() const;
  /// A second descriptor of the same open file (e.g. for a reader hashing behind the writer); it
  /// stays valid after this SpoolFile is gone.
  Result<core::UniqueFd> dup_fd() const;

 private:
  friend class Store;
  SpoolFile(int fd, std::filesystem::path path);
  void discard() noexcept;

  int fd_ = -1;
  std::filesystem::path path_;
  std::uint64_t size_ = 0;
  std::optional<Sha256> digest_;
  bool early_writeback_ = false;  ///< start write-back every kWritebackChunk (fsync on)
  std::uint64_t written_back_ = 0;
  static constexpr std::uint64_t kWritebackChunk = 8u << 20;
  bool failed_ = false;  ///< a write failed: the content is incomplete and must not be committed
};

class Store {
 public:
  /// Creates data_dir/{spool,storage} (0750) if needed, takes an exclusive lock on
  /// data_dir/.lock (a second gateway on the same data_dir is refused before it can touch
  /// anything: kConflict) and removes leftover spool files.
  static Result<std::unique_ptr<Store>> create(const StoreOptions& options);

  /// `inline_digest`: write() also feeds a SHA-256 (sha256_hex()); callers that hash elsewhere
  /// pass false.
  Result<SpoolFile> begin(bool inline_digest = true);

  /// fdatasync (if fsync), rename into storage/, fsync the directory (if fsync). Returns the
  /// stored path relative to data_dir ("storage/ab/….dcm"). On failure the spool file is removed
  /// and nothing is left in storage/.
  Result<std::string> commit(SpoolFile&& file);

  /// The first half of commit(): fdatasync (if fsync) and rename into storage/. The directory
  /// entry is not yet durable: call sync_directories() before relying on the file (callers that
  /// group several instances sync their directories once).
  Result<std::string> publish(SpoolFile&& file);
  /// fsyncs (if fsync) each distinct directory of the given stored paths.
  Status sync_directories(const std::vector<std::string>& relative_paths);

  /// Removes a committed file (relative path as returned by commit). Missing file is not an error.
  Status remove(const std::string& relative_path);

  /// After a run that did not end cleanly (crash, kill -9): the stored files written since that
  /// run started, relative paths — the only files that can be in storage/ without an index row
  /// (renamed, then the process died before the commit). Empty after a clean shutdown.
  Result<std::vector<std::string>> recovery_candidates() const;

  std::filesystem::path absolute(const std::string& relative_path) const;
  const StoreOptions& options() const { return options_; }
  /// Bytes free on the storage file system.
  Result<std::uint64_t> free_bytes() const;

 private:
  Store(StoreOptions options, core::UniqueFd lock)
      : options_(std::move(options)), lock_(std::move(lock)) {}

 public:
  /// Marks the data directory as cleanly closed (see recovery_candidates()).
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

 private:
  StoreOptions options_;
  core::UniqueFd lock_;  ///< data_dir/.lock, held (flock) for the Store's lifetime; its content
                         ///< says "running" while open and "clean" after a clean close
  bool previous_run_unclean_ = false;
  std::filesystem::file_time_type previous_start_{};
};

}  // namespace gw::storage
