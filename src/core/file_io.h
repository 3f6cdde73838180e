#pragma once
/// Positional reads that do not stop half-way: the one pread loop every reader of files uses
/// (the DICOM layer's plain file source, the store's plain and encrypted readers).

#include <cstdint>
#include <filesystem>
#include <span>

#include "core/result.h"

namespace gw::core {

/// Reads at `offset` until `out` is full or the file ends, retrying short reads and EINTR.
/// Returns the number of bytes read: less than out.size() only at the end of the file (0 at or
/// past it). On failure kIo, "read <path>: <reason>"; none of `out` may then be used.
Result<std::size_t> pread_full(int fd, std::span<std::uint8_t> out, std::uint64_t offset,
                               const std::filesystem::path& path);

}  // namespace gw::core
