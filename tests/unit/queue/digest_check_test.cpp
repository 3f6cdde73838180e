// check_digest (send_batch.h): a stored file's bytes are hashed as the forwarder reads them and
// the read that completes the file fails (kDataLoss) when they do not match the digest recorded
// at ingest, so its last bytes are never handed to the sender.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "dicom/uids.h"
#include "queue/send_batch.h"
#include "storage/content_digest.h"
#include "support/temp_dir.h"

namespace gw::queue {
namespace {

namespace fs = std::filesystem;

/// Bytes in memory, counting what was read from it.
class MemorySource final : public dicom::ByteSource {
 public:
  explicit MemorySource(std::vector<std::uint8_t> bytes, std::uint64_t* bytes_read = nullptr)
      : bytes_(std::move(bytes)), bytes_read_(bytes_read) {}
  std::uint64_t size() const override { return bytes_.size(); }
  core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
    if (offset >= bytes_.size()) return std::size_t{0};
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size() - offset));
    std::copy_n(bytes_.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    if (bytes_read_ != nullptr) *bytes_read_ += n;
    return n;
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::uint64_t* bytes_read_;
};

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> bytes(n);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::uint8_t>((i * 131 + 7) % 251);
  return bytes;
}

std::string digest_of(const std::vector<std::uint8_t>& bytes) {
  return storage::ContentDigest::of(bytes);
}

/// Reads [offset, offset + n) from `source`; the result of that one read_at.
core::Result<std::size_t> read(dicom::ByteSource& source, std::uint64_t offset, std::size_t n) {
  std::vector<std::uint8_t> buf(n);
  return source.read_at(offset, buf);
}

/// Reads the whole source in order in `chunk`-sized reads from `from`; the first error, if any.
core::Status read_all(dicom::ByteSource& source, std::uint64_t from, std::size_t chunk) {
  std::vector<std::uint8_t> buf(chunk);
  for (std::uint64_t offset = from; offset < source.size();) {
    auto n = source.read_at(offset, buf);
    if (!n.ok()) return std::move(n).error();
    if (*n == 0) return core::make_error(core::ErrorCode::kIo, "short");
    offset += *n;
  }
  return core::ok_status();
}

constexpr std::size_t kSize = 300 * 1000 + 17;

TEST(CheckDigest, AMatchingFileReadsAsItIs) {
  const auto bytes = pattern(kSize);
  auto source = check_digest(std::make_unique<MemorySource>(bytes), digest_of(bytes));
  ASSERT_EQ(source->size(), kSize);
  std::vector<std::uint8_t> got(kSize);
  for (std::uint64_t offset = 0; offset < kSize;) {
    auto n = source->read_at(
        offset, std::span(got.data() + offset, std::min<std::size_t>(4096, kSize - offset)));
    ASSERT_TRUE(n.ok()) << n.error().message;
    offset += *n;
  }
  EXPECT_EQ(got, bytes);
  // Read again (a second pass over checked bytes) and past the end: as before.
  EXPECT_TRUE(read_all(*source, 0, 65536).ok());
  auto end = read(*source, kSize, 10);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, 0u);
}

TEST(CheckDigest, OneChangedByteFailsTheReadThatCompletesTheFileOnly) {
  auto bytes = pattern(kSize);
  const auto digest = digest_of(bytes);
  bytes[kSize / 2] ^= 0x01;  // rotted on disk, same size
  auto source = check_digest(std::make_unique<MemorySource>(bytes), digest);
  // Everything before the last read passes: the mismatch cannot be known before the end.
  ASSERT_TRUE(read(*source, 0, kSize - 100).ok());
  auto last = read(*source, kSize - 100, 100);
  ASSERT_FALSE(last.ok()) << "the last bytes were handed on";
  EXPECT_EQ(last.error().code, core::ErrorCode::kDataLoss);
  EXPECT_EQ(last.error().message, kDigestMismatch);
  EXPECT_TRUE(is_digest_mismatch(last.error()));
  // Every later read fails too, wherever it is.
  EXPECT_FALSE(read(*source, 0, 10).ok());
  EXPECT_FALSE(read(*source, kSize - 100, 100).ok());
}

TEST(CheckDigest, AnUppercaseDigestIsTheSame) {
  const auto bytes = pattern(1000);
  auto digest = digest_of(bytes);
  for (std::size_t i = storage::kDigestPrefix.size(); i < digest.size(); ++i) {
    digest[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(digest[i])));
  }
  auto source = check_digest(std::make_unique<MemorySource>(bytes), digest);
  EXPECT_TRUE(read_all(*source, 0, 100).ok());
}

// The send starts at the data set, after another reader read the header: the checker reads
// the gap before it itself (once), then hashes the send's reads.
TEST(CheckDigest, AGapBeforeTheFirstReadIsReadAndHashed) {
  const auto bytes = pattern(kSize);
  std::uint64_t bytes_read = 0;
  auto source = check_digest(std::make_unique<MemorySource>(bytes, &bytes_read), digest_of(bytes));
  EXPECT_TRUE(read_all(*source, 300, 65536).ok());
  EXPECT_EQ(bytes_read, kSize) << "each byte read once";

  // The same with a changed byte inside the gap: caught at the end all the same.
  auto changed = bytes;
  changed[10] ^= 0x80;
  auto bad = check_digest(std::make_unique<MemorySource>(changed), digest_of(bytes));
  auto status = read_all(*bad, 300, 65536);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(is_digest_mismatch(status.error()));
}

// A gap in the middle (reads that skip ahead) and a read past the end that completes the file.
TEST(CheckDigest, GapsAnywhereAreFilledInOrder) {
  const auto bytes = pattern(kSize);
  auto source = check_digest(std::make_unique<MemorySource>(bytes), digest_of(bytes));
  ASSERT_TRUE(read(*source, 0, 1000).ok());
  ASSERT_TRUE(read(*source, 5000, 1000).ok());     // [1000, 5000) read by the checker
  ASSERT_TRUE(read(*source, 200'000, 1000).ok());  // and [6000, 200000)
  auto end = read(*source, kSize, 16);             // the rest, then nothing
  ASSERT_TRUE(end.ok()) << end.error().message;
  EXPECT_EQ(*end, 0u);

  auto changed = bytes;
  changed[kSize - 1] ^= 0x01;
  auto bad = check_digest(std::make_unique<MemorySource>(changed), digest_of(bytes));
  ASSERT_TRUE(read(*bad, 0, 1000).ok());
  auto past = read(*bad, kSize + 5, 16);
  ASSERT_FALSE(past.ok()) << "a read whose gap completes the file compares too";
  EXPECT_TRUE(is_digest_mismatch(past.error()));
}

// The header read (64 KiB from 0), then the send from the data set on: the overlap is hashed
// once (a second hashing of it would change the digest and fail a good file).
TEST(CheckDigest, OverlappingReadsHashOnlyTheNewPart) {
  const auto bytes = pattern(kSize);
  std::uint64_t bytes_read = 0;
  auto source = check_digest(std::make_unique<MemorySource>(bytes, &bytes_read), digest_of(bytes));
  ASSERT_TRUE(read(*source, 0, 64 * 1024).ok());
  EXPECT_TRUE(read_all(*source, 200, 1 << 20).ok());
  EXPECT_EQ(bytes_read, 64 * 1024 + kSize - 200) << "no read of its own";
  // A resend on the same reader reads everything again: still fine.
  EXPECT_TRUE(read_all(*source, 200, 4096).ok());
}

// The whole of a small file read at once (the header read of a file under 64 KiB): that read
// is the one that fails.
TEST(CheckDigest, ASmallFileFailsItsOnlyRead) {
  auto bytes = pattern(2000);
  const auto digest = digest_of(bytes);
  bytes[3] ^= 0x04;
  auto source = check_digest(std::make_unique<MemorySource>(bytes), digest);
  auto n = read(*source, 0, 2000);
  ASSERT_FALSE(n.ok());
  EXPECT_TRUE(is_digest_mismatch(n.error()));
}

// Rows from before ADR 008 ("sha256:…"), rows without a digest and anything malformed are not
// checked: the source is returned as it is and reads whatever is there.
TEST(CheckDigest, LegacyOrMissingDigestsAreNotChecked) {
  auto bytes = pattern(5000);
  for (const std::string& digest :
       {std::string(""), std::string("sha256:") + std::string(64, 'a'), std::string("xxh128:"),
        std::string("xxh128:xyz"), std::string("xxh128:") + std::string(31, '0'),
        std::string("XXH128:") + std::string(32, '0')}) {
    auto inner = std::make_unique<MemorySource>(bytes);
    const dicom::ByteSource* raw = inner.get();
    auto source = check_digest(std::move(inner), digest);
    EXPECT_EQ(source.get(), raw) << "wrapped for \"" << digest << "\"";
    EXPECT_TRUE(read_all(*source, 0, 1000).ok());
  }
  // The opener form hands back the opener itself.
  int calls = 0;
  dicom::SourceOpener open =
      [&calls, bytes](const fs::path&) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
    ++calls;
    return std::unique_ptr<dicom::ByteSource>(std::make_unique<MemorySource>(bytes));
  };
  auto same = check_digests(open, "sha256:" + std::string(64, 'b'));
  auto source = same("x");
  ASSERT_TRUE(source.ok());
  EXPECT_TRUE(read_all(**source, 0, 1000).ok());
  EXPECT_EQ(calls, 1);
}

TEST(CheckDigest, AnotherErrorIsNotAMismatch) {
  EXPECT_FALSE(is_digest_mismatch(
      core::make_error(core::ErrorCode::kDataLoss, "segment 3 failed authentication")));
  EXPECT_FALSE(
      is_digest_mismatch(core::make_error(core::ErrorCode::kIo, std::string(kDigestMismatch))));
  EXPECT_TRUE(is_digest_mismatch(core::make_error(
      core::ErrorCode::kDataLoss, "/data/storage/ab/cd: " + std::string(kDigestMismatch))));
}

/// A Part 10 file (File Meta, then `data_set_bytes` bytes of an OB element's value) at `path`.
std::vector<std::uint8_t> write_part10(const fs::path& path, std::size_t data_set_bytes,
                                       const std::string& uid) {
  dicom::FileMeta meta;
  meta.media_storage_sop_class_uid = "1.2.840.10008.5.1.4.1.1.7";
  meta.media_storage_sop_instance_uid = uid;
  meta.transfer_syntax_uid = std::string(dicom::kExplicitVrLittleEndian);
  meta.implementation_class_uid = std::string(dicom::kImplementationClassUid);
  auto bytes = dicom::encode_file_meta(meta);
  const auto length = static_cast<std::uint32_t>(data_set_bytes);
  bytes.insert(bytes.end(), {0xe0, 0x7f, 0x10, 0x00, 'O', 'B', 0, 0});  // (7FE0,0010) OB
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
  const auto value = pattern(data_set_bytes);
  bytes.insert(bytes.end(), value.begin(), value.end());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

// Through prepare_batch, as the forwarder uses it: the kept reader (header read, then send)
// and a resend (opened again, reading from the data set on) are both checked; a small file
// that changed fails its header read (nothing is sent), a large one its last read.
TEST(CheckDigest, PrepareBatchChecksTheHeaderReadAndTheSend) {
  test::TempDir tmp{"gw-digest-check-test"};
  fs::create_directories(tmp.path() / "storage");
  std::vector<index::OutboxItem> rows;
  const std::vector<std::size_t> sizes = {1000, 200'000, 1000, 200'000};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    index::OutboxItem row;
    row.id = static_cast<std::int64_t>(i + 1);
    row.storage_path = "storage/f" + std::to_string(i) + ".dcm";
    auto bytes =
        write_part10(tmp.path() / row.storage_path, sizes[i], "1.2.3." + std::to_string(i));
    row.digest = digest_of(bytes);
    if (i >= 2) {  // rotted on disk since (same size)
      bytes[bytes.size() - sizes[i] / 2] ^= 0x10;
      std::ofstream(tmp.path() / row.storage_path, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
    }
    rows.push_back(row);
  }
  auto prepared = prepare_batch(tmp.path(), rows, {});
  ASSERT_EQ(prepared.size(), 4u);
  ASSERT_TRUE(prepared[0].ok()) << prepared[0].error().message;
  ASSERT_TRUE(prepared[1].ok()) << prepared[1].error().message;
  ASSERT_FALSE(prepared[2].ok()) << "a small changed file is read whole with its header";
  EXPECT_TRUE(is_digest_mismatch(prepared[2].error())) << prepared[2].error().message;
  ASSERT_TRUE(prepared[3].ok()) << "only its first 64 KiB were read";

  for (const std::size_t i : {0u, 1u, 3u}) {
    // The send (the kept reader), then a resend (a new reader): from the data set on.
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto source = prepared[i]->open(prepared[i]->path);
      ASSERT_TRUE(source.ok()) << source.error().message;
      auto status = read_all(**source, prepared[i]->header.data_set_offset, 16 * 1024);
      if (i == 3) {
        ASSERT_FALSE(status.ok()) << "attempt " << attempt;
        EXPECT_TRUE(is_digest_mismatch(status.error()));
      } else {
        EXPECT_TRUE(status.ok()) << i << ", attempt " << attempt << ": " << status.error().message;
      }
    }
  }
}

}  // namespace
}  // namespace gw::queue
