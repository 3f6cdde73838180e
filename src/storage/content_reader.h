#pragma once
/// Reading a stored file's content (the plaintext Part 10 bytes), whether it was stored plain or
/// encrypted (storage.encrypt, ADR 010). Every reader of stored files goes through
/// open_content(): files stored before encryption was turned on (or after it was turned off)
/// keep reading, and encrypted data is authenticated before any of it is handed out.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gw::crypto {
struct Keyring;
}

namespace gw::storage {

/// Random access to a file's plaintext. Not thread-safe (an encrypted reader keeps the last
/// segment it decrypted): one reader per user.
class ContentReader {
 public:
  virtual ~ContentReader() = default;
  /// The plaintext size in bytes (what the index's size_bytes describes).
  virtual std::uint64_t size() const = 0;
  /// Copies up to out.size() bytes from `offset`; fewer only at the end (0 at or past it).
  /// kDataLoss when encrypted data failed authentication (nothing of that segment is in `out`);
  /// kIo for a read error.
  virtual core::Result<std::size_t> read(std::uint64_t offset, std::span<std::uint8_t> out) = 0;
};

/// Opens `path` (absolute): an encrypted file (it starts with the magic "DGWENC01") through
/// `keyring` (null or empty: kConfig for an encrypted file), any other file as plain bytes.
/// kNotFound when the file does not exist; the errors of EncryptedFileReader::open otherwise.
core::Result<std::unique_ptr<ContentReader>> open_content(const std::filesystem::path& path,
                                                          const crypto::Keyring* keyring);

/// The content digest (storage/content_digest.h) of everything `reader` holds, read from the
/// start; the errors of ContentReader::read.
core::Result<std::string> digest_content(ContentReader& reader);

/// What a stored file holds, compared with its index row.
enum class StoredState {
  kIntact,     ///< there, with the row's size (and digest, when checked)
  kMissing,    ///< no file at the path
  kWrongSize,  ///< a different plaintext size: cut short, or another file
  kChanged,    ///< same size, other content (digest mismatch, or encrypted data that fails
               ///< authentication): bit rot, a bad restore, an edit
};

/// "intact", "missing", "wrong size", "content changed".
const char* to_string(StoredState state);

/// Checks the stored file at `path` (absolute) against its row's plaintext `size_bytes` and
/// `digest`, reading it from the disk rather than the page cache. The digest is checked only
/// when it is an XXH3 one ("xxh128:…"; rows from before ADR 008 carry "sha256:…") and
/// `check_digest` is set; otherwise the size alone decides. An error when the file cannot be
/// read for another reason (permissions, I/O, no configured key for its key version), which
/// proves nothing about the file.
core::Result<StoredState> check_stored_file(const std::filesystem::path& path,
                                            const crypto::Keyring* keyring, std::int64_t size_bytes,
                                            std::string_view digest, bool check_digest = true);

/// A plain file, read with pread on `fd` (owned).
core::Result<std::unique_ptr<ContentReader>> plain_content(int fd,
                                                           const std::filesystem::path& path);

}  // namespace gw::storage
