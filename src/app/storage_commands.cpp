#include "app/storage_commands.h"

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "app/admin_index.h"
#include "app/storage_verify.h"
#include "core/clock.h"

namespace gw::app {
namespace {

std::string megabytes(std::uint64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

std::string summary(const VerifyReport& r) {
  return fmt::format(
      "{} rows checked: {} intact, {} missing, {} wrong size, {} content changed, {} unreadable",
      r.rows_checked, r.intact, r.missing, r.wrong_size, r.changed, r.unreadable);
}

}  // namespace

int run_storage_verify(const StorageVerifyArgs& args) {
  if (args.max_mb_per_s < 0 || args.max_mb_per_s > 100000) {
    std::cerr << "error: --max-mb-per-s must be 0-100000\n";
    return 2;
  }
  ConfiguredIndex db;
  if (auto rc = open_configured_index(args.config, "storage", db)) return *rc;
  auto total = db.index->count_instances();
  if (!total.ok()) return fail(total.error(), std::cerr);
  std::cout << "storage verify: " << *total << " instances in the index; checking "
            << (args.sizes_only ? "that each file is there with its size"
                                : "each file's size and content digest")
            << " under " << db.config.data_dir.string() << '\n'
            << std::flush;

  VerifyOptions options;
  options.check_digest = !args.sizes_only;
  options.find_orphans = !args.no_orphans;
  options.max_bytes_per_second = static_cast<std::uint64_t>(args.max_mb_per_s) * 1000000u;
  options.on_problem = [](const VerifyProblem& p) {
    std::cout << p.kind << ": " << p.storage_path;
    if (!p.sop_instance_uid.empty())
      std::cout << " (SOP Instance UID " << p.sop_instance_uid << ')';
    if (!p.detail.empty()) std::cout << ": " << p.detail;
    std::cout << '\n' << std::flush;
  };
  options.progress_every = 10000;
  options.on_progress = [total = *total](const VerifyReport& r) {
    std::cerr << "storage verify: " << r.rows_checked << " of about " << total << " rows, "
              << megabytes(r.bytes_read) << " read\n";
  };

  const auto started_ms = core::wall_clock_ms();
  const auto started = std::chrono::steady_clock::now();
  auto report = verify_storage(*db.index, db.config.data_dir, db.keyring.get(), options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  nlohmann::ordered_json details;
  details["digest_checked"] = !args.sizes_only;
  if (report.ok()) {
    details["rows_checked"] = report->rows_checked;
    details["intact"] = report->intact;
    details["missing"] = report->missing;
    details["wrong_size"] = report->wrong_size;
    details["content_changed"] = report->changed;
    details["unreadable"] = report->unreadable;
    if (report->size_only > 0) details["size_only"] = report->size_only;
    if (options.find_orphans) details["orphans"] = report->orphans;
    if (!report->orphan_error.empty()) details["orphan_error"] = report->orphan_error;
  } else {
    details["error"] = report.error().message;
  }
  auto event = cli_event("storage.verify", "storage", details, started_ms);
  event.outcome = report.ok() && report->damaged() == 0 ? "ok" : "failed";
  if (auto id = db.index->append_audit(event); !id.ok()) {
    std::cerr << "warning: audit row not written: " << id.error().message << '\n';
  }
  if (!report.ok()) {
    std::cerr << "storage verify: not finished: " << report.error().message << '\n';
    return 2;
  }
  std::cout << "storage verify: " << summary(*report);
  if (report->size_only > 0) {
    std::cout << " (" << report->size_only
              << " by size only: their rows carry a SHA-256 digest from before ADR 008, which "
                 "this check does not compute)";
  }
  if (!args.sizes_only) {
    std::cout << "; " << megabytes(report->bytes_read) << " read in "
              << fmt::format("{:.1f}", seconds) << " s";
  }
  std::cout << '\n';
  if (!report->orphan_error.empty()) {
    std::cout << "storage verify: the orphan listing stopped early: " << report->orphan_error
              << '\n';
  }
  if (options.find_orphans) {
    std::cout << "storage verify: " << report->orphans << " orphan files (no row names them) among "
              << report->files_listed << " files under storage/"
              << (report->orphans > 0 ? "; no instance uses them" : "") << '\n';
  }
  if (report->damaged() > 0) {
    std::cout << "storage verify: send the damaged instances again from their source: a resend "
                 "replaces a copy that is missing, cut short or changed\n";
    return 1;
  }
  return 0;
}

}  // namespace gw::app
