#pragma once
/// The embedded index backend: one SQLite database (WAL, synchronous=FULL, foreign keys on).
/// SQL lives in this folder only; callers see the backend-neutral Index interface.

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "index/index.h"

struct sqlite3;
struct sqlite3_stmt;

namespace gw::index {

class SqliteIndex : public Index {
 public:
  /// Opens (creating if needed) the database file, or an in-memory database for ":memory:", sets
  /// the connection pragmas and applies pending migrations. The parent directory must exist.
  static Result<std::unique_ptr<SqliteIndex>> open(const std::filesystem::path& db_path_or_memory);

  ~SqliteIndex() override;
  SqliteIndex(const SqliteIndex&) = delete;
  SqliteIndex& operator=(const SqliteIndex&) = delete;

  Result<InsertResult> insert_instance(const InstanceRecord& record,
                                       DuplicatePolicy policy) override;
  Result<std::optional<InstanceRecord>> find_instance(const std::string& sop_uid) override;
  Result<std::vector<StudySummary>> list_studies(const StudyQuery& query) override;
  Result<std::optional<StudySummary>> find_study(const std::string& study_uid) override;
  Result<std::vector<SeriesSummary>> list_series(const std::string& study_uid) override;
  Result<std::vector<InstanceRecord>> list_instances(const std::string& series_uid,
                                                     std::int64_t limit,
                                                     std::int64_t offset) override;
  Result<std::int64_t> count_instances() override;
  Result<int> schema_version() override;

 private:
  struct DbDeleter {
    void operator()(sqlite3* db) const;
  };
  struct StmtDeleter {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;
  class Statement;
  class Transaction;

  explicit SqliteIndex(DbPtr db);

  // The *_locked helpers expect mu_ to be held by the caller.
  Status configure_locked(bool in_memory);
  Status migrate_locked();
  Result<int> user_version_locked();
  Status exec_locked(const char* sql);
  /// The cached prepared statement for `sql`, reset and with bindings cleared when released.
  Result<Statement> statement_locked(const std::string& sql);
  core::Error error_locked(int rc, const char* what) const;
  Result<std::vector<StudySummary>> query_studies_locked(const std::string& where,
                                                         const std::vector<std::string>& args,
                                                         std::int64_t limit, std::int64_t offset);

  /// Locking rule: mu_ guards db_ and statements_. Every public method holds it for its whole
  /// duration, so one connection serves all threads and a transaction is never interleaved
  /// with another thread's statements. Nothing called with mu_ held calls back into this class.
  std::mutex mu_;
  DbPtr db_;  // declared before statements_: statements are finalized before the close
  std::unordered_map<std::string, StmtPtr> statements_;
};

}  // namespace gw::index
