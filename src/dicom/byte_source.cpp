#include "dicom/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/file_io.h"
#include "core/unique_fd.h"

namespace gw::dicom {
namespace {

using core::ErrorCode;
using core::make_error;

class FileSource final : public ByteSource {
 public:
  FileSource(core::UniqueFd fd, std::filesystem::path path, std::uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size) {}

  std::uint64_t size() const override { return size_; }

  core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
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

core::Result<std::unique_ptr<ByteSource>> open_file_source(const std::filesystem::path& path) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    const auto code = err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    return make_error(code, "cannot open " + path.string() + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return make_error(ErrorCode::kIo, "cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  return std::unique_ptr<ByteSource>(
      new FileSource(std::move(fd), path, static_cast<std::uint64_t>(st.st_size)));
}

}  // namespace gw::dicom
