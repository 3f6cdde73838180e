#pragma once
/// `dicom-gw storage verify`: reads every stored file back from the disk and compares it with
/// its index row (present, plaintext size, content digest; encrypted files are also
/// authenticated), then lists files under storage/ that no row names. Read-only: it repairs
/// nothing and runs next to serving gateways (it opens the index, never the data directory's
/// lock). A damaged instance is repaired by sending it again: a resend replaces a copy that is
/// missing, cut short or changed (IngestService::replace_lost_copy).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/result.h"
#include "index/index.h"

namespace gw::crypto {
struct Keyring;
}

namespace gw::app {

/// One thing found wrong. No patient data: the SOP Instance UID and the storage path.
struct VerifyProblem {
  std::string kind;  ///< "missing", "wrong size", "content changed", "unreadable", "orphan"
  std::string sop_instance_uid;  ///< empty for an orphan
  std::string storage_path;      ///< relative to data_dir
  std::string detail;            ///< plain words (an unreadable file's error)
};

struct VerifyReport {
  std::int64_t rows_checked = 0;
  std::int64_t intact = 0;
  std::int64_t missing = 0;
  std::int64_t wrong_size = 0;
  std::int64_t changed = 0;
  std::int64_t unreadable = 0;  ///< could not be read (permissions, I/O): unknown state
  /// Rows judged by presence and size only although content was to be checked: their digest
  /// is not an XXH3 one (rows from before ADR 008 carry "sha256:…").
  std::int64_t size_only = 0;
  std::int64_t files_listed = 0;  ///< files under storage/ looked at for orphans
  std::int64_t orphans = 0;
  std::uint64_t bytes_read = 0;  ///< content read and hashed
  /// Why the orphan listing stopped early (a directory that cannot be read); empty if it did
  /// not. The rows' results stand either way.
  std::string orphan_error;

  /// Rows whose file is missing, cut short, changed or unreadable.
  std::int64_t damaged() const { return missing + wrong_size + changed + unreadable; }
};

struct VerifyOptions {
  bool check_digest = true;  ///< false: presence and size only (no file content is read)
  bool find_orphans = true;
  std::int64_t batch = 500;  ///< rows per index query
  /// Read at most this many bytes per second (0: as fast as the disk goes), to spare a
  /// serving gateway's disk.
  std::uint64_t max_bytes_per_second = 0;
  /// Files younger than this are not called orphans: their row may not be committed yet.
  std::chrono::seconds orphan_min_age{3600};
  std::function<void(const VerifyProblem&)> on_problem;
  /// Called every `progress_every` rows checked.
  std::function<void(const VerifyReport&)> on_progress;
  std::int64_t progress_every = 1000;
};

/// Checks every row of `index` against its file under `data_dir`, reading encrypted files with
/// `keyring`. A row that changes while it is checked (an overwrite, a deletion) is read again
/// and judged by what it names now. An error when the index cannot be read, and kConfig when an
/// encrypted file needs a key the keyring lacks (the keys are wrong, not the files: the check
/// stops rather than call every encrypted file unreadable).
core::Result<VerifyReport> verify_storage(index::Index& index,
                                          const std::filesystem::path& data_dir,
                                          const crypto::Keyring* keyring,
                                          const VerifyOptions& options);

}  // namespace gw::app
