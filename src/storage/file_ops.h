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
/// directory entries) reaches stable storage, with one device cache flush. Linux reports
/// write-back errors of any file on it since 5.8.
core::Status sync_filesystem(const std::filesystem::path& path);

/// Whether `a` and `b` (existing paths) are on the same mounted file system (st_dev).
core::Result<bool> same_filesystem(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace gw::storage
