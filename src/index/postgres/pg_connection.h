#pragma once
/// Internal to the PostgreSQL backend: a small RAII layer over libpq. A PgConnection owns one
/// PGconn; statements go out with their parameters separate from the SQL text (extended query
/// protocol: PQprepare once per connection and SQL text, then PQexecPrepared), so no value is
/// ever spliced into SQL. Values travel as text; NULL is an absent optional.
/// Include only from src/index/postgres/.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

struct pg_conn;
struct pg_result;

namespace gw::index::pg {

using core::Result;
using core::Status;

/// Statement parameters ($1, $2, …), in order.
class Params {
 public:
  Params& add(std::string_view text) {
    values_.emplace_back(std::string(text));
    return *this;
  }
  Params& add(const char* text) { return add(std::string_view(text)); }
  Params& add(std::int64_t value) {
    values_.emplace_back(std::to_string(value));
    return *this;
  }
  Params& add(int value) { return add(std::int64_t{value}); }
  Params& add(bool value) {
    values_.emplace_back(value ? "true" : "false");
    return *this;
  }
  Params& add(std::optional<std::int64_t> value) {
    if (value) return add(*value);
    values_.emplace_back(std::nullopt);
    return *this;
  }
  /// A bytea in PostgreSQL's hex text form ("\\x…"), or NULL for nullopt.
  Params& add(const std::optional<std::vector<std::uint8_t>>& blob) {
    if (!blob) {
      values_.emplace_back(std::nullopt);
      return *this;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text = "\\x";
    text.reserve(2 + blob->size() * 2);
    for (auto b : *blob) {
      text.push_back(kHex[b >> 4]);
      text.push_back(kHex[b & 0xf]);
    }
    values_.emplace_back(std::move(text));
    return *this;
  }
  /// Adds `value` and returns its placeholder ("$3"), for SQL built from optional filters.
  template <class T>
  std::string placeholder(T value) {
    add(value);
    return "$" + std::to_string(values_.size());
  }
  const std::vector<std::optional<std::string>>& values() const { return values_; }

 private:
  std::vector<std::optional<std::string>> values_;
};

/// A statement's result rows (owned PGresult).
class Rows {
 public:
  struct Deleter {
    void operator()(pg_result* r) const;
  };
  explicit Rows(pg_result* result) : result_(result) {}

  int size() const;
  bool empty() const { return size() == 0; }
  /// Rows changed by INSERT/UPDATE/DELETE (PQcmdTuples); 0 for others.
  std::int64_t affected() const;
  bool is_null(int row, int col) const;
  std::string text(int row, int col) const;
  std::int64_t int64(int row, int col) const;
  bool boolean(int row, int col) const;
  /// A bytea column; nullopt for NULL. Every session sets bytea_output = hex
  /// (configure_session), so any other form is a broken invariant (GW_CHECK), never a value.
  std::optional<std::vector<std::uint8_t>> bytea(int row, int col) const;

 private:
  std::unique_ptr<pg_result, Deleter> result_;
};

/// Where the server is, for messages: "host:port/dbname as user" — never the password.
struct ServerName {
  std::string host;
  std::string port;
  std::string dbname;
  std::string user;
  std::string describe() const;
};

struct ConnectOptions {
  std::string url;             ///< postgresql://… (a libpq connection URI)
  std::string password;        ///< overrides the URL's (database.password_file); may be empty
  bool synchronous = true;     ///< false: synchronous_commit=off (storage.fsync: false)
  int connect_timeout_s = 10;  ///< unless the URL sets connect_timeout
};

/// Parses the URL without connecting (libpq's own parser): where it points and whether it
/// parses at all. The message never repeats the URL.
Result<ServerName> parse_server_name(const ConnectOptions& options);

/// Whether a connection with these effective settings (libpq keywords host, hostaddr, sslmode;
/// host may list several) may travel in plaintext over a network: sslmode prefer (libpq's
/// default), allow or disable, and some host that is neither a Unix socket nor loopback.
bool may_use_plaintext_over_network(std::string_view host, std::string_view hostaddr,
                                    std::string_view sslmode);

class PgConnection {
 public:
  struct Deleter {
    void operator()(pg_conn* c) const;
  };

  /// Connects (blocking). kDatabase naming host:port on failure.
  static Result<std::unique_ptr<PgConnection>> connect(const ConnectOptions& options);

  /// Runs one statement with parameters; the statement is prepared on first use on this
  /// connection. Errors: kDatabase with libpq's message; a unique violation is kAlreadyExists,
  /// serialization failures and deadlocks kConflict (retryable), a lost connection kDatabase
  /// saying so (the pool reconnects before the next use).
  Result<Rows> exec(const std::string& sql, const Params& params = {});
  /// Runs SQL text that may hold several statements and no parameters (migrations, BEGIN…).
  Status exec_script(const char* sql, std::string_view what);
  /// Runs one parameterless command; its command tag (PQcmdStatus: "COMMIT", "ROLLBACK", …).
  Result<std::string> exec_command(const char* sql, std::string_view what);

  /// The connection's effective value of a libpq keyword (PQconninfo: the URL, the defaults
  /// connect() adds, the environment); empty when unset. Never ask it for "password".
  std::string setting(std::string_view keyword) const;
  /// True after a statement failed inside a transaction block: PostgreSQL then refuses every
  /// statement until ROLLBACK, and a COMMIT answers ROLLBACK.
  bool transaction_failed() const;
  /// False once the connection broke (the pool resets it before handing it out again).
  bool healthy() const;
  /// Reconnects with the original parameters; forgets prepared statements.
  Status reset();
  const ServerName& server() const { return server_; }

 private:
  PgConnection(std::unique_ptr<pg_conn, Deleter> conn, ServerName server, std::string password,
               bool synchronous);
  /// Session settings, after connect and after every reset.
  Status configure_session();
  core::Error error_of(pg_result* result, std::string_view what) const;
  /// libpq's message for the connection, trimmed, the password scrubbed.
  std::string connection_message() const;

  std::unique_ptr<pg_conn, Deleter> conn_;
  ServerName server_;
  std::string password_;  ///< only to scrub it from libpq messages; never logged
  bool synchronous_ = true;
  /// SQL text -> prepared statement name on this connection.
  std::unordered_map<std::string, std::string> prepared_;
};

/// BEGIN … COMMIT on one connection; rolls back when destroyed uncommitted.
/// commit() fails with kDatabase when the server rolled back (a statement of the transaction
/// had failed), and with kOutcomeUnknown when the connection broke during COMMIT: the server may
/// have committed or not, so the caller must keep whatever a committed row would name.
class Transaction {
 public:
  explicit Transaction(PgConnection& conn) : conn_(conn) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status begin();
  Status commit();

 private:
  PgConnection& conn_;
  bool open_ = false;
};

}  // namespace gw::index::pg
