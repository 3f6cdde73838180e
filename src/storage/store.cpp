#include "storage/store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/log.h"
#include "crypto/keyring.h"
#include "storage/file_ops.h"
#include "storage/stored_path.h"

namespace gw::storage {
namespace {

using core::ErrorCode;
using core::make_error;

constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;
constexpr std::string_view kSpoolSuffix = ".part";
constexpr std::string_view kStoredSuffix = ".dcm";
/// Random names are 128 bits; a collision means a broken CSPRNG, so a few retries are plenty.
constexpr int kNameAttempts = 8;

/// 32 lower-case hex characters from 16 CSPRNG bytes. Never derived from peer data.
Result<std::string> random_hex_name() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return make_error(ErrorCode::kInternal, "RAND_bytes failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0f]);
  }
  return out;
}

/// The name of shard directory `i` (0-255): two lower-case hex digits.
std::string shard_name(int i) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  return {kHexDigits[(i >> 4) & 0x0f], kHexDigits[i & 0x0f]};
}

/// This node's part of `top` ("spool", "storage"), relative to data_dir: `top` itself for the
/// only gateway, `top`/<node_id> for one of several nodes.
std::filesystem::path own_dir(const StoreOptions& options, const char* top) {
  if (options.node_id.empty()) return top;
  return std::filesystem::path(top) / options.node_id;
}

/// The config's rule again (config::Config::node_id): it becomes a directory name.
bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

/// Opens (creating) `path` and flocks it with `operation` (LOCK_EX or LOCK_SH), never waiting:
/// held by someone else -> kConflict with `busy`.
Result<core::UniqueFd> lock_file(const std::filesystem::path& path, int operation,
                                 const std::string& busy) {
  core::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode));
  if (!fd.valid()) return errno_error(errno, "open", path);
  if (::flock(fd.get(), operation | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return make_error(ErrorCode::kConflict, busy);
    return errno_error(errno, "lock", path);
  }
  return fd;
}

/// Creates `dir` with kDirMode. Sets `created` when this call made it.
Status make_dir(const std::filesystem::path& dir, bool& created) {
  created = false;
  if (::mkdir(dir.c_str(), kDirMode) == 0) {
    created = true;
    return core::ok_status();
  }
  if (errno != EEXIST) return errno_error(errno, "mkdir", dir);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errno_error(errno, "stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::kIo, "not a directory: " + dir.string());
  }
  return core::ok_status();
}

enum class RenameResult { kDone, kExists };

/// Renames `from` to `to` without ever replacing an existing `to`.
Result<RenameResult> rename_no_replace(const std::filesystem::path& from,
                                       const std::filesystem::path& to) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return RenameResult::kDone;
  }
  if (errno == EEXIST) return RenameResult::kExists;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
    return errno_error(errno, "rename to", to);
  }
  // The file system does not support RENAME_NOREPLACE: fall back to link + unlink.
#endif
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return RenameResult::kExists;
    return errno_error(errno, "link to", to);
  }
  if (::unlink(from.c_str()) != 0) {
    int err = errno;
    ::unlink(to.c_str());
    return errno_error(err, "unlink", from);
  }
  return RenameResult::kDone;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SpoolFile

SpoolFile::SpoolFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}

SpoolFile::SpoolFile(SpoolFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::exchange(other.path_, {})),
      size_(std::exchange(other.size_, 0)),
      digest_(std::move(other.digest_)),
      early_writeback_(other.early_writeback_),
      written_back_(other.written_back_),
      encrypted_(std::move(other.encrypted_)),
      keyring_(std::move(other.keyring_)),
      finished_(std::exchange(other.finished_, false)),
      failed_(std::exchange(other.failed_, false)),
      pending_(std::move(other.pending_)) {}

SpoolFile& SpoolFile::operator=(SpoolFile&& other) noexcept {
  if (this != &other) {
    discard();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::exchange(other.path_, {});
    size_ = std::exchange(other.size_, 0);
    digest_ = std::move(other.digest_);
    failed_ = std::exchange(other.failed_, false);
    early_writeback_ = other.early_writeback_;
    written_back_ = other.written_back_;
    encrypted_ = std::move(other.encrypted_);
    keyring_ = std::move(other.keyring_);
    finished_ = std::exchange(other.finished_, false);
    pending_ = std::move(other.pending_);
  }
  return *this;
}

SpoolFile::~SpoolFile() { discard(); }

void SpoolFile::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
}

Status SpoolFile::write(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) return make_error(ErrorCode::kInternal, "spool file is not open");
  if (failed_) return make_error(ErrorCode::kIo, "spool file had an earlier write error");
  if (finished_) return make_error(ErrorCode::kInternal, "write to a finished spool file");
  std::uint64_t on_disk = 0;
  if (encrypted_) {
    // The digest and size describe the plaintext; the writer encrypts whole segments.
    if (auto st = encrypted_->write(bytes); !st.ok()) {
      failed_ = true;
      return st;
    }
    digest_.update(bytes);
    size_ += bytes.size();
    on_disk = encrypted_->bytes_written();
  }
  const std::uint8_t* p = bytes.data();
  std::size_t left = encrypted_ ? 0 : bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      failed_ = true;
      return errno_error(errno, "write", path_);
    }
    if (n == 0) {
      failed_ = true;
      return make_error(ErrorCode::kIo, "write " + path_.string() + ": no progress");
    }
    digest_.update({p, static_cast<std::size_t>(n)});
    p += n;
    left -= static_cast<std::size_t>(n);
    size_ += static_cast<std::uint64_t>(n);
  }
  if (!encrypted_) on_disk = size_;
  if (early_writeback_ && on_disk - written_back_ >= kWritebackChunk) {
    // Start writing the finished part to disk now (asynchronously), so the fdatasync at commit
    // only waits for the tail: large instances stream to disk while they are received.
    ::sync_file_range(fd_, static_cast<off_t>(written_back_),
                      static_cast<off_t>(on_disk - written_back_), SYNC_FILE_RANGE_WRITE);
    written_back_ = on_disk;
  }
  return core::ok_status();
}

Status SpoolFile::finish() {
  if (!encrypted_ || encrypted_->finished()) return core::ok_status();
  if (failed_) return make_error(ErrorCode::kIo, "spool file had an earlier write error");
  if (auto st = encrypted_->finish(); !st.ok()) {
    failed_ = true;
    return st;
  }
  return core::ok_status();
}

Result<std::unique_ptr<ContentReader>> SpoolFile::content() {
  if (fd_ < 0) return make_error(ErrorCode::kInternal, "spool file is not open");
  GW_RETURN_IF_ERROR(finish());
  finished_ = true;
  // A descriptor of its own: the reader's lifetime does not depend on this spool file's.
  const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return errno_error(errno, "dup", path_);
  if (!encrypted_) return plain_content(fd, path_);
  auto reader = EncryptedFileReader::open(core::UniqueFd(fd), path_, *keyring_);
  if (!reader.ok()) return std::move(reader).error();
  return std::unique_ptr<ContentReader>(std::move(reader).value());
}

// ---------------------------------------------------------------------------------------------
// Store

Result<std::unique_ptr<Store>> Store::create(const StoreOptions& options) {
  if (options.data_dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "storage: data_dir is empty");
  }
  auto log = core::logger("storage");
  const auto& data_dir = options.data_dir;
  std::error_code ec;
  if (data_dir.has_parent_path() && !std::filesystem::exists(data_dir, ec)) {
    std::filesystem::create_directories(data_dir.parent_path(), ec);
    if (ec) {
      return make_error(ErrorCode::kIo,
                        "create " + data_dir.parent_path().string() + ": " + ec.message());
    }
  }
  bool created_data_dir = false;
  bool created_sub = false;
  bool created = false;
  const bool node = !options.node_id.empty();
  if (node && !valid_node_id(options.node_id)) {
    return make_error(ErrorCode::kInvalidArgument, "storage: invalid node_id");
  }
  GW_RETURN_IF_ERROR(make_dir(data_dir, created_data_dir));
  // A gateway's spool files are its in-flight instances, and its newest stored files may not
  // have their index rows yet: only it may clean them up. Without node_id the gateway is alone
  // on data_dir (.lock, exclusive). Nodes with a node_id share .lock (so no gateway without one
  // runs meanwhile) and each holds .lock-<node_id>, which also records its clean/unclean end.
  core::UniqueFd shared_lock;
  if (node) {
    GW_ASSIGN_OR_RETURN(shared_lock,
                        lock_file(data_dir / ".lock", LOCK_SH,
                                  "data_dir " + data_dir.string() +
                                      " is in use by a dicom-gw process without node_id"));
  }
  const auto lock_path = data_dir / (node ? ".lock-" + options.node_id : std::string(".lock"));
  GW_ASSIGN_OR_RETURN(
      core::UniqueFd lock,
      lock_file(lock_path, LOCK_EX,
                node ? "node_id " + options.node_id + " is already running on data_dir " +
                           data_dir.string()
                     : "data_dir " + data_dir.string() +
                           " is in use by another dicom-gw process (set node_id on each node "
                           "to share a data directory)"));
  // "running" left in the lock file means the previous run never closed its Store: a crash.
  // The file's mtime is when that run started (it wrote "running" then).
  char state[16] = {};
  const ssize_t state_len = ::pread(lock.get(), state, sizeof(state) - 1, 0);
  const bool previous_run_unclean = state_len > 0 && std::string_view(state).starts_with("running");
  const auto previous_start = std::filesystem::last_write_time(lock_path, ec);
  // After a crash the file keeps the crashed run's "running" and start time until this run has
  // removed that run's leftovers (mark_recovered): a start that fails first hands them on.
  if (!previous_run_unclean) {
    if (::ftruncate(lock.get(), 0) != 0 || ::pwrite(lock.get(), "running\n", 8, 0) != 8) {
      return errno_error(errno, "write", lock_path);
    }
    // Durable, or a power loss could leave "clean" on disk for a run that never closed.
    if (options.fsync && ::fdatasync(lock.get()) != 0) {
      return errno_error(errno, "fdatasync", lock_path);
    }
  }
  GW_RETURN_IF_ERROR(make_dir(data_dir / "spool", created));
  created_sub = created;
  GW_RETURN_IF_ERROR(make_dir(data_dir / "storage", created));
  created_sub = created_sub || created;
  const auto spool = data_dir / own_dir(options, "spool");
  const auto storage = data_dir / own_dir(options, "storage");
  if (node) {
    GW_RETURN_IF_ERROR(make_dir(spool, created));
    if (options.fsync && created) GW_RETURN_IF_ERROR(fsync_dir(data_dir / "spool"));
    GW_RETURN_IF_ERROR(make_dir(storage, created));
    if (options.fsync && created) GW_RETURN_IF_ERROR(fsync_dir(data_dir / "storage"));
  }
  // All 256 shard directories exist from the start: no mkdir/stat (and no fsync of storage/)
  // on the path of a received instance.
  bool created_shard = false;
  for (int i = 0; i < 256; ++i) {
    GW_RETURN_IF_ERROR(make_dir(storage / shard_name(i), created));
    created_shard = created_shard || created;
  }
  if (options.fsync && created_shard) GW_RETURN_IF_ERROR(fsync_dir(storage));
  if (options.fsync && created_sub) GW_RETURN_IF_ERROR(fsync_dir(data_dir));
  if (options.fsync && created_data_dir && data_dir.has_parent_path()) {
    GW_RETURN_IF_ERROR(fsync_dir(data_dir.parent_path()));
  }

  // Leftover spool files are instances whose sender never heard "success": drop them (this
  // node's only; another node's spool/<node_id>/ is not a regular file here).
  std::size_t removed = 0;
  for (std::filesystem::directory_iterator it(spool, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& path = it->path();
    std::error_code type_ec;
    if (path.extension().string() != kSpoolSuffix || !it->is_regular_file(type_ec)) continue;
    if (::unlink(path.c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      return errno_error(errno, "remove leftover", path);
    }
  }
  if (ec) return make_error(ErrorCode::kIo, "list " + spool.string() + ": " + ec.message());
  if (removed > 0) log->info("spool cleanup removed_part_files={}", removed);
  log->info("store opened data_dir={} fsync={} encrypt={}", options.data_dir.string(),
            options.fsync, options.encrypt);
  if (node) {
    log->info("store node_id={} spool={} storage={}", options.node_id, spool.string(),
              storage.string());
  }
  std::unique_ptr<Store> store(new Store(options, std::move(lock)));
  store->lock_path_ = lock_path;
  store->shared_lock_ = std::move(shared_lock);
  store->previous_run_unclean_ = previous_run_unclean;
  store->recovered_ = !previous_run_unclean;
  store->previous_start_ = previous_start;
  if (previous_run_unclean) log->warn("event=unclean_previous_run data_dir={}", data_dir.string());
  return store;
}

void Store::mark_recovered() {
  if (!recovered_.exchange(true) && lock_.valid()) {
    // From now on a crash is this run's: its leftovers are the files since this point.
    if (::ftruncate(lock_.get(), 0) == 0 && ::pwrite(lock_.get(), "running\n", 8, 0) == 8 &&
        options_.fsync) {
      (void)::fdatasync(lock_.get());
    }
  }
}

Store::~Store() {
  if (lock_.valid() && !unclean_ && recovered_ && ::ftruncate(lock_.get(), 0) == 0) {
    (void)::pwrite(lock_.get(), "clean\n", 6, 0);
  }
}

Status Store::checkpoint() {
  if (!lock_.valid() || !recovered_) return core::ok_status();
  const auto now = PendingFiles::file_time_now();
  const auto mark = std::min(pending_->oldest().value_or(now), now);
  // The lock file's mtime is where the next start's recovery_candidates() begins after a crash.
  const auto since_epoch = mark.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const struct timespec times[2] = {
      {.tv_sec = 0, .tv_nsec = UTIME_OMIT},
      {.tv_sec = static_cast<time_t>(secs.count()),
       .tv_nsec = static_cast<long>(
           std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count())}};
  if (::futimens(lock_.get(), times) != 0) return errno_error(errno, "set the time of", lock_path_);
  // fsync, not fdatasync: a time stamp alone is metadata fdatasync may skip.
  if (options_.fsync && ::fsync(lock_.get()) != 0) return errno_error(errno, "fsync", lock_path_);
  return core::ok_status();
}

Result<std::vector<std::string>> Store::recovery_candidates() const {
  std::vector<std::string> out;
  if (!previous_run_unclean_) return out;
  // Margin for file systems whose timestamps are coarser than the clock, and for a storage
  // server (NFS) whose clock, which stamps the files, lags ours, which stamped the checkpoint.
  const auto since = previous_start_ - std::chrono::minutes(5);
  // Only this gateway's own shard directories, one level deep: the files of other nodes
  // (storage/<node_id>/…) may be renamed and not yet committed by a node that runs now.
  const auto storage = own_dir(options_, "storage");
  for (int i = 0; i < 256; ++i) {
    const auto shard = options_.data_dir / storage / shard_name(i);
    std::error_code ec;
    std::filesystem::directory_iterator it(shard, ec);
    if (ec == std::errc::no_such_file_or_directory) continue;
    for (const std::filesystem::directory_iterator end; !ec && it != end; it.increment(ec)) {
      std::error_code file_ec;
      if (!it->is_regular_file(file_ec)) continue;
      const auto mtime = it->last_write_time(file_ec);
      if (file_ec || mtime < since) continue;
      out.push_back((storage / shard_name(i) / it->path().filename()).string());
    }
    if (ec) return make_error(ErrorCode::kIo, "list " + shard.string() + ": " + ec.message());
  }
  return out;
}

Result<SpoolFile> Store::begin() {
  const auto spool = options_.data_dir / own_dir(options_, "spool");
  for (int attempt = 0; attempt < kNameAttempts; ++attempt) {
    GW_ASSIGN_OR_RETURN(std::string name, random_hex_name());
    auto path = spool / (name + std::string(kSpoolSuffix));
    // Taken before the file exists: every time stamp of the file is later than its ticket's.
    auto pending = pending_->add(PendingFiles::file_time_now());
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    if (fd < 0) {
      if (errno == EEXIST || errno == EINTR) continue;
      return errno_error(errno, "create spool file", path);
    }
    SpoolFile file(fd, std::move(path));
    file.pending_ = std::move(pending);
    file.early_writeback_ = options_.fsync;
    if (options_.encrypt) {
      file.keyring_ = keyring();
      if (!file.keyring_ || !file.keyring_->current) {
        return make_error(ErrorCode::kConfig,
                          "storage.encrypt is on but no encryption key is loaded");
      }
      // On an error `file` is destroyed, which removes the spool file.
      GW_ASSIGN_OR_RETURN(auto writer, EncryptedFileWriter::create(fd, file.path_, *file.keyring_));
      file.encrypted_ = std::make_unique<EncryptedFileWriter>(std::move(writer));
    }
    return file;
  }
  return make_error(ErrorCode::kInternal, "could not pick a unique spool file name");
}

Result<std::string> Store::commit(SpoolFile&& file) {
  GW_ASSIGN_OR_RETURN(PublishedFile published, publish(std::move(file)));
  auto synced = sync_data(published);
  if (synced.ok() && options_.fsync) synced = fsync_dir(absolute(published.path).parent_path());
  if (!synced.ok()) {
    ::unlink(absolute(published.path).c_str());
    return std::move(synced).error();
  }
  return published.path;
}

Status Store::sync_data(const PublishedFile& file) {
  if (options_.fsync && ::fdatasync(file.fd.get()) != 0) {
    return errno_error(errno, "fdatasync", absolute(file.path));
  }
  return core::ok_status();
}

Result<PublishedFile> Store::publish(SpoolFile&& file) {
  // Own the file here: on every early return its destructor removes the spool file.
  SpoolFile f(std::move(file));
  if (f.fd_ < 0 || f.path_.empty()) {
    return make_error(ErrorCode::kInternal, "commit of a spool file that is not open");
  }
  if (f.failed_) return make_error(ErrorCode::kIo, "commit of a spool file with a write error");
  // The last segment goes out before the rename, so the flushes that follow cover it.
  GW_RETURN_IF_ERROR(f.finish());

  // Renamed while still open: the descriptor serves the caller's fdatasync, and the destructor
  // of `f` (an early return) closes it.
  const auto storage = options_.data_dir / own_dir(options_, "storage");
  for (int attempt = 0; attempt < kNameAttempts; ++attempt) {
    GW_ASSIGN_OR_RETURN(std::string name, random_hex_name());
    const std::string shard = name.substr(0, 2);
    const auto dir = storage / shard;
    const std::string file_name = name + std::string(kStoredSuffix);
    const auto final_path = dir / file_name;
    auto renamed = rename_no_replace(f.path_, final_path);
    if (!renamed.ok() && !std::filesystem::is_directory(dir)) {
      // The shard directory was removed behind our back (create() makes all 256): remake it.
      bool created = false;
      GW_RETURN_IF_ERROR(make_dir(dir, created));
      if (created && options_.fsync) GW_RETURN_IF_ERROR(fsync_dir(storage));
      renamed = rename_no_replace(f.path_, final_path);
    }
    if (!renamed.ok()) return renamed.error();
    if (*renamed == RenameResult::kExists) continue;
    f.path_.clear();  // the spool entry is gone; the destructor must not touch it
    return PublishedFile{(own_dir(options_, "storage") / shard / file_name).string(),
                         core::UniqueFd(std::exchange(f.fd_, -1)), std::move(f.pending_)};
  }
  return make_error(ErrorCode::kInternal, "could not pick a unique storage file name");
}

Status Store::sync_filesystem(const PublishedFile& file) const {
  if (!options_.fsync) return core::ok_status();
  return storage::sync_filesystem(file.fd.get(), absolute(file.path));
}

Status Store::sync_filesystem() const {
  return storage::sync_filesystem(options_.data_dir / own_dir(options_, "storage"));
}

Result<bool> Store::check_stored(const std::string& relative_path, std::int64_t size_bytes,
                                 const std::string& digest) const {
  // A row naming a path outside storage/ names no file of ours: not a kept copy.
  const auto path = stored_file_path(options_.data_dir, relative_path);
  if (!path.ok()) return false;
  const auto keys = keyring();
  // A file encrypted with a key the keyring lacks (kConfig) proves nothing about the file: the
  // keys are wrong (a previous key removed too early), and the caller stops instead.
  GW_ASSIGN_OR_RETURN(const auto state, check_stored_file(*path, keys.get(), size_bytes, digest));
  return state == StoredState::kIntact;
}

Result<bool> Store::on_storage_filesystem(const std::filesystem::path& path) const {
  return same_filesystem(path, options_.data_dir / own_dir(options_, "storage"));
}

Status Store::remove(const std::string& relative_path) {
  GW_ASSIGN_OR_RETURN(const auto path, stored_file_path(options_.data_dir, relative_path));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error(errno, "remove", path);
  return core::ok_status();
}

std::filesystem::path Store::absolute(const std::string& relative_path) const {
  return options_.data_dir / relative_path;
}

Result<std::unique_ptr<ContentReader>> Store::open_content(
    const std::filesystem::path& path) const {
  const auto keys = keyring();
  return storage::open_content(path, keys.get());
}

void Store::set_keyring(std::shared_ptr<const crypto::Keyring> keyring) {
  std::lock_guard lock(keyring_mu_);
  keyring_ = std::move(keyring);
}

std::shared_ptr<const crypto::Keyring> Store::keyring() const {
  std::lock_guard lock(keyring_mu_);
  return keyring_;
}

Result<std::uint64_t> Store::free_bytes() const {
  const auto storage = options_.data_dir / "storage";
  struct statvfs vfs {};
  if (::statvfs(storage.c_str(), &vfs) != 0) return errno_error(errno, "statvfs", storage);
  return static_cast<std::uint64_t>(vfs.f_bavail) * static_cast<std::uint64_t>(vfs.f_frsize);
}

}  // namespace gw::storage
