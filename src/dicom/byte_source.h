#pragma once
/// Where the DICOM layer reads a Part 10 file from: random access to its bytes. A plain file
/// here; the gateway's stored files (which may be encrypted, ADR 010) come through an adapter
/// of the store's content reader, so the forwarder never reads stored bytes any other way.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>

#include "core/result.h"

namespace gw::dicom {

/// Not thread-safe: one user at a time.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Size of the content in bytes.
  virtual std::uint64_t size() const = 0;
  /// Copies up to out.size() bytes from `offset`; fewer only at the end (0 at or past it).
  /// An error means none of the bytes may be used (kDataLoss: stored data failed
  /// authentication).
  virtual core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) = 0;
};

/// Opens the file at a path as a ByteSource (for SendItem: opened when it is sent).
using SourceOpener =
    std::function<core::Result<std::unique_ptr<ByteSource>>(const std::filesystem::path&)>;

/// A plain file. kNotFound when it does not exist, kIo for other failures.
core::Result<std::unique_ptr<ByteSource>> open_file_source(const std::filesystem::path& path);

}  // namespace gw::dicom
