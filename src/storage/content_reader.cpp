#include "storage/content_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/unique_fd.h"
#include "crypto/keyring.h"
#include "storage/content_digest.h"
#include "storage/encrypted_file.h"
#include "storage/file_ops.h"

namespace gw::storage {
namespace {

using core::ErrorCode;
using core::make_error;
using core::Result;

class PlainFileReader final : public ContentReader {
 public:
  PlainFileReader(core::UniqueFd fd, std::filesystem::path path, std::uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size) {}

  std::uint64_t size() const override { return size_; }

  Result<std::size_t> read(std::uint64_t offset, std::span<std::uint8_t> out) override {
    if (offset >= size_) return std::size_t{0};
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - offset));
    return core::pread_full(fd_.get(), out.first(want), offset, path_);
  }

 private:
  core::UniqueFd fd_;
  std::filesystem::path path_;
  std::uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<ContentReader>> plain_content(int fd, const std::filesystem::path& path) {
  core::UniqueFd owned(fd);
  struct stat st {};
  if (::fstat(owned.get(), &st) != 0) return errno_error(errno, "stat", path);
  return std::unique_ptr<ContentReader>(
      new PlainFileReader(std::move(owned), path, static_cast<std::uint64_t>(st.st_size)));
}

Result<std::unique_ptr<ContentReader>> open_content(const std::filesystem::path& path,
                                                    const crypto::Keyring* keyring) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return make_error(ErrorCode::kNotFound, "cannot open " + path.string() + ": no such file");
    }
    return errno_error(errno, "open", path);
  }
  std::array<std::uint8_t, kEncryptedMagic.size()> head{};
  GW_ASSIGN_OR_RETURN(const std::size_t n, core::pread_full(fd.get(), head, 0, path));
  // Stored Part 10 files start with the zero preamble the gateway writes, never with the magic.
  if (!is_encrypted({head.data(), n})) {
    return plain_content(fd.release(), path);
  }
  if (keyring == nullptr || (!keyring->current && !keyring->previous)) {
    return make_error(ErrorCode::kConfig,
                      "stored file is encrypted and no encryption key is configured");
  }
  auto reader = EncryptedFileReader::open(std::move(fd), path, *keyring);
  if (!reader.ok()) return std::move(reader).error();
  return std::unique_ptr<ContentReader>(std::move(reader).value());
}

Result<std::string> digest_content(ContentReader& reader) {
  ContentDigest digest;
  std::vector<std::uint8_t> buffer(1u << 20);
  for (std::uint64_t offset = 0;;) {
    GW_ASSIGN_OR_RETURN(std::size_t n, reader.read(offset, buffer));
    if (n == 0) break;
    digest.update(std::span<const std::uint8_t>(buffer.data(), n));
    offset += n;
  }
  return digest.text();
}

const char* to_string(StoredState state) {
  switch (state) {
    case StoredState::kIntact:
      return "intact";
    case StoredState::kMissing:
      return "missing";
    case StoredState::kWrongSize:
      return "wrong size";
    case StoredState::kChanged:
      return "content changed";
  }
  return "unknown";
}

Result<StoredState> check_stored_file(const std::filesystem::path& path,
                                      const crypto::Keyring* keyring, std::int64_t size_bytes,
                                      std::string_view digest, bool check_digest) {
  drop_cached(path);
  auto reader = open_content(path, keyring);
  if (!reader.ok()) {
    if (reader.error().code == ErrorCode::kNotFound) return StoredState::kMissing;
    // An encrypted file whose header fails authentication was altered.
    if (reader.error().code == ErrorCode::kDataLoss) return StoredState::kChanged;
    return std::move(reader).error();
  }
  if ((*reader)->size() != static_cast<std::uint64_t>(size_bytes)) return StoredState::kWrongSize;
  if (!check_digest || !digest.starts_with(kDigestPrefix)) return StoredState::kIntact;
  auto actual = digest_content(**reader);
  if (!actual.ok()) {
    if (actual.error().code == ErrorCode::kDataLoss) return StoredState::kChanged;
    // Removed between the open and the read cannot happen (the descriptor keeps it); any
    // other read error proves nothing.
    return std::move(actual).error();
  }
  return *actual == digest ? StoredState::kIntact : StoredState::kChanged;
}

}  // namespace gw::storage
