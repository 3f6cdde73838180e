#include "app/ingest_recovery.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"

namespace gw::app {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("ingest"); }

}  // namespace

core::Status recover_unconfirmed(storage::Store& store, index::Index& index) {
  GW_ASSIGN_OR_RETURN(auto unconfirmed, index.list_unconfirmed());
  if (unconfirmed.empty()) return core::ok_status();
  // After a kill -9 the files may still be only in the page cache: first make them durable, then
  // read them back from the disk, so an intact verdict holds across a power loss.
  GW_RETURN_IF_ERROR(store.sync_filesystem());
  std::vector<std::int64_t> broken;
  std::vector<std::string> broken_files;
  for (const auto& u : unconfirmed) {
    auto intact = store.check_stored(u.storage_path, u.size_bytes, u.digest);
    if (!intact.ok()) {
      return core::make_error(intact.error().code, "start-up check of an unconfirmed instance: " +
                                                       intact.error().message);
    }
    if (*intact) continue;
    broken.push_back(u.instance_id);
    broken_files.push_back(u.storage_path);
    log()->warn(
        "event=unflushed_instance_removed instance_id={} storage_path={} "
        "reason=file_missing_or_different",
        u.instance_id, u.storage_path);
  }
  // Listed oldest first: the last marker covers them all.
  GW_RETURN_IF_ERROR(index.settle_unconfirmed(broken, unconfirmed.back().marker_id));
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
