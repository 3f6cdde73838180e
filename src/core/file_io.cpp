#include "core/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace gw::core {

Result<std::size_t> pread_full(int fd, std::span<std::uint8_t> out, std::uint64_t offset,
                               const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      const int err = errno;  // before anything else can change it
      if (err == EINTR) continue;
      return make_error(ErrorCode::kIo,
                        "read " + path.string() + ": " + std::generic_category().message(err));
    }
    if (n == 0) break;  // end of file (or it shrank since it was opened): what there is
    done += static_cast<std::size_t>(n);
  }
  return done;
}

}  // namespace gw::core
