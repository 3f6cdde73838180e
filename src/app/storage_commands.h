#pragma once
/// `dicom-gw storage verify`: the operator's check that every stored instance is still on the
/// disk as it was received (app/storage_verify.h). Exit codes: 0 every instance intact (orphan
/// files are reported, not failed), 1 at least one missing, cut short, changed or unreadable,
/// 2 usage, configuration, or an index that cannot be read.

#include <cstdint>
#include <filesystem>

namespace gw::app {

struct StorageVerifyArgs {
  std::filesystem::path config;
  bool sizes_only = false;        ///< presence and size only: no file content is read
  bool no_orphans = false;        ///< skip the listing of files no row names
  std::int64_t max_mb_per_s = 0;  ///< read rate cap (10^6 bytes per second); 0: none
};

int run_storage_verify(const StorageVerifyArgs& args);

}  // namespace gw::app
