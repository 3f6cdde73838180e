#include "storage/stored_path.h"

#include <string>

namespace gw::storage {

bool is_storage_relative(std::string_view relative_path) {
  if (!relative_path.starts_with("storage/")) return false;
  const std::filesystem::path p(relative_path);
  if (p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

core::Result<std::filesystem::path> stored_file_path(const std::filesystem::path& data_dir,
                                                     std::string_view relative_path) {
  if (!is_storage_relative(relative_path)) {
    return core::make_error(
        core::ErrorCode::kInvalidArgument,
        "the index names a path outside storage/: " + std::string(relative_path));
  }
  return data_dir / relative_path;
}

}  // namespace gw::storage
