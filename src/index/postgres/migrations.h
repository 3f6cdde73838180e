#pragma once
/// The PostgreSQL schema as numbered migrations, separate from SQLite's (the two dialects
/// differ; the Index contract is what they share). Each runs once, in order, in its own
/// transaction; `schema_migrations` records the versions applied. Several nodes may start at
/// once: the runner holds an advisory lock while it migrates.
/// Never edit a migration that has shipped: append a new one with the next version.

#include <vector>

namespace gw::index {

struct PgMigration {
  int version;      ///< 1, 2, 3, … without gaps
  const char* sql;  ///< one or more statements
};

/// All migrations, ascending by version.
const std::vector<PgMigration>& postgres_migrations();

}  // namespace gw::index
