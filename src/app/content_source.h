#pragma once
/// The store's content readers (plain or encrypted files, ADR 010) as the DICOM layer's byte
/// source: how the forwarder and the ingest parser read stored and spool files; and back.

#include <memory>
#include <utility>

#include "dicom/byte_source.h"
#include "storage/store.h"

namespace gw::app {

class ContentByteSource final : public dicom::ByteSource {
 public:
  explicit ContentByteSource(std::unique_ptr<storage::ContentReader> reader)
      : reader_(std::move(reader)) {}
  std::uint64_t size() const override { return reader_->size(); }
  core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
    return reader_->read(offset, out);
  }

 private:
  std::unique_ptr<storage::ContentReader> reader_;
};

/// The other way round: a byte source (a checked one, queue::check_digest) as a content reader.
class SourceContent final : public storage::ContentReader {
 public:
  explicit SourceContent(std::unique_ptr<dicom::ByteSource> source) : source_(std::move(source)) {}
  std::uint64_t size() const override { return source_->size(); }
  core::Result<std::size_t> read(std::uint64_t offset, std::span<std::uint8_t> out) override {
    return source_->read_at(offset, out);
  }

 private:
  std::unique_ptr<dicom::ByteSource> source_;
};

/// Opens stored files (absolute paths) through `store` with its current keys. `store` must
/// outlive the opener.
inline dicom::SourceOpener stored_file_opener(const storage::Store& store) {
  return
      [&store](
          const std::filesystem::path& path) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
        auto reader = store.open_content(path);
        if (!reader.ok()) return std::move(reader).error();
        return std::unique_ptr<dicom::ByteSource>(
            std::make_unique<ContentByteSource>(std::move(reader).value()));
      };
}

}  // namespace gw::app
