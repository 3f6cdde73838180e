#include "storage/volume_info.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fstream>
#include <system_error>

namespace gw::storage {
namespace {

std::string first_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

/// dm uuids of dm-crypt devices start with "CRYPT-<TYPE>-" (cryptsetup's convention).
bool read_crypt(const std::filesystem::path& dev_dir, VolumeInfo& info) {
  const std::string uuid = first_line(dev_dir / "dm" / "uuid");
  if (!uuid.starts_with("CRYPT-")) return false;
  info.dm_crypt = true;
  const auto rest = uuid.substr(6);
  info.crypt_type = rest.substr(0, rest.find('-'));
  return true;
}

/// Depth-first through slaves/, bounded (device stacks are a few levels deep).
bool crypt_below(const std::filesystem::path& dev_dir, VolumeInfo& info, int depth) {
  if (depth > 8) return false;
  if (read_crypt(dev_dir, info)) return true;
  std::error_code ec;
  std::filesystem::directory_iterator it(dev_dir / "slaves", ec), end;
  for (int n = 0; !ec && it != end && n < 64; it.increment(ec), ++n) {
    // slaves/<name> links to the slave's sysfs directory.
    const auto target = std::filesystem::canonical(it->path(), ec);
    if (ec) {
      ec.clear();
      continue;
    }
    if (crypt_below(target, info, depth + 1)) return true;
  }
  return false;
}

}  // namespace

VolumeInfo volume_info_from_sysfs(const std::filesystem::path& sys_block_dir,
                                  const std::string& device) {
  VolumeInfo info;
  info.device = device;
  std::error_code ec;
  const auto dev_dir = std::filesystem::canonical(sys_block_dir / device, ec);
  if (ec) return info;
  info.dm_name = first_line(dev_dir / "dm" / "name");
  // A partition's own directory has no slaves; its parent disk's does (partition on dm).
  if (!crypt_below(dev_dir, info, 0) && std::filesystem::exists(dev_dir / "partition")) {
    crypt_below(dev_dir.parent_path(), info, 0);
  }
  return info;
}

VolumeInfo volume_info(const std::filesystem::path& directory) {
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) return {};
  const std::string device =
      std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  return volume_info_from_sysfs("/sys/dev/block", device);
}

}  // namespace gw::storage
