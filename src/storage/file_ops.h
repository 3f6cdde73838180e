#pragma once
/// Small POSIX file-system helpers shared by the store and its directory syncer.

#include <filesystem>
#include <string_view>

#include "core/result.h"

namespace gw::storage {

/// Maps an errno to an Error: a full disk (or quota, or file-size limit) and running out of file
/// descriptors or memory are kResourceExhausted, so the SCP answers 0xA700 and the forwarder
/// tries again later; everything else is kIo.
core::Error errno_error(int err, std::string_view what, const std::filesystem::path& path);

/// fsync of a directory, so that entries created or renamed in it survive a crash.
core::Status fsync_dir(const std::filesystem::path& dir);

/// syncfs(2) of the file system holding `path`: every file written on it (data, metadata,
/// directory entries) reaches stable storage, with one device cache flush. Since Linux 5.8 it
/// fails on a write-back error of any file there that happened after `path` was opened here,
/// or earlier if nobody has been told of it yet.
core::Status sync_filesystem(const std::filesystem::path& path);
/// The same through an open descriptor (`path` for messages): it reports every write-back
/// error on the file system since `fd` was opened, even one another caller was already told.
core::Status sync_filesystem(int fd, const std::filesystem::path& path);

/// Drops the file's clean pages from the page cache, so that the next read comes from the disk
/// (a check after a crash reads what survived, not what the cache still holds). Best effort.
void drop_cached(const std::filesystem::path& path);

/// Whether `a` and `b` (existing paths) are on the same mounted file system (st_dev).
core::Result<bool> same_filesystem(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace gw::storage
