#include "storage/encrypted_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/file_io.h"
#include "crypto/keyring.h"
#include "storage/file_ops.h"

namespace gw::storage {
namespace {

using core::ErrorCode;
using core::make_error;
using core::Result;
using core::Status;

constexpr std::size_t kImmutableSize = 24;  ///< magic, format version, segment size, prefix
constexpr std::size_t kPrefixOffset = 16;
constexpr std::size_t kPrefixSize = 8;
constexpr std::size_t kSlotSize = 64;
constexpr std::array<std::size_t, 2> kSlotOffset = {24, 88};
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kKeySize = 32;
constexpr std::size_t kTagSize = kSegmentTagSize;
/// Bounds on a header's segment size, so a damaged header cannot ask for a huge buffer.
constexpr std::uint32_t kMinSegmentSize = 4096;
constexpr std::uint32_t kMaxSegmentSize = 16u << 20;

static_assert(kSlotOffset[1] + kSlotSize == kEncryptedHeaderSize);
static_assert(kEncryptedHeaderSize < 512);

using Digest = std::array<std::uint8_t, 32>;
using Prefix = std::array<std::uint8_t, kPrefixSize>;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

/// A 256-bit key wiped when it goes out of scope.
struct SecretKey {
  std::array<std::uint8_t, kKeySize> bytes{};
  SecretKey() = default;
  explicit SecretKey(const std::array<std::uint8_t, kKeySize>& k) : bytes(k) {}
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  ~SecretKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

void put_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

core::Error corrupt(const std::string& what) {
  return make_error(ErrorCode::kDataLoss, "stored file is corrupt or was altered: " + what);
}

core::Error crypto_failure(std::string_view what) {
  return make_error(ErrorCode::kInternal, "OpenSSL " + std::string(what) + " failed");
}

Result<Digest> header_digest(const std::uint8_t* header) {
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(header, kImmutableSize, d.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != d.size()) {
    return crypto_failure("SHA-256");
  }
  return d;
}

/// AAD of a key slot: header digest ‖ u32 key version.
std::array<std::uint8_t, 36> slot_aad(const Digest& digest, std::uint32_t version) {
  std::array<std::uint8_t, 36> aad{};
  std::memcpy(aad.data(), digest.data(), digest.size());
  put_u32(aad.data() + 32, version);
  return aad;
}

/// AAD of a segment: header digest ‖ u32 segment number ‖ u8 last.
std::array<std::uint8_t, 37> segment_aad(const Digest& digest, std::uint32_t segment, bool last) {
  std::array<std::uint8_t, 37> aad{};
  std::memcpy(aad.data(), digest.data(), digest.size());
  put_u32(aad.data() + 32, segment);
  aad[36] = last ? 1 : 0;
  return aad;
}

std::array<std::uint8_t, kNonceSize> segment_nonce(const Prefix& prefix, std::uint32_t segment) {
  std::array<std::uint8_t, kNonceSize> nonce{};
  std::memcpy(nonce.data(), prefix.data(), prefix.size());
  put_u32(nonce.data() + kPrefixSize, segment);
  return nonce;
}

/// A context keyed once (AES-256-GCM); each message then sets only its nonce.
Result<CipherCtx> keyed_context(const std::uint8_t* key, bool encrypt) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return crypto_failure("EVP_CIPHER_CTX_new");
  const int ok = encrypt ? EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nullptr)
                         : EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, nullptr);
  if (ok != 1) return crypto_failure("AES-256-GCM init");
  return ctx;
}

/// Encrypts `data` in place and writes the tag. False on an OpenSSL failure.
bool seal(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> nonce,
          std::span<const std::uint8_t> aad, std::span<std::uint8_t> data, std::uint8_t* tag) {
  int len = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1) return false;
  if (EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!data.empty() &&
      (EVP_EncryptUpdate(ctx, data.data(), &len, data.data(), static_cast<int>(data.size())) != 1 ||
       static_cast<std::size_t>(len) != data.size())) {
    return false;
  }
  if (EVP_EncryptFinal_ex(ctx, data.data() + data.size(), &len) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), tag) == 1;
}

/// Decrypts `data` in place and checks the tag. False when authentication fails: the caller
/// must then wipe `data` (it holds unauthenticated plaintext).
bool open_sealed(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> nonce,
                 std::span<const std::uint8_t> aad, std::span<std::uint8_t> data,
                 const std::uint8_t* tag) {
  int len = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1) return false;
  if (EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!data.empty() &&
      (EVP_DecryptUpdate(ctx, data.data(), &len, data.data(), static_cast<int>(data.size())) != 1 ||
       static_cast<std::size_t>(len) != data.size())) {
    return false;
  }
  std::array<std::uint8_t, kTagSize> t{};
  std::memcpy(t.data(), tag, t.size());
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(t.size()), t.data()) != 1) {
    return false;
  }
  return EVP_DecryptFinal_ex(ctx, data.data() + data.size(), &len) == 1;
}

/// Writes a key slot: `version`, a fresh nonce, the data key sealed by that version's
/// file-wrap subkey.
Status fill_slot(std::uint8_t* slot, const crypto::MasterKey& key, const Digest& digest,
                 const SecretKey& data_key) {
  const SecretKey wrap_key(key.derive(crypto::kFileWrap));
  GW_ASSIGN_OR_RETURN(CipherCtx ctx, keyed_context(wrap_key.bytes.data(), /*encrypt=*/true));
  put_u32(slot, key.version);
  std::uint8_t* nonce = slot + 4;
  std::uint8_t* wrapped = nonce + kNonceSize;
  if (RAND_bytes(nonce, static_cast<int>(kNonceSize)) != 1) return crypto_failure("RAND_bytes");
  std::memcpy(wrapped, data_key.bytes.data(), kKeySize);
  const auto aad = slot_aad(digest, key.version);
  if (!seal(ctx.get(), {nonce, kNonceSize}, aad, {wrapped, kKeySize}, wrapped + kKeySize)) {
    OPENSSL_cleanse(wrapped, kKeySize);
    return crypto_failure("key wrap");
  }
  return core::ok_status();
}

/// The data key from `slot` if `key` unwraps it; nullopt when authentication fails.
Result<std::optional<std::array<std::uint8_t, kKeySize>>> unwrap_slot(const std::uint8_t* slot,
                                                                      const crypto::MasterKey& key,
                                                                      const Digest& digest) {
  const SecretKey wrap_key(key.derive(crypto::kFileWrap));
  GW_ASSIGN_OR_RETURN(CipherCtx ctx, keyed_context(wrap_key.bytes.data(), /*encrypt=*/false));
  const std::uint32_t version = get_u32(slot);
  const std::uint8_t* nonce = slot + 4;
  const std::uint8_t* wrapped = nonce + kNonceSize;
  std::array<std::uint8_t, kKeySize> out{};
  std::memcpy(out.data(), wrapped, kKeySize);
  const auto aad = slot_aad(digest, version);
  if (!open_sealed(ctx.get(), {nonce, kNonceSize}, aad, out, wrapped + kKeySize)) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::optional<std::array<std::uint8_t, kKeySize>>();
  }
  return std::optional(out);
}

/// A parsed header.
struct Header {
  std::array<std::uint8_t, kEncryptedHeaderSize> bytes{};
  std::uint32_t segment_size = 0;
  Prefix prefix{};
  Digest digest{};
  std::array<std::uint32_t, 2> versions{};

  const std::uint8_t* slot(int i) const { return bytes.data() + kSlotOffset[i]; }
};

/// kInvalidArgument when the bytes are not an encrypted file at all; kDataLoss when they are
/// one whose header does not hold together.
Result<Header> parse_header(std::span<const std::uint8_t> bytes) {
  if (!is_encrypted(bytes)) {
    return make_error(ErrorCode::kInvalidArgument, "not an encrypted stored file");
  }
  if (bytes.size() < kEncryptedHeaderSize) return corrupt("shorter than its header");
  Header h;
  std::memcpy(h.bytes.data(), bytes.data(), h.bytes.size());
  const std::uint32_t format = get_u32(h.bytes.data() + 8);
  if (format != kEncryptedFormatVersion) {
    return corrupt("unknown format version " + std::to_string(format));
  }
  h.segment_size = get_u32(h.bytes.data() + 12);
  if (h.segment_size < kMinSegmentSize || h.segment_size > kMaxSegmentSize) {
    return corrupt("invalid segment size " + std::to_string(h.segment_size));
  }
  std::memcpy(h.prefix.data(), h.bytes.data() + kPrefixOffset, kPrefixSize);
  GW_ASSIGN_OR_RETURN(h.digest, header_digest(h.bytes.data()));
  h.versions = {get_u32(h.slot(0)), get_u32(h.slot(1))};
  if (h.versions[0] == 0 && h.versions[1] == 0) return corrupt("no key slot in use");
  return h;
}

std::string version_list(const std::vector<std::uint32_t>& versions, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (i > 0) out += sep;
    out += std::to_string(versions[i]);
  }
  return out;
}

struct DataKey {
  SecretKey key;
  int slot = -1;
};

/// Unwraps the data key: slots the current key wraps first, then the others. kConfig when the
/// keyring has no key for any slot; kDataLoss when a key it has fails authentication.
Result<std::unique_ptr<DataKey>> unwrap_data_key(const Header& h, const crypto::Keyring& keyring) {
  std::array<int, 2> order = {0, 1};
  if (keyring.current && h.versions[1] == keyring.current->version) order = {1, 0};
  std::optional<int> failed_slot;
  for (const int i : order) {
    if (h.versions[i] == 0) continue;
    const crypto::MasterKey* key = keyring.find(h.versions[i]);
    if (key == nullptr) continue;
    GW_ASSIGN_OR_RETURN(auto unwrapped, unwrap_slot(h.slot(i), *key, h.digest));
    if (!unwrapped) {
      if (!failed_slot) failed_slot = i;
      continue;
    }
    auto out = std::make_unique<DataKey>();
    out->key.bytes = *unwrapped;
    OPENSSL_cleanse(unwrapped->data(), unwrapped->size());
    out->slot = i;
    return out;
  }
  if (failed_slot) {
    return corrupt("key slot " + std::to_string(*failed_slot) + " failed authentication");
  }
  std::vector<std::uint32_t> needed;
  for (const auto v : h.versions) {
    if (v != 0 && std::find(needed.begin(), needed.end(), v) == needed.end()) needed.push_back(v);
  }
  std::vector<std::uint32_t> have;
  if (keyring.current) have.push_back(keyring.current->version);
  if (keyring.previous) have.push_back(keyring.previous->version);
  return make_error(
      ErrorCode::kConfig,
      "stored file is encrypted with key version " + version_list(needed, " or ") + ", but " +
          (have.empty() ? std::string("no encryption key is configured")
                        : "the configured keys are version " + version_list(have, " and ")));
}

Status write_full(int fd, const std::uint8_t* p, std::size_t len,
                  const std::filesystem::path& path) {
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "write", path);
    }
    if (n == 0) return make_error(ErrorCode::kIo, "write " + path.string() + ": no progress");
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return core::ok_status();
}

Result<Header> read_header(int fd, const std::filesystem::path& path) {
  std::array<std::uint8_t, kEncryptedHeaderSize> bytes{};
  GW_ASSIGN_OR_RETURN(const std::size_t n, core::pread_full(fd, bytes, 0, path));
  return parse_header({bytes.data(), n});
}

}  // namespace

bool is_encrypted(std::span<const std::uint8_t> head) {
  return head.size() >= kEncryptedMagic.size() &&
         std::memcmp(head.data(), kEncryptedMagic.data(), kEncryptedMagic.size()) == 0;
}

// ---------------------------------------------------------------------------------------------
// EncryptedFileWriter

struct EncryptedFileWriter::State {
  int fd = -1;
  std::filesystem::path path;
  CipherCtx ctx;  ///< keyed with the data key (freeing it wipes the key schedule)
  Digest digest{};
  Prefix prefix{};
  std::vector<std::uint8_t> buffer;  ///< one segment of plaintext, then its tag
  std::size_t fill = 0;
  std::uint32_t segment = 0;
  std::uint64_t written = 0;
  bool finished = false;
  bool failed = false;

  ~State() {
    if (!buffer.empty()) OPENSSL_cleanse(buffer.data(), buffer.size());
  }

  /// Encrypts the buffered plaintext as segment `segment` and writes it.
  Status flush(bool last) {
    if (!last && segment == std::numeric_limits<std::uint32_t>::max()) {
      failed = true;
      return make_error(ErrorCode::kTooLarge, "encrypted file " + path.string() + " too large");
    }
    const auto nonce = segment_nonce(prefix, segment);
    const auto aad = segment_aad(digest, segment, last);
    if (!seal(ctx.get(), nonce, aad, {buffer.data(), fill}, buffer.data() + fill)) {
      failed = true;
      return crypto_failure("segment encryption");
    }
    auto st = write_full(fd, buffer.data(), fill + kTagSize, path);
    if (!st.ok()) {
      failed = true;
      return st;
    }
    written += fill + kTagSize;
    ++segment;
    fill = 0;
    return core::ok_status();
  }
};

EncryptedFileWriter::EncryptedFileWriter(std::unique_ptr<State> state) : s_(std::move(state)) {}
EncryptedFileWriter::EncryptedFileWriter(EncryptedFileWriter&&) noexcept = default;
EncryptedFileWriter& EncryptedFileWriter::operator=(EncryptedFileWriter&&) noexcept = default;
EncryptedFileWriter::~EncryptedFileWriter() = default;

Result<EncryptedFileWriter> EncryptedFileWriter::create(int fd, const std::filesystem::path& path,
                                                        const crypto::Keyring& keyring) {
  if (!keyring.current) {
    return make_error(ErrorCode::kConfig, "storage encryption: no encryption key is configured");
  }
  if (keyring.current->version == 0) {
    return make_error(ErrorCode::kInternal,
                      "storage encryption: the current key has no registry version");
  }
  auto s = std::make_unique<State>();
  s->fd = fd;
  s->path = path;
  SecretKey data_key;
  if (RAND_bytes(data_key.bytes.data(), static_cast<int>(data_key.bytes.size())) != 1 ||
      RAND_bytes(s->prefix.data(), static_cast<int>(s->prefix.size())) != 1) {
    return crypto_failure("RAND_bytes");
  }
  std::array<std::uint8_t, kEncryptedHeaderSize> header{};
  std::memcpy(header.data(), kEncryptedMagic.data(), kEncryptedMagic.size());
  put_u32(header.data() + 8, kEncryptedFormatVersion);
  put_u32(header.data() + 12, kSegmentSize);
  std::memcpy(header.data() + kPrefixOffset, s->prefix.data(), kPrefixSize);
  GW_ASSIGN_OR_RETURN(s->digest, header_digest(header.data()));
  GW_RETURN_IF_ERROR(
      fill_slot(header.data() + kSlotOffset[0], *keyring.current, s->digest, data_key));
  GW_ASSIGN_OR_RETURN(s->ctx, keyed_context(data_key.bytes.data(), /*encrypt=*/true));
  GW_RETURN_IF_ERROR(write_full(fd, header.data(), header.size(), path));
  s->written = header.size();
  s->buffer.resize(kSegmentSize + kTagSize);
  return EncryptedFileWriter(std::move(s));
}

Status EncryptedFileWriter::write(std::span<const std::uint8_t> plaintext) {
  if (s_->failed) return make_error(ErrorCode::kIo, "encrypted file had an earlier error");
  if (s_->finished) return make_error(ErrorCode::kInternal, "write after finish");
  while (!plaintext.empty()) {
    // A full buffer is written only once more data arrives: until then it may be the last.
    if (s_->fill == kSegmentSize) GW_RETURN_IF_ERROR(s_->flush(/*last=*/false));
    const std::size_t take = std::min<std::size_t>(kSegmentSize - s_->fill, plaintext.size());
    std::memcpy(s_->buffer.data() + s_->fill, plaintext.data(), take);
    s_->fill += take;
    plaintext = plaintext.subspan(take);
  }
  return core::ok_status();
}

Status EncryptedFileWriter::finish() {
  if (s_->finished) return core::ok_status();
  if (s_->failed) return make_error(ErrorCode::kIo, "encrypted file had an earlier error");
  GW_RETURN_IF_ERROR(s_->flush(/*last=*/true));
  s_->finished = true;
  return core::ok_status();
}

bool EncryptedFileWriter::finished() const { return s_->finished; }
std::uint64_t EncryptedFileWriter::bytes_written() const { return s_->written; }

// ---------------------------------------------------------------------------------------------
// EncryptedFileReader

struct EncryptedFileReader::State {
  core::UniqueFd fd;
  std::filesystem::path path;
  CipherCtx ctx;
  Header header;
  std::uint64_t segments = 0;     ///< >= 1
  std::uint32_t last_length = 0;  ///< plaintext bytes of the last segment
  std::uint64_t plain_size = 0;
  std::vector<std::uint8_t> buffer;     ///< one segment: ciphertext and tag, decrypted in place
  std::optional<std::uint64_t> cached;  ///< the segment whose plaintext `buffer` holds

  ~State() {
    if (!buffer.empty()) OPENSSL_cleanse(buffer.data(), buffer.size());
  }

  std::uint32_t length_of(std::uint64_t n) const {
    return n + 1 == segments ? last_length : header.segment_size;
  }

  Status load(std::uint64_t n) {
    if (cached == n) return core::ok_status();
    cached.reset();
    const std::uint32_t len = length_of(n);
    const std::uint64_t offset =
        kEncryptedHeaderSize + n * (std::uint64_t{header.segment_size} + kTagSize);
    std::span<std::uint8_t> data(buffer.data(), len + kTagSize);
    GW_ASSIGN_OR_RETURN(const std::size_t got, core::pread_full(fd.get(), data, offset, path));
    if (got != data.size()) return corrupt("segment " + std::to_string(n) + " is truncated");
    const auto segment = static_cast<std::uint32_t>(n);
    const auto nonce = segment_nonce(header.prefix, segment);
    const auto aad = segment_aad(header.digest, segment, n + 1 == segments);
    if (!open_sealed(ctx.get(), nonce, aad, {buffer.data(), len}, buffer.data() + len)) {
      OPENSSL_cleanse(buffer.data(), buffer.size());
      return corrupt("segment " + std::to_string(n) + " failed authentication");
    }
    cached = n;
    return core::ok_status();
  }
};

EncryptedFileReader::EncryptedFileReader(std::unique_ptr<State> state) : s_(std::move(state)) {}
EncryptedFileReader::~EncryptedFileReader() = default;

Result<std::unique_ptr<EncryptedFileReader>> EncryptedFileReader::open(
    core::UniqueFd fd, const std::filesystem::path& path, const crypto::Keyring& keyring) {
  auto s = std::make_unique<State>();
  s->path = path;
  GW_ASSIGN_OR_RETURN(s->header, read_header(fd.get(), path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, "stat", path);
  s->fd = std::move(fd);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < kEncryptedHeaderSize) return corrupt("shorter than its header");
  const std::uint64_t full = std::uint64_t{s->header.segment_size} + kTagSize;
  const std::uint64_t body = file_size - kEncryptedHeaderSize;
  const std::uint64_t whole = body / full;
  const std::uint64_t rest = body % full;
  if (rest == 0) {
    if (whole == 0) return corrupt("no segments");
    s->segments = whole;
    s->last_length = s->header.segment_size;
  } else {
    if (rest < kTagSize) return corrupt("truncated last segment");
    s->segments = whole + 1;
    s->last_length = static_cast<std::uint32_t>(rest - kTagSize);
  }
  if (s->segments > std::uint64_t{std::numeric_limits<std::uint32_t>::max()} + 1) {
    return corrupt("too many segments");
  }
  s->plain_size = (s->segments - 1) * s->header.segment_size + s->last_length;
  GW_ASSIGN_OR_RETURN(auto data_key, unwrap_data_key(s->header, keyring));
  GW_ASSIGN_OR_RETURN(s->ctx, keyed_context(data_key->key.bytes.data(), /*encrypt=*/false));
  s->buffer.resize(std::size_t{s->header.segment_size} + kTagSize);
  // The last segment carries the "last" flag: authenticating it now proves the size.
  GW_RETURN_IF_ERROR(s->load(s->segments - 1));
  return std::unique_ptr<EncryptedFileReader>(new EncryptedFileReader(std::move(s)));
}

std::uint64_t EncryptedFileReader::size() const { return s_->plain_size; }

std::array<std::uint32_t, 2> EncryptedFileReader::slot_versions() const {
  return s_->header.versions;
}

Result<std::size_t> EncryptedFileReader::read(std::uint64_t offset, std::span<std::uint8_t> out) {
  if (offset >= s_->plain_size) return std::size_t{0};
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), s_->plain_size - offset));
  const std::uint64_t segment_size = s_->header.segment_size;
  std::size_t done = 0;
  while (done < n) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t segment = pos / segment_size;
    const std::size_t within = static_cast<std::size_t>(pos % segment_size);
    GW_RETURN_IF_ERROR(s_->load(segment));
    const std::size_t take = std::min<std::size_t>(n - done, s_->length_of(segment) - within);
    std::memcpy(out.data() + done, s_->buffer.data() + within, take);
    done += take;
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// rewrap

Result<bool> rewrap(const std::filesystem::path& path, const crypto::Keyring& keyring, bool fsync) {
  if (!keyring.current || keyring.current->version == 0) {
    return make_error(ErrorCode::kConfig, "rewrap needs a current key with a registry version");
  }
  core::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return make_error(ErrorCode::kNotFound, "no such file: " + path.string());
    return errno_error(errno, "open", path);
  }
  GW_ASSIGN_OR_RETURN(const Header h, read_header(fd.get(), path));
  const crypto::MasterKey& current = *keyring.current;
  for (int i = 0; i < 2; ++i) {
    if (h.versions[i] != current.version) continue;
    GW_ASSIGN_OR_RETURN(auto unwrapped, unwrap_slot(h.slot(i), current, h.digest));
    if (unwrapped) {
      OPENSSL_cleanse(unwrapped->data(), unwrapped->size());
      return false;  // already wrapped by the current key
    }
  }
  GW_ASSIGN_OR_RETURN(auto data_key, unwrap_data_key(h, keyring));
  // Keep the slot that unwrapped; the other one (empty, an older key, or damaged) takes the
  // new wrap. Until the pwrite below completes, the kept slot still opens the file.
  const int target = 1 - data_key->slot;
  std::array<std::uint8_t, kSlotSize> slot{};
  GW_RETURN_IF_ERROR(fill_slot(slot.data(), current, h.digest, data_key->key));
  const auto offset = static_cast<off_t>(kSlotOffset[target]);
  ssize_t n = 0;
  do {
    n = ::pwrite(fd.get(), slot.data(), slot.size(), offset);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error(errno, "write", path);
  if (static_cast<std::size_t>(n) != slot.size()) {
    return make_error(ErrorCode::kIo, "short write to " + path.string());
  }
  if (fsync && ::fdatasync(fd.get()) != 0) return errno_error(errno, "fdatasync", path);
  return true;
}

}  // namespace gw::storage
