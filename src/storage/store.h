#pragma once
/// The durable instance store: data arrives in a spool file, is renamed into storage/ under a
/// random name (never derived from peer-supplied strings), and is made durable, content and
/// directory entry, before the sender is told "success": either flushed before its index row
/// commits (sync_data + directory_syncer, ADR 009), or with the row by one syncfs after an
/// unflushed commit (sync_filesystem, ADR 012).
///
/// Layout under data_dir:  spool/  (in-progress files, removed at start-up)
///                         storage/<2 hex>/<32 hex>.dcm  (committed files)
/// With a node_id (several gateways on one data_dir and one PostgreSQL), each node writes only
/// spool/<node_id>/ and storage/<node_id>/<2 hex>/<32 hex>.dcm and cleans up only those; any
/// node reads any stored file through the relative path its index row holds.
///
/// With storage.encrypt, spool and stored files are encrypted as they are written
/// (storage/encrypted_file.h, ADR 010); sizes and digests still describe the plaintext Part 10
/// bytes. Read stored files with open_content() only: it reads plain and encrypted files alike.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/unique_fd.h"
#include "storage/content_digest.h"
#include "storage/content_reader.h"
#include "storage/directory_syncer.h"
#include "storage/encrypted_file.h"
#include "storage/pending_files.h"

namespace gw::crypto {
struct Keyring;
}

namespace gw::storage {

using core::Result;
using core::Status;

struct StoreOptions {
  std::filesystem::path data_dir;
  bool fsync = true;     ///< storage.fsync: flush files and directories (fdatasync/fsync or syncfs)
  bool encrypt = false;  ///< storage.encrypt: new files are encrypted (needs a key in keyring)
  /// Keys for encrypting new files (current) and reading encrypted ones (current, previous).
  /// May be null at creation (the keys' versions come from the index, opened later): set it
  /// with Store::set_keyring before the first begin(). Replaced the same way on a reload.
  std::shared_ptr<const crypto::Keyring> keyring = nullptr;
  /// node_id ([A-Za-z0-9._-]{1,64}, not "." or ".."): this node's own spool/ and storage/
  /// subdirectories and lock file. Empty: the only gateway on data_dir.
  std::string node_id = {};
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
  /// Ends the content (encrypted: writes the last segment; no write() after this) and opens it
  /// for reading, e.g. to parse the data set's tags before the file is published.
  Result<std::unique_ptr<ContentReader>> content();
  /// Plaintext bytes written so far.
  std::uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  /// Content digest of everything written so far ("xxh128:…", storage/content_digest.h),
  /// computed by write() from the bytes as they pass: no second read of the file.
  std::string digest() const { return digest_.text(); }

 private:
  friend class Store;
  SpoolFile(int fd, std::filesystem::path path);
  void discard() noexcept;
  /// Encrypted: writes the last segment (once). Plain: nothing to do.
  Status finish();

  int fd_ = -1;
  std::filesystem::path path_;
  std::uint64_t size_ = 0;
  ContentDigest digest_;
  bool early_writeback_ = false;    ///< start write-back every kWritebackChunk (fsync on)
  std::uint64_t written_back_ = 0;  ///< bytes of the file on disk (ciphertext when encrypted)
  std::unique_ptr<EncryptedFileWriter> encrypted_;  ///< set: storage.encrypt
  std::shared_ptr<const crypto::Keyring> keyring_;  ///< what the file was encrypted with
  bool finished_ = false;                           ///< content() was called
  /// Every 256 KiB (one PDU at our default max PDU length) the disk starts on what arrived, so
  /// the fdatasync at the end waits for the tail only. Measured against 8 MiB (session 6, fsync
  /// on): +12 % instances/s for 512 KiB files on 1 association, +8 % on 4, +10 % for 50 MiB.
  static constexpr std::uint64_t kWritebackChunk = 256u << 10;
  bool failed_ = false;  ///< a write failed: the content is incomplete and must not be committed
  PendingFiles::Ticket pending_;  ///< moves into PublishedFile
};

/// A file renamed into storage/ (see Store::publish).
struct PublishedFile {
  std::string path;   ///< relative: "storage/[<node_id>/]<2 hex>/<32 hex>.dcm"
  core::UniqueFd fd;  ///< still open, for sync_data() or sync_filesystem()
  /// Holds back Store::checkpoint() until the caller has indexed or removed the file (destroy
  /// or release() it then), or keep() it when that is unknown.
  PendingFiles::Ticket pending;
};

class Store {
 public:
  /// Creates data_dir/{spool,storage} (0750) if needed, takes an exclusive lock on
  /// data_dir/.lock (a second gateway on the same data_dir is refused before it can touch
  /// anything: kConflict) and removes leftover spool files. With a node_id: a shared lock on
  /// data_dir/.lock (refused while a gateway without node_id runs there) and an exclusive one on
  /// data_dir/.lock-<node_id> (refused while a node of the same name runs there); the spool
  /// clean-up and recovery_candidates() touch only this node's subdirectories.
  static Result<std::unique_ptr<Store>> create(const StoreOptions& options);

  /// A new spool file; write() feeds its content digest.
  Result<SpoolFile> begin();

  /// fdatasync (if fsync), rename into storage/, fsync the directory (if fsync). Returns the
  /// stored path relative to data_dir ("storage/ab/….dcm"). On failure the spool file is removed
  /// and nothing is left in storage/.
  Result<std::string> commit(SpoolFile&& file);

  /// The first step of commit(), for callers that overlap the flushes: renames the file into
  /// storage/ and keeps it open. Neither its content nor its directory entry is durable yet:
  /// call sync_data() and have directory_syncer() sync its directory before an index row may
  /// name it, or commit the row unflushed and then sync_filesystem(file) (ADR 012). (A crash
  /// before the commit leaves a file without a row: recovery_candidates().)
  Result<PublishedFile> publish(SpoolFile&& file);
  /// fdatasync of a published file's content (if fsync).
  Status sync_data(const PublishedFile& file);
  /// Syncs the directories of published files (if fsync), in batches, on its own thread.
  DirectorySyncer& directory_syncer() { return *directory_syncer_; }
  /// The other way to make published files durable (ADR 012): one syncfs of the storage file
  /// system covers every file published before it, content and directory entry (if fsync).
  /// Through the published file's own descriptor, opened when its spool file was created: any
  /// write-back error since then fails it, whoever else was told of it first.
  Status sync_filesystem(const PublishedFile& file) const;
  /// The same through a descriptor opened now, whatever storage.fsync says (start-up checks).
  Status sync_filesystem() const;
  /// Whether a stored file (relative path), read from the disk rather than the page cache, has
  /// this plaintext size and digest (empty or not an XXH3 "xxh128:" digest: size only). false for a
  /// missing, cut short, altered or unauthenticated file; an error when the file cannot be read for
  /// another reason (permissions, I/O, no configured key for its key version), which proves nothing
  /// about it.
  Result<bool> check_stored(const std::string& relative_path, std::int64_t size_bytes,
                            const std::string& digest) const;
  /// The next start treats this run as unclean (recovery_candidates() then lists its files
  /// since its last checkpoint(), which the files kept pending hold back), even if it stops
  /// cleanly: files may be left that no row names. Thread-safe.
  void mark_unclean() { unclean_ = true; }
  /// A published file whose index row may or may not exist (a commit whose outcome is unknown,
  /// a failed flush, a removal that failed): it stays pending for the rest of this run and the
  /// run is marked unclean, so the next start checks it however this run ends.
  void keep_for_recovery(PublishedFile& file) {
    file.pending.keep();
    mark_unclean();
  }
  /// After an unclean previous run: its leftovers have been dealt with (remove_unreferenced
  /// files). Until then the lock file keeps saying "running" with that run's start time, so a
  /// start that fails before this point leaves the next one the same work.
  /// Also starts this run's "running" marker (with this start's time) from here on.
  void mark_recovered();
  /// Whether `path` (an existing file) is on the storage file system, so that
  /// sync_filesystem() makes its writes durable too.
  Result<bool> on_storage_filesystem(const std::filesystem::path& path) const;

  /// Removes a committed file (relative path as returned by commit). Missing file is not an error.
  Status remove(const std::string& relative_path);

  /// Records (in the lock file's time stamp, flushed) that every file this run began before
  /// now, or before the oldest one still pending (PublishedFile::pending), has its index row
  /// or is gone, so that after a crash recovery_candidates() starts there. Blocking; the gateway
  /// calls it every 30 s. Does nothing before mark_recovered().
  Status checkpoint();
  /// After a run that did not end cleanly (crash, kill -9): the stored files written since that
  /// run's last checkpoint() (or its start), relative paths — the only files that can be in
  /// storage/ without an index row (renamed, then the process died before the commit). Empty after
  /// a clean shutdown. Only this store's own shard directories are looked at (with a node_id:
  /// storage/<node_id>/).
  Result<std::vector<std::string>> recovery_candidates() const;

  /// data_dir / relative_path: for paths this store made (commit's). A path read from the index
  /// goes through stored_file_path (storage/stored_path.h) instead.
  std::filesystem::path absolute(const std::string& relative_path) const;
  const std::filesystem::path& data_dir() const { return options_.data_dir; }
  /// A stored file's content (absolute path, e.g. absolute(storage_path)), plain or encrypted,
  /// read with the current keyring (see storage::open_content).
  Result<std::unique_ptr<ContentReader>> open_content(const std::filesystem::path& path) const;
  /// New keys (a reload, a rotation). Files begun afterwards use the new current key; readers
  /// opened afterwards may use either key. Thread-safe.
  void set_keyring(std::shared_ptr<const crypto::Keyring> keyring);
  std::shared_ptr<const crypto::Keyring> keyring() const;
  /// The options the store was created with (options().keyring: the keys at creation).
  const StoreOptions& options() const { return options_; }
  /// Bytes free on the storage file system.
  Result<std::uint64_t> free_bytes() const;

 private:
  Store(StoreOptions options, core::UniqueFd lock)
      : options_(std::move(options)),
        keyring_(options_.keyring),
        lock_(std::move(lock)),
        directory_syncer_(std::make_unique<DirectorySyncer>(options_.fsync)) {}

 public:
  /// Marks the data directory as cleanly closed (see recovery_candidates()).
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

 private:
  StoreOptions options_;
  mutable std::mutex keyring_mu_;  // guards keyring_ only
  std::shared_ptr<const crypto::Keyring> keyring_;
  std::atomic<bool> unclean_{false};  ///< mark_unclean(): the destructor leaves "running"
  core::UniqueFd lock_;  ///< data_dir/.lock (.lock-<node_id>), held (flock) for the Store's
                         ///< lifetime; its content says "running" while open and "clean" after
                         ///< a clean close
  core::UniqueFd shared_lock_;  ///< with a node_id: data_dir/.lock, shared (flock LOCK_SH)
  bool previous_run_unclean_ = false;
  std::atomic<bool> recovered_{true};  ///< false after an unclean run until mark_recovered()
  std::filesystem::file_time_type previous_start_{};
  std::filesystem::path lock_path_;
  std::shared_ptr<PendingFiles> pending_ = std::make_shared<PendingFiles>();
  std::unique_ptr<DirectorySyncer> directory_syncer_;
};

}  // namespace gw::storage
