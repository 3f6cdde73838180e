#pragma once
/// Internal to the SQLite backend: a borrowed cached statement and the write transaction, shared
/// by sqlite_index.cpp (instances) and sqlite_outbox.cpp (outbox). Include only from this folder.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/sqlite/sqlite_index.h"

namespace gw::index {

/// A borrowed cached statement. Bind errors are remembered and reported by step(); the
/// destructor resets the statement and clears its bindings so the cache can hand it out again.
class SqliteIndex::Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Statement& bind(int index, std::string_view text) {
    remember(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  Statement& bind(int index, std::int64_t value) {
    remember(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  /// A BLOB, or NULL for nullopt.
  Statement& bind(int index, const std::optional<std::vector<std::uint8_t>>& blob) {
    if (!blob) {
      remember(sqlite3_bind_null(stmt_, index));
    } else {
      remember(sqlite3_bind_blob64(stmt_, index, blob->data(), blob->size(), SQLITE_TRANSIENT));
    }
    return *this;
  }

  /// true: a row is available; false: done.
  Result<bool> step(const char* what) {
    if (bind_rc_ != SQLITE_OK) return error(bind_rc_, what);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return error(rc, what);
  }
  /// Runs a statement that returns no rows (or whose rows are ignored).
  Status run(const char* what) {
    for (;;) {
      GW_ASSIGN_OR_RETURN(bool row, step(what));
      if (!row) return core::ok_status();
    }
  }
  /// Rows changed by the last run() of a write statement on this connection.
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  /// The rowid of the last INSERT on this connection.
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

  std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    if (p == nullptr) return {};
    return {reinterpret_cast<const char*>(p),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  /// A BLOB column; nullopt for NULL.
  std::optional<std::vector<std::uint8_t>> blob(int column) const {
    if (is_null(column)) return std::nullopt;
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
    if (p == nullptr) return std::vector<std::uint8_t>();
    return std::vector<std::uint8_t>(p, p + n);
  }

  core::Error error(int rc, const char* what) const {
    std::string message = std::string(what) + ": " + sqlite3_errmsg(db_);
    if ((rc & 0xff) == SQLITE_FULL) {
      return core::make_error(core::ErrorCode::kResourceExhausted, "database full: " + message);
    }
    return core::make_error(core::ErrorCode::kDatabase, std::move(message));
  }

 private:
  void remember(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

/// BEGIN IMMEDIATE … COMMIT; rolls back when destroyed without a successful commit().
/// IMMEDIATE takes the write lock up front, so another connection (the CLI, a second process)
/// makes us wait busy_timeout instead of failing half-way through.
class SqliteIndex::Transaction {
 public:
  /// `flushed` false: the commit does not fsync the WAL (synchronous=NORMAL for this one
  /// transaction, FULL again afterwards); the caller makes it durable (ADR 012).
  explicit Transaction(SqliteIndex& index, bool flushed = true)
      : index_(index), relax_(!flushed && index.synchronous_) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (active_ && sqlite3_get_autocommit(index_.db_.get()) == 0) {
      sqlite3_exec(index_.db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    if (relaxed_ && sqlite3_exec(index_.db_.get(), "PRAGMA synchronous = FULL", nullptr, nullptr,
                                 nullptr) != SQLITE_OK) {
      // Never leave the connection unflushed for the writes that follow.
      index_.synchronous_restore_failed_ = true;
    }
  }

  Status begin() {
    if (index_.synchronous_restore_failed_ && !relax_) {
      GW_RETURN_IF_ERROR(index_.exec_locked("PRAGMA synchronous = FULL"));
      index_.synchronous_restore_failed_ = false;
    }
    if (relax_) {
      GW_RETURN_IF_ERROR(index_.exec_locked("PRAGMA synchronous = NORMAL"));
      relaxed_ = true;
    }
    GW_RETURN_IF_ERROR(index_.exec_locked("BEGIN IMMEDIATE"));
    active_ = true;
    return core::ok_status();
  }
  Status commit() {
    GW_RETURN_IF_ERROR(index_.exec_locked("COMMIT"));
    active_ = false;
    return core::ok_status();
  }

 private:
  SqliteIndex& index_;
  const bool relax_;
  bool relaxed_ = false;
  bool active_ = false;
};

}  // namespace gw::index
