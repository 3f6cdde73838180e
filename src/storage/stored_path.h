#pragma once
/// Where an index row's storage path may point. Every stored file is named by a path relative to
/// the data directory, under storage/ ("storage/ab/….dcm", "storage/<node>/ab/….dcm"). A row
/// comes from a database that several gateways (and a DBA) can write; reading or removing what
/// it names must never reach outside storage/ ("/etc/shadow", "storage/../config.yaml").

#include <filesystem>
#include <string_view>

#include "core/result.h"

namespace gw::storage {

/// Whether `relative_path` is relative, starts with "storage/" and has no "." or ".." part.
bool is_storage_relative(std::string_view relative_path);

/// data_dir / relative_path when is_storage_relative(relative_path), else kInvalidArgument
/// ("the index names a path outside storage/: …").
core::Result<std::filesystem::path> stored_file_path(const std::filesystem::path& data_dir,
                                                     std::string_view relative_path);

}  // namespace gw::storage
