#pragma once
/// The SQLite schema as numbered migrations. Each runs once, in order, in its own transaction,
/// and the database records the last one applied in `PRAGMA user_version`.
/// Never edit a migration that has shipped: append a new one with the next version.

#include <vector>

namespace gw::index {

struct Migration {
  int version;      ///< 1, 2, 3, … without gaps
  const char* sql;  ///< one or more statements
};

/// All migrations, ascending by version.
const std::vector<Migration>& sqlite_migrations();

}  // namespace gw::index
