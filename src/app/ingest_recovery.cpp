#include "app/ingest_recovery.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"
#include "storage/content_reader.h"

namespace gw::app {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("ingest"); }

/// Whether the stored file is what the row says it is; an error only when that cannot be told
/// (a missing encryption key: a configuration problem, not a broken file).
core::Result<bool> matches_row(storage::Store& store, const index::UnconfirmedInstance& u) {
  auto reader = store.open_content(store.absolute(u.storage_path));
  if (!reader.ok()) {
    if (reader.error().code == core::ErrorCode::kConfig) return reader.error();
    return false;
  }
  if ((*reader)->size() != static_cast<std::uint64_t>(u.size_bytes)) return false;
  if (u.digest.empty()) return true;
  auto digest = storage::digest_content(**reader);
  return digest.ok() && *digest == u.digest;
}

}  // namespace

core::Status recover_unconfirmed(storage::Store& store, index::Index& index) {
  GW_ASSIGN_OR_RETURN(auto unconfirmed, index.list_unconfirmed());
  if (unconfirmed.empty()) return core::ok_status();
  std::vector<std::int64_t> broken;
  std::vector<std::string> broken_files;
  std::int64_t through = 0;
  for (const auto& u : unconfirmed) {
    through = std::max(through, u.marker_id);
    GW_ASSIGN_OR_RETURN(bool intact, matches_row(store, u));
    if (intact) continue;
    broken.push_back(u.instance_id);
    broken_files.push_back(u.storage_path);
    log()->warn("event=unflushed_instance_removed instance_id={} reason=file_missing_or_different",
                u.instance_id);
  }
  GW_RETURN_IF_ERROR(index.settle_unconfirmed(broken, through));
  for (const auto& path : broken_files) (void)store.remove(path);
  log()->info("event=unconfirmed_check instances_checked={} removed={}", unconfirmed.size(),
              broken.size());
  return core::ok_status();
}

core::Status remove_unreferenced_files(storage::Store& store, index::Index& index) {
  GW_ASSIGN_OR_RETURN(auto candidates, store.recovery_candidates());
  std::size_t removed = 0;
  for (const auto& path : candidates) {
    GW_ASSIGN_OR_RETURN(bool referenced, index.references_file(path));
    if (referenced) continue;
    GW_RETURN_IF_ERROR(store.remove(path));
    ++removed;
  }
  if (!candidates.empty()) {
    log()->info("event=crash_recovery files_checked={} unreferenced_removed={}", candidates.size(),
                removed);
  }
  return core::ok_status();
}

}  // namespace gw::app
