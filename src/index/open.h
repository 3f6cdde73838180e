#pragma once
/// Opening the index named by `database.url`: the one place that knows the backends.
/// "" or "sqlite://" (index.db in data_dir), "sqlite:///abs/path.db", ":memory:" (tests):
/// SqliteIndex; "postgresql://…" or "postgres://…" (a libpq URI): PostgresIndex. Either way the
/// migrations run before it returns. A message never repeats a URL: it may hold a password.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "core/result.h"
#include "index/index.h"

namespace gw::index {

struct OpenOptions {
  std::string url;                 ///< database.url
  std::filesystem::path data_dir;  ///< for the SQLite default and relative paths
  bool synchronous = true;         ///< every commit durable before it returns (storage.fsync)
  /// PostgreSQL: a file holding the password (database.password_file); overrides the URL's
  /// and PGPASSWORD. Empty: the URL's, else libpq's own (PGPASSWORD, ~/.pgpass).
  std::filesystem::path password_file;
  std::size_t pool_size = 8;  ///< PostgreSQL: connections at most (database.pool_size)
};

Result<std::unique_ptr<Index>> open_index(const OpenOptions& options);

/// database.password_file's first line (open_index reads it for PostgreSQL; `config check` too).
/// kConfig when it cannot be read or is readable by group or others (like ~/.pgpass).
Result<std::string> read_password_file(const std::filesystem::path& path);

/// True for a postgresql:// or postgres:// URL.
bool is_postgres_url(const std::string& url);

}  // namespace gw::index
