#include "app/db_commands.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/admin_index.h"
#include "app/encryption.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "index/open.h"

namespace gw::app {
namespace {

std::optional<int> open_configured(const DbArgs& args, ConfiguredIndex& out) {
  return open_configured_index(args.config, "db", out);
}

std::string versions_text(const index::EncryptionStatus& status) {
  std::string out;
  for (const auto& [version, rows] : status.rows_by_version) {
    if (!out.empty()) out += ", ";
    out += (version == 0 ? std::string("plaintext") : "key version " + std::to_string(version)) +
           ": " + std::to_string(rows);
  }
  return out.empty() ? "no rows" : out;
}

}  // namespace

int run_db_migrate(const DbArgs& args) {
  ConfiguredIndex db;
  if (auto rc = open_configured(args, db)) return *rc;
  auto version = db.index->schema_version();
  if (!version.ok()) return fail(version.error(), std::cerr);
  std::cout << "db migrate: schema version " << *version << " ("
            << (index::is_postgres_url(db.config.database.url) ? "postgresql" : "sqlite")
            << "), up to date\n";
  return 0;
}

int run_db_status(const DbArgs& args) {
  ConfiguredIndex db;
  if (auto rc = open_configured(args, db)) return *rc;
  auto status = db.index->encryption_status();
  if (!status.ok()) return fail(status.error(), std::cerr);
  std::cout << "field encryption: "
            << (status->current_key_version == 0
                    ? std::string("off (no key configured)")
                    : "on, key version " + std::to_string(status->current_key_version))
            << "\nrows (patients and studies): " << versions_text(*status) << '\n'
            << "file encryption (storage.encrypt): " << (db.config.storage.encrypt ? "on" : "off")
            << '\n';
  if (status->pgcrypto) std::cout << "pgcrypto: " << (*status->pgcrypto ? "yes" : "no") << '\n';
  return 0;
}

int run_db_rotate_key(const DbArgs& args) {
  if (args.batch <= 0 || args.batch > 100000) {
    std::cerr << "error: --batch must be 1-100000\n";
    return 2;
  }
  if (args.pause_ms < 0 || args.pause_ms > 60000) {
    std::cerr << "error: --pause-ms must be 0-60000\n";
    return 2;
  }
  ConfiguredIndex db;
  if (auto rc = open_configured(args, db)) return *rc;
  if (db.keyring->empty()) {
    std::cerr << "error: rotate-key: no encryption key is configured: set "
              << db.config.database.encryption_key_env << " (the new key) and "
              << db.config.database.encryption_key_env
              << "_PREVIOUS (the old one), or the key files in database.*\n";
    return 2;
  }
  RotationOptions options;
  options.batch = args.batch;
  options.fsync = db.config.storage.fsync;
  options.pause = std::chrono::milliseconds(args.pause_ms);
  options.on_progress = [](const RotationProgress& p) {
    std::cout << "rotate-key: " << p.rows_reencrypted << " rows re-encrypted, " << p.rows_left
              << " left; " << p.files_rewrapped << " of " << p.files_checked << " files rewrapped\n"
              << std::flush;
  };
  const auto started = core::wall_clock_ms();
  auto progress = rotate_keys(*db.index, db.config.data_dir, db.keyring, options);
  nlohmann::ordered_json details;
  details["key_version"] = db.keyring->current->version;
  if (progress.ok()) {
    details["rows_reencrypted"] = progress->rows_reencrypted;
    details["rows_left"] = progress->rows_left;
    details["files_rewrapped"] = progress->files_rewrapped;
    details["files_missing"] = progress->files_missing;
  } else {
    details["error"] = progress.error().message;
  }
  auto event = cli_event("db.rotate_key", "key:" + std::to_string(db.keyring->current->version),
                         details, started);
  event.outcome = progress.ok() && progress->done ? "ok" : "failed";
  if (auto id = db.index->append_audit(event); !id.ok()) {
    std::cerr << "warning: audit row not written: " << id.error().message << '\n';
  }
  if (!progress.ok()) {
    const int rc = fail(progress.error(), std::cerr);
    std::cerr << "rotate-key: not done: keep the previous key\n";
    return rc;
  }
  if (!progress->done) {
    if (progress->rows_left > 0) {
      std::cerr << "rotate-key: " << progress->rows_left
                << " rows are still under another key (in use by a writer); run it again\n";
    }
    if (progress->files_missing > 0) {
      std::cerr << "rotate-key: " << progress->files_missing << " of " << progress->files_listed
                << " stored files listed in the index were not found under "
                << db.config.data_dir.string() << ":\n";
      for (const auto& relative : progress->missing_files) std::cerr << "  " << relative << '\n';
      if (progress->files_missing > static_cast<std::int64_t>(progress->missing_files.size())) {
        std::cerr << "  ...\n";
      }
      std::cerr << "rotate-key: if they were deleted meanwhile, run it again; if the storage "
                   "volume is not mounted, mount it and run it again\n";
    }
    std::cerr << "rotate-key: not done: keep the previous key\n";
    return 1;
  }
  std::cout << "rotate-key: done: every encrypted value uses key version "
            << db.keyring->current->version;
  if (db.keyring->previous) {
    std::cout << "; the previous key (version " << db.keyring->previous->version
              << ") is no longer needed: remove it and reload the gateways";
  }
  std::cout << '\n';
  return 0;
}

}  // namespace gw::app
