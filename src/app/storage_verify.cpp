#include "app/storage_verify.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "storage/content_digest.h"
#include "storage/content_reader.h"
#include "storage/stored_path.h"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using storage::StoredState;

/// What became of one row: its file's state, or the error that kept the file from being read.
struct Judged {
  index::StoredFileRow row;
  core::Result<StoredState> state;
};

class Verifier {
 public:
  Verifier(index::Index& index, fs::path data_dir, const crypto::Keyring* keyring,
           const VerifyOptions& options)
      : index_(index),
        data_dir_(std::move(data_dir)),
        keyring_(keyring),
        options_(options),
        started_(std::chrono::steady_clock::now()) {}

  core::Status check_rows() {
    for (std::int64_t after = 0;;) {
      GW_ASSIGN_OR_RETURN(auto page, index_.list_stored_files(after, options_.batch));
      if (page.empty()) return core::ok_status();
      for (auto& row : page) {
        after = row.id;
        GW_RETURN_IF_ERROR(check_row(std::move(row)));
      }
    }
  }

  /// Lists the files no row names. A directory that cannot be read ends the listing (noted in
  /// the report); an index that cannot be asked ends the check.
  core::Status find_orphans() {
    const auto storage = data_dir_ / "storage";
    const auto young = fs::file_time_type::clock::now() - options_.orphan_min_age;
    std::error_code ec;
    fs::recursive_directory_iterator it(storage, ec);
    if (ec == std::errc::no_such_file_or_directory) return core::ok_status();
    if (ec) {
      report_.orphan_error = "cannot list " + storage.string() + ": " + ec.message();
      return core::ok_status();
    }
    for (const fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
      std::error_code file_ec;
      if (!it->is_regular_file(file_ec)) continue;
      ++report_.files_listed;
      const auto mtime = it->last_write_time(file_ec);
      if (file_ec || mtime > young) continue;  // gone meanwhile, or perhaps not committed yet
      const auto relative = it->path().lexically_relative(data_dir_).generic_string();
      GW_ASSIGN_OR_RETURN(const bool referenced, index_.references_file(relative));
      if (referenced) continue;
      ++report_.orphans;
      problem({"orphan", "", relative, "no index row names this file"});
    }
    if (ec) report_.orphan_error = "listing " + storage.string() + " stopped: " + ec.message();
    return core::ok_status();
  }

  const VerifyReport& report() const { return report_; }

 private:
  core::Status check_row(index::StoredFileRow row) {
    auto judged = judge(std::move(row));
    // A file that looks wrong may belong to a row that changed meanwhile (an overwrite names a
    // new file and removes the old one; an instance may be deleted): judge what the row names
    // now, once.
    if (!is_intact(judged.state)) {
      GW_ASSIGN_OR_RETURN(auto now, index_.find_instance(judged.row.sop_instance_uid));
      if (!now) return core::ok_status();  // deleted meanwhile: nothing to check
      if (now->storage_path != judged.row.storage_path ||
          now->size_bytes != judged.row.size_bytes || now->digest != judged.row.digest) {
        judged = judge({judged.row.id, now->sop_instance_uid, now->storage_path, now->size_bytes,
                        now->digest, now->received_at_ms});
      }
    }
    if (!judged.state.ok() && judged.state.error().code == core::ErrorCode::kConfig) {
      return judged.state.error();  // a key the keyring lacks: wrong keys, not a bad file
    }
    ++report_.rows_checked;
    if (!judged.state.ok()) {
      ++report_.unreadable;
      problem({"unreadable", judged.row.sop_instance_uid, judged.row.storage_path,
               judged.state.error().message});
    } else {
      switch (*judged.state) {
        case StoredState::kIntact:
          ++report_.intact;
          break;
        case StoredState::kMissing:
          ++report_.missing;
          break;
        case StoredState::kWrongSize:
          ++report_.wrong_size;
          break;
        case StoredState::kChanged:
          ++report_.changed;
          break;
      }
      if (*judged.state != StoredState::kIntact) {
        problem({storage::to_string(*judged.state), judged.row.sop_instance_uid,
                 judged.row.storage_path, ""});
      }
    }
    if (options_.on_progress && options_.progress_every > 0 &&
        report_.rows_checked % options_.progress_every == 0) {
      options_.on_progress(report_);
    }
    return core::ok_status();
  }

  static bool is_intact(const core::Result<StoredState>& state) {
    return state.ok() && *state == StoredState::kIntact;
  }

  Judged judge(index::StoredFileRow row) {
    // Only a relative path under storage/ is ours to read (a row is never trusted to name
    // /etc/shadow or ../…).
    auto path = storage::stored_file_path(data_dir_, row.storage_path);
    if (!path.ok()) return {std::move(row), std::move(path).error()};
    // Rows from before ADR 008 ("sha256:…") are judged by presence and size only.
    const bool by_digest =
        options_.check_digest && std::string_view(row.digest).starts_with(storage::kDigestPrefix);
    if (options_.check_digest && !by_digest) ++report_.size_only;
    auto state = storage::check_stored_file(*path, keyring_, row.size_bytes, row.digest, by_digest);
    // Only a file of the recorded size is read to the end.
    if (by_digest && state.ok() && *state != StoredState::kMissing &&
        *state != StoredState::kWrongSize) {
      report_.bytes_read += static_cast<std::uint64_t>(std::max<std::int64_t>(0, row.size_bytes));
      pace();
    }
    return {std::move(row), std::move(state)};
  }

  /// Sleeps until the bytes read so far fit max_bytes_per_second.
  void pace() const {
    if (options_.max_bytes_per_second == 0) return;
    const auto due =
        std::chrono::duration<double>(static_cast<double>(report_.bytes_read) /
                                      static_cast<double>(options_.max_bytes_per_second));
    const auto elapsed = std::chrono::steady_clock::now() - started_;
    if (due > elapsed) std::this_thread::sleep_for(due - elapsed);
  }

  void problem(const VerifyProblem& found) const {
    if (options_.on_problem) options_.on_problem(found);
  }

  index::Index& index_;
  fs::path data_dir_;
  const crypto::Keyring* keyring_;
  const VerifyOptions& options_;
  std::chrono::steady_clock::time_point started_;
  VerifyReport report_;
};

}  // namespace

core::Result<VerifyReport> verify_storage(index::Index& index, const fs::path& data_dir,
                                          const crypto::Keyring* keyring,
                                          const VerifyOptions& options) {
  if (options.batch <= 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "batch must be positive");
  }
  Verifier verifier(index, data_dir, keyring, options);
  GW_RETURN_IF_ERROR(verifier.check_rows());
  if (options.find_orphans) GW_RETURN_IF_ERROR(verifier.find_orphans());
  return verifier.report();
}

}  // namespace gw::app
