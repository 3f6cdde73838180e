#include "storage/file_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace gw::storage {

namespace {

bool is_disk_full(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }
/// Out of file descriptors or kernel memory: the machine's resources, not the file's fault.
bool is_out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOMEM; }

}  // namespace

core::Error errno_error(int err, std::string_view what, const std::filesystem::path& path) {
  std::string detail =
      std::string(what) + " " + path.string() + ": " + std::generic_category().message(err);
  if (is_disk_full(err)) {
    return core::make_error(core::ErrorCode::kResourceExhausted, "disk full: " + detail);
  }
  if (is_out_of_resources(err)) {
    return core::make_error(core::ErrorCode::kResourceExhausted, "out of resources: " + detail);
  }
  return core::make_error(core::ErrorCode::kIo, std::move(detail));
}

core::Status fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return errno_error(err, "fsync directory", dir);
  return core::ok_status();
}

core::Status sync_filesystem(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "open", path);
  auto synced = sync_filesystem(fd, path);
  ::close(fd);
  return synced;
}

core::Status sync_filesystem(int fd, const std::filesystem::path& path) {
  if (::syncfs(fd) != 0) return errno_error(errno, "syncfs", path);
  return core::ok_status();
}

void drop_cached(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

core::Result<bool> same_filesystem(const std::filesystem::path& a, const std::filesystem::path& b) {
  struct stat sa {};
  struct stat sb {};
  if (::stat(a.c_str(), &sa) != 0) return errno_error(errno, "stat", a);
  if (::stat(b.c_str(), &sb) != 0) return errno_error(errno, "stat", b);
  return sa.st_dev == sb.st_dev;
}

}  // namespace gw::storage
