#pragma once
/// Writes a Deflated Explicit VR Little Endian Part 10 file by hand, streaming: its large values
/// are never in memory, so a test measures only what the code under test holds, and it can
/// write what DCMTK would not (values declared longer than written, millions of empty items).
/// Header-only; the test target links zlib (ZLIB::ZLIB).

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "dicom/uids.h"

namespace gw::test {

class DeflatedWriter {
 public:
  /// `level`: zlib's compression level (6 is zlib's and DCMTK's default).
  DeflatedWriter(const std::filesystem::path& path, const std::string& sop_class_uid,
                 const std::string& sop_instance_uid, int level = 1)
      : out_(path, std::ios::binary) {
    dicom::FileMeta meta;
    meta.media_storage_sop_class_uid = sop_class_uid;
    meta.media_storage_sop_instance_uid = sop_instance_uid;
    meta.transfer_syntax_uid = std::string(dicom::kDeflatedExplicitVrLittleEndian);
    meta.implementation_class_uid = "1.2.826.0.1.3680043.2.1.99";
    const auto head = dicom::encode_file_meta(meta);
    out_.write(reinterpret_cast<const char*>(head.data()),
               static_cast<std::streamsize>(head.size()));
    z_.zalloc = Z_NULL;
    z_.zfree = Z_NULL;
    z_.opaque = Z_NULL;
    ok_ = deflateInit2(&z_, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }

  /// A value with a 2-byte length (UI, LO, LT, CS...); UI values are padded with NUL, others
  /// with a space, to even length.
  void short_element(std::uint32_t tag, const char* vr, std::string value) {
    if (value.size() % 2 == 1) value.push_back(std::string(vr) == "UI" ? '\0' : ' ');
    header(tag, vr);
    le(static_cast<std::uint16_t>(value.size()), 2);
    put(value.data(), value.size());
  }

  /// A value with a 4-byte length (`vr` OB, OW, UN, UT...) declared `length` bytes long, of
  /// which the first `written` (all by default) are written, `chunk(buffer)` filling each
  /// piece.
  void long_element(std::uint32_t tag, const char* vr, std::uint32_t length,
                    const std::function<void(std::vector<char>&)>& chunk,
                    std::uint32_t written = UINT32_MAX) {
    header(tag, vr);
    le(0, 2);
    le(length, 4);
    std::vector<char> buffer;
    written = std::min(written, length);
    for (std::uint32_t done = 0; done < written;) {
      buffer.resize(std::min<std::uint32_t>(written - done, 1 << 20));
      chunk(buffer);
      put(buffer.data(), buffer.size());
      done += static_cast<std::uint32_t>(buffer.size());
    }
  }

  /// A sequence of undefined length holding `items` empty items, then its delimiter.
  void empty_items(std::uint32_t tag, std::uint64_t items) {
    header(tag, "SQ");
    le(0, 2);
    le(0xFFFFFFFFu, 4);
    static constexpr char kItem[8] = {'\xFE', '\xFF', '\x00', '\xE0', 0, 0, 0, 0};
    std::string block;
    for (int i = 0; i < 65536; ++i) block.append(kItem, sizeof(kItem));
    for (std::uint64_t done = 0; done < items;) {
      const std::uint64_t n = std::min<std::uint64_t>(items - done, 65536);
      put(block.data(), static_cast<std::size_t>(n * sizeof(kItem)));
      done += n;
    }
    static constexpr char kEnd[8] = {'\xFE', '\xFF', '\xDD', '\xE0', 0, 0, 0, 0};
    put(kEnd, sizeof(kEnd));
  }

  /// Bytes as they are (elements the caller encoded).
  void raw(const std::vector<std::uint8_t>& bytes) {
    put(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

  bool finish() {
    deflate_some(nullptr, 0, Z_FINISH);
    deflateEnd(&z_);
    out_.close();
    return ok_ && out_.good();
  }

 private:
  void header(std::uint32_t tag, const char* vr) {
    le(tag >> 16, 2);
    le(tag & 0xFFFF, 2);
    put(vr, 2);
  }
  void le(std::uint32_t value, int bytes) {
    char b[4];
    for (int i = 0; i < bytes; ++i) b[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
    put(b, static_cast<std::size_t>(bytes));
  }
  void put(const char* data, std::size_t size) { deflate_some(data, size, Z_NO_FLUSH); }
  void deflate_some(const char* data, std::size_t size, int flush) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z_.avail_in = static_cast<uInt>(size);
    for (int rounds = 0; rounds < 1'000'000; ++rounds) {
      char out[64 * 1024];
      z_.next_out = reinterpret_cast<Bytef*>(out);
      z_.avail_out = sizeof(out);
      const int rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) ok_ = false;
      out_.write(out, static_cast<std::streamsize>(sizeof(out) - z_.avail_out));
      if (flush == Z_FINISH ? rc == Z_STREAM_END : z_.avail_out != 0) return;
    }
    ok_ = false;
  }

  std::ofstream out_;
  z_stream z_{};
  bool ok_ = false;
};

}  // namespace gw::test
