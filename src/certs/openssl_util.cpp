#include "certs/openssl_util.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <fstream>
#include <iterator>
#include <system_error>

#include "core/unique_fd.h"

namespace gw::certs {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::make_error;

/// Never prompt on a terminal for a passphrase: an encrypted key simply fails to load.
int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return 0; }

core::Result<std::string> read_whole_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return make_error(ErrorCode::kNotFound, "file not found: " + path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot open " + path.string());
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(ErrorCode::kIo, "cannot read " + path.string());
  return data;
}

std::string errno_message(const std::string& what, const fs::path& path) {
  return what + " " + path.string() + ": " + std::generic_category().message(errno);
}

}  // namespace

std::string openssl_error(std::string_view fallback) {
  std::string message;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    const char* reason = ERR_reason_error_string(code);
    if (!message.empty()) message += "; ";
    message += reason != nullptr ? reason : buf;
  }
  return message.empty() ? std::string(fallback) : message;
}

core::Result<std::vector<X509Ptr>> parse_certificates(std::string_view data) {
  if (data.size() > INT_MAX) return make_error(ErrorCode::kTooLarge, "certificate file too large");
  ERR_clear_error();
  std::vector<X509Ptr> certs;
  BioPtr pem(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!pem) return make_error(ErrorCode::kInternal, openssl_error());
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(pem.get(), nullptr, &no_password, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  // The loop ends on "no start line" at the end of the input; a broken PEM block in the middle
  // is a different error and means the bundle is damaged.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (!certs.empty() && !clean_end && last != 0) {
    return make_error(ErrorCode::kInvalidArgument, "damaged PEM block after certificate " +
                                                       std::to_string(certs.size()) + ": " +
                                                       openssl_error());
  }
  ERR_clear_error();
  if (!certs.empty()) return certs;

  BioPtr der(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!der) return make_error(ErrorCode::kInternal, openssl_error());
  X509Ptr cert(d2i_X509_bio(der.get(), nullptr));
  if (!cert) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "no certificate found (expected PEM or DER)");
  }
  certs.push_back(std::move(cert));
  return certs;
}

core::Result<std::vector<X509Ptr>> read_certificates(const fs::path& path) {
  GW_ASSIGN_OR_RETURN(const std::string data, read_whole_file(path));
  auto certs = parse_certificates(data);
  if (!certs.ok()) {
    return make_error(certs.error().code, path.string() + ": " + certs.error().message);
  }
  return certs;
}

core::Result<PkeyPtr> read_private_key(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return make_error(ErrorCode::kNotFound, "file not found: " + path.string());
  }
  ERR_clear_error();
  BioPtr bio(BIO_new_file(path.c_str(), "rb"));
  if (!bio) return make_error(ErrorCode::kIo, "cannot open " + path.string());
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_password, nullptr));
  if (key) return key;
  const unsigned long last = ERR_peek_last_error();
  const bool encrypted =
      ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_BAD_PASSWORD_READ;
  ERR_clear_error();
  if (encrypted) {
    return make_error(ErrorCode::kInvalidArgument,
                      path.string() + ": private key is encrypted (a passphrase is not supported)");
  }
  if (BIO_reset(bio.get()) == 0) {
    key.reset(d2i_PrivateKey_bio(bio.get(), nullptr));
  }
  if (!key) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument,
                      path.string() + ": no private key found (expected PEM or DER)");
  }
  return key;
}

bool holds_pem(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "rb"));
  if (!bio) {
    ERR_clear_error();
    return false;
  }
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long length = 0;
  const bool found = PEM_read_bio(bio.get(), &name, &header, &data, &length) == 1;
  OPENSSL_free(name);
  OPENSSL_free(header);
  if (data != nullptr) OPENSSL_clear_free(data, static_cast<std::size_t>(length));  // a key
  ERR_clear_error();
  return found;
}

core::Result<std::string> certificates_pem(const std::vector<X509*>& certs) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return make_error(ErrorCode::kInternal, openssl_error());
  for (X509* cert : certs) {
    if (PEM_write_bio_X509(bio.get(), cert) != 1) {
      return make_error(ErrorCode::kInternal, "cannot encode certificate: " + openssl_error());
    }
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

core::Status write_private_key(const fs::path& path, EVP_PKEY* key, bool overwrite) {
  // secmem: the buffer is cleansed when the BIO is freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return make_error(ErrorCode::kInternal, openssl_error());
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return make_error(ErrorCode::kInternal, "cannot encode private key: " + openssl_error());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return write_file_atomic(path, std::string_view(data, static_cast<std::size_t>(size)), 0600,
                           overwrite);
}

core::Status write_file_atomic(const fs::path& link, std::string_view data, mode_t mode,
                               bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::exists(link, ec)) {
    return make_error(ErrorCode::kAlreadyExists,
                      link.string() + " already exists (use overwrite to replace it)");
  }
  // A symlink (certbot's live/NAME/fullchain.pem) stays a symlink: its target is replaced.
  fs::path path = link;
  if (fs::is_symlink(link, ec)) {
    path = fs::canonical(link, ec);
    if (ec) {
      return make_error(ErrorCode::kIo,
                        "cannot resolve the symlink " + link.string() + ": " + ec.message());
    }
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  // mkstemp creates the file 0600, so a key is never readable by others, not even briefly.
  core::UniqueFd fd(::mkstemp(tmp.data()));
  if (fd.get() < 0) return make_error(ErrorCode::kIo, errno_message("cannot create", tmp));
  auto fail = [&](const std::string& what) {
    core::Error error = make_error(ErrorCode::kIo, errno_message(what, path));
    ::unlink(tmp.c_str());
    return error;
  };
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd.get(), mode) != 0) return fail("cannot chmod");
  if (::fsync(fd.get()) != 0) return fail("cannot fsync");
  if (::close(fd.release()) != 0) return fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename onto");
  // The rename itself must survive a crash too.
  const core::UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) {
    return make_error(ErrorCode::kIo, errno_message("cannot fsync", dir));
  }
  return core::ok_status();
}

bool to_time_t(const ASN1_TIME* time, std::time_t& out) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return false;
  out = ::timegm(&tm);
  return true;
}

std::time_t to_time_t(std::chrono::system_clock::time_point tp) {
  return std::chrono::system_clock::to_time_t(tp);
}

std::string iso8601(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {buf, n};
}

}  // namespace gw::certs
