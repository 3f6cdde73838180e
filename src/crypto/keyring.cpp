#include "crypto/keyring.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/check.h"
#include "core/unique_fd.h"

namespace gw::crypto {
namespace {

using core::ErrorCode;
using core::make_error;

constexpr std::size_t kMinKeyLength = 32;
constexpr std::size_t kMaxKeyFileRead = 4096;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

Key256 hkdf(std::string_view secret, std::string_view info) {
  Key256 out{};
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf != nullptr ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  GW_CHECK(ctx != nullptr);  // OpenSSL 3 always has HKDF
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
                         OSSL_PARAM_construct_end()};
  const int rc = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  GW_CHECK(rc == 1);
  return out;
}

/// The first line of an owner-only key file. The checks run on the opened descriptor, so a
/// file swapped between the check and the read is not read (a symlink, as in a Kubernetes
/// secret volume, is followed and its target checked).
core::Result<std::string> read_key_file(const std::filesystem::path& path, const char* what) {
  const std::string where = std::string(what) + " " + path.string();
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) {
    return make_error(ErrorCode::kInvalidArgument,
                      where + ": cannot open (" + std::strerror(errno) + ")");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, where + ": not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      where + ": must not be readable by group or others (chmod 400)");
  }
  // A key is one short line; read a bounded prefix of the file.
  std::array<char, kMaxKeyFileRead> buffer{};
  std::size_t filled = 0;
  for (int reads = 0; filled < buffer.size() && reads < 64; ++reads) {
    const ssize_t n = ::read(fd.get(), buffer.data() + filled, buffer.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + ": cannot read (" + std::strerror(errno) + ")");
    }
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  const std::string_view text(buffer.data(), filled);
  const std::size_t eol = text.find('\n');
  if (eol == std::string_view::npos && filled == buffer.size()) {
    OPENSSL_cleanse(buffer.data(), buffer.size());
    return make_error(ErrorCode::kInvalidArgument, where + ": the first line is too long");
  }
  std::string line(text.substr(0, eol));
  OPENSSL_cleanse(buffer.data(), buffer.size());
  return line;
}

/// A key from the environment variable `env` (when set and not empty), else from `file`
/// (when given); nullopt when neither. Errors name the source, never the key.
core::Result<std::optional<MasterKey>> load_one(const std::string& env,
                                                const std::filesystem::path& file,
                                                const char* file_key) {
  std::string secret;
  std::string source;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read at start and on reload, nobody sets it.
  const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
  if (value != nullptr && *value != '\0') {
    secret = value;
    source = "environment variable " + env;
  } else if (!file.empty()) {
    GW_ASSIGN_OR_RETURN(secret, read_key_file(file, file_key));
    source = std::string(file_key) + " " + file.string();
  } else {
    return std::optional<MasterKey>();
  }
  auto key = MasterKey::from_secret(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  if (!key.ok()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the key in " + source + ": " + key.error().message);
  }
  return std::optional<MasterKey>(std::move(key).value());
}

}  // namespace

core::Result<MasterKey> MasterKey::from_secret(std::string_view secret) {
  const std::string_view trimmed = trim(secret);
  if (trimmed.size() < kMinKeyLength) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the encryption key must be at least 32 characters (openssl rand "
                      "-base64 32)");
  }
  MasterKey key;
  key.secret_ = std::string(trimmed);
  const Key256 check = hkdf(key.secret_, "dicom-gw check v1");
  static constexpr std::string_view kLabel = "dicom-gw key check";
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), check.data(), static_cast<int>(check.size()),
       reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(), mac.data(), &len);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < 16; ++i) {
    key.check_value_.push_back(kHex[mac[i] >> 4]);
    key.check_value_.push_back(kHex[mac[i] & 0xf]);
  }
  return key;
}

Key256 MasterKey::derive(std::string_view purpose) const { return hkdf(secret_, purpose); }

const MasterKey* Keyring::find(std::uint32_t version) const {
  if (version == 0) return nullptr;
  if (current && current->version == version) return &*current;
  if (previous && previous->version == version) return &*previous;
  return nullptr;
}

core::Result<Keyring> load_keyring(const KeySources& sources) {
  Keyring ring;
  GW_ASSIGN_OR_RETURN(ring.current,
                      load_one(sources.env_name, sources.key_file, "database.encryption_key_file"));
  const std::string previous_env =
      sources.env_name.empty() ? std::string() : sources.env_name + "_PREVIOUS";
  GW_ASSIGN_OR_RETURN(ring.previous, load_one(previous_env, sources.previous_key_file,
                                              "database.previous_encryption_key_file"));
  if (ring.previous && !ring.current) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a previous encryption key is given but no current one (" + sources.env_name +
                          " or database.encryption_key_file)");
  }
  if (ring.previous && ring.previous->check_value() == ring.current->check_value()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the previous encryption key is the same as the current one");
  }
  return ring;
}

}  // namespace gw::crypto
