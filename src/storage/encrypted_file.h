#pragma once
/// Encrypted stored files (storage.encrypt, ADR 010 "Files").
///
/// Layout (integers big-endian):
///
///     offset  size
///     0       8    magic "DGWENC01"                      ┐
///     8       4    format version (1)                    │ immutable part: its SHA-256 is
///     12      4    segment size (65536)                  │ the "header digest"
///     16      8    nonce prefix (random per file)        ┘
///     24      64   key slot 0 ┐ u32 key version (0 = empty slot), then the file's data key
///     88      64   key slot 1 ┘ wrapped: 12-byte nonce ‖ 32-byte ciphertext ‖ 16-byte tag
///     152          segments
///
/// A key slot wraps the file's random 256-bit data key with AES-256-GCM under the `file-wrap`
/// subkey of one master key version (AAD = header digest ‖ u32 version). Segment n holds up to
/// 64 KiB of plaintext, AES-256-GCM under the data key, nonce = nonce prefix ‖ u32 n,
/// AAD = header digest ‖ u32 n ‖ u8 last, then its 16-byte tag. Every segment but the last is
/// full; an empty plaintext is one empty last segment. Reordered, dropped, truncated or appended
/// segments fail authentication. Rotation rewrites only a key slot (rewrap), never the data.

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "core/result.h"
#include "core/unique_fd.h"
#include "storage/content_reader.h"

namespace gw::crypto {
struct Keyring;
}

namespace gw::storage {

inline constexpr std::string_view kEncryptedMagic = "DGWENC01";
inline constexpr std::uint32_t kEncryptedFormatVersion = 1;
inline constexpr std::uint32_t kSegmentSize = 64 * 1024;
inline constexpr std::size_t kEncryptedHeaderSize = 152;
inline constexpr std::size_t kSegmentTagSize = 16;

/// Whether `head` (a file's first bytes) starts with the magic of an encrypted file.
bool is_encrypted(std::span<const std::uint8_t> head);

/// Writes an encrypted file through a file descriptor, segment by segment: memory is one
/// segment buffer whatever the file's size. Move-only.
class EncryptedFileWriter {
 public:
  /// Picks a random data key and nonce prefix and writes the header at the current offset of
  /// `fd` (a new, empty file; not owned) with the data key wrapped by keyring.current (which
  /// needs a registry version, not 0) in slot 0. `path` names the file in errors only.
  static core::Result<EncryptedFileWriter> create(int fd, const std::filesystem::path& path,
                                                  const crypto::Keyring& keyring);
  EncryptedFileWriter(EncryptedFileWriter&&) noexcept;
  EncryptedFileWriter& operator=(EncryptedFileWriter&&) noexcept;
  ~EncryptedFileWriter();

  /// Appends plaintext; full segments are encrypted and written as they fill. Errors as
  /// SpoolFile::write (kResourceExhausted for a full disk, else kIo); after one, every call fails.
  core::Status write(std::span<const std::uint8_t> plaintext);
  /// Encrypts and writes the last segment. No write() after it; finishing twice is a no-op.
  core::Status finish();
  bool finished() const;
  /// Bytes written to the file so far (header and whole segments).
  std::uint64_t bytes_written() const;

 private:
  struct State;
  explicit EncryptedFileWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

/// Random-access reader of an encrypted file: decrypts only the segments a read touches.
class EncryptedFileReader final : public ContentReader {
 public:
  /// Reads the header from `fd` (owned), unwraps the data key with whichever key of `keyring`
  /// a slot names (the current key first), and authenticates the last segment, so size() is
  /// trustworthy and truncation or appended bytes are found at once.
  /// kConfig when the keyring holds no key for either slot (the message names the versions the
  /// file needs); kDataLoss when the header, a key slot or the last segment fails
  /// authentication ("stored file is corrupt or was altered: …"); kIo for read errors.
  static core::Result<std::unique_ptr<EncryptedFileReader>> open(core::UniqueFd fd,
                                                                 const std::filesystem::path& path,
                                                                 const crypto::Keyring& keyring);
  ~EncryptedFileReader() override;

  std::uint64_t size() const override;
  core::Result<std::size_t> read(std::uint64_t offset, std::span<std::uint8_t> out) override;
  /// The key versions in slots 0 and 1 (0 = empty).
  std::array<std::uint32_t, 2> slot_versions() const;

 private:
  struct State;
  explicit EncryptedFileReader(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

/// Key rotation for one file: when no slot holds a wrap by keyring.current that unwraps, the
/// data key (unwrapped by the slot whose key the keyring has, the current key preferred) is
/// wrapped by keyring.current into the *other* slot, written with one pwrite and fdatasync'ed
/// (if `fsync`). Each slot write is independent: a crash leaves the old slot valid. Returns
/// whether the file changed. Errors as EncryptedFileReader::open; kInvalidArgument for a file
/// that is not encrypted.
core::Result<bool> rewrap(const std::filesystem::path& path, const crypto::Keyring& keyring,
                          bool fsync);

}  // namespace gw::storage
