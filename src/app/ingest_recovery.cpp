#include "app/ingest_recovery.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"
#include "crypto/keyring.h"
#include "storage/content_reader.h"
#include "storage/file_ops.h"

namespace gw::app {

namespace {

using core::ErrorCode;

std::shared_ptr<spdlog::logger> log() { return core::logger("ingest"); }

/// Whether an error reading a stored file says the file is broken (missing, cut short, garbled)
/// rather than that it cannot be read now (permissions, descriptors, an I/O error).
bool shows_broken_file(const core::Error& error, const storage::Store& store) {
  if (error.code == ErrorCode::kNotFound || error.code == ErrorCode::kDataLoss) return true;
  // "Encrypted with a key version we do not have": for a file this gateway wrote just before
  // the crash with its current key, a garbled header. Without any key it is the configuration.
  const auto keys = store.keyring();
  return error.code == ErrorCode::kConfig && keys && keys->current;
}

/// Whether the stored file, as read from the disk, is what the row says it is. An error when
/// that cannot be told.
core::Result<bool> matches_row(const storage::Store& store, const index::UnconfirmedInstance& u) {
  const auto path = store.absolute(u.storage_path);
  storage::drop_cached(path);
  auto reader = store.open_content(path);
  if (!reader.ok()) {
    if (shows_broken_file(reader.error(), store)) return false;
    return reader.error();
  }
  if ((*reader)->size() != static_cast<std::uint64_t>(u.size_bytes)) return false;
  if (u.digest.empty()) return true;
  auto digest = storage::digest_content(**reader);
  if (!digest.ok()) {
    if (shows_broken_file(digest.error(), store)) return false;
    return digest.error();
  }
  return *digest == u.digest;
}

}  // namespace

core::Status recover_unconfirmed(storage::Store& store, index::Index& index) {
  GW_ASSIGN_OR_RETURN(auto unconfirmed, index.list_unconfirmed());
  if (unconfirmed.empty()) return core::ok_status();
  // After a kill -9 the files may still be only in the page cache: first make them durable, then
  // read them back from the disk (drop_cached), so an intact verdict holds across a power loss.
  GW_RETURN_IF_ERROR(store.sync_filesystem());
  std::vector<std::int64_t> broken;
  std::vector<std::string> broken_files;
  std::int64_t through = 0;
  for (const auto& u : unconfirmed) {
    through = std::max(through, u.marker_id);
    auto intact = matches_row(store, u);
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
