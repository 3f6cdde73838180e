#pragma once
/// `dicom-gw db migrate|status|rotate-key`: the index's schema and its encryption keys
/// (ADR 010). They open the index alone, never the data directory's lock, so they run next to
/// serving gateways. Exit codes: 0 done, 1 failed or not finished, 2 usage or configuration.

#include <cstdint>
#include <filesystem>

namespace gw::app {

struct DbArgs {
  std::filesystem::path config;
  std::int64_t batch = 500;   ///< rotate-key: rows per transaction
  std::int64_t pause_ms = 0;  ///< rotate-key: wait between batches (spares a busy database)
};

int run_db_migrate(const DbArgs& args);
int run_db_status(const DbArgs& args);
int run_db_rotate_key(const DbArgs& args);

}  // namespace gw::app
