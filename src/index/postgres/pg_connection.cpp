#include "index/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <utility>

#include "core/check.h"

namespace gw::index::pg {
namespace {

using core::ErrorCode;
using core::make_error;

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

/// Replaces every occurrence of `secret` in `text` (libpq messages should not hold it, but a
/// password never reaches a log on the strength of "should").
std::string scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
    text.replace(pos, secret.size(), "***");
    pos += 3;
  }
  return text;
}

struct ConninfoDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

/// The URL's fields by keyword (host, port, dbname, user, password), without connecting.
Result<std::unique_ptr<PQconninfoOption, ConninfoDeleter>> parse_url(const std::string& url) {
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> parsed(
      PQconninfoParse(url.c_str(), &raw_error));
  // libpq's parse errors quote the offending part of the URL, which may be the password: the
  // message is not passed on.
  PQfreemem(raw_error);
  if (!parsed) {
    return make_error(ErrorCode::kConfig,
                      "database.url: libpq cannot parse this postgresql:// URL (special "
                      "characters in the user name or password must be percent-encoded)");
  }
  return parsed;
}

std::string field(const PQconninfoOption* options, std::string_view keyword) {
  for (const auto* o = options; o->keyword != nullptr; ++o) {
    if (keyword == o->keyword && o->val != nullptr) return o->val;
  }
  return {};
}

/// One host of a libpq host list is a Unix socket directory ("/run/postgresql", "@abstract")
/// or a loopback name or address.
bool local_host(std::string_view host) {
  if (host.starts_with('/') || host.starts_with('@')) return true;
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  return host.starts_with("127.");
}

}  // namespace

bool may_use_plaintext_over_network(std::string_view host, std::string_view hostaddr,
                                    std::string_view sslmode) {
  if (sslmode != "prefer" && sslmode != "allow" && sslmode != "disable" && !sslmode.empty()) {
    return false;  // require, verify-ca, verify-full
  }
  // hostaddr, when set, is where libpq connects (host then only names the server for TLS).
  const std::string_view where = hostaddr.empty() ? host : hostaddr;
  if (where.empty()) return false;  // libpq's default: the local socket
  std::size_t start = 0;
  while (start <= where.size()) {
    auto end = where.find(',', start);
    if (end == std::string_view::npos) end = where.size();
    const auto one = where.substr(start, end - start);
    // An empty entry of a list is the default socket.
    if (!one.empty() && !local_host(one)) return true;
    start = end + 1;
  }
  return false;
}

// ---- ServerName ----

std::string ServerName::describe() const {
  std::string out = (host.empty() ? std::string("local socket") : host) + ":" +
                    (port.empty() ? std::string("5432") : port);
  if (!dbname.empty()) out += "/" + dbname;
  if (!user.empty()) out += " as " + user;
  return out;
}

Result<ServerName> parse_server_name(const ConnectOptions& options) {
  GW_ASSIGN_OR_RETURN(auto parsed, parse_url(options.url));
  ServerName name;
  name.host = field(parsed.get(), "host");
  if (name.host.empty()) name.host = field(parsed.get(), "hostaddr");
  name.port = field(parsed.get(), "port");
  name.dbname = field(parsed.get(), "dbname");
  name.user = field(parsed.get(), "user");
  return name;
}

// ---- Rows ----

void Rows::Deleter::operator()(pg_result* r) const { PQclear(r); }

int Rows::size() const { return PQntuples(result_.get()); }

std::int64_t Rows::affected() const {
  const char* n = PQcmdTuples(result_.get());
  return n == nullptr || *n == '\0' ? 0 : std::strtoll(n, nullptr, 10);
}

bool Rows::is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }

std::string Rows::text(int row, int col) const {
  return std::string(PQgetvalue(result_.get(), row, col),
                     static_cast<std::size_t>(PQgetlength(result_.get(), row, col)));
}

std::int64_t Rows::int64(int row, int col) const {
  if (is_null(row, col)) return 0;
  return std::strtoll(PQgetvalue(result_.get(), row, col), nullptr, 10);
}

std::optional<std::vector<std::uint8_t>> Rows::bytea(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  const char* v = PQgetvalue(result_.get(), row, col);
  const auto n = static_cast<std::size_t>(PQgetlength(result_.get(), row, col));
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  // The hex output form, which configure_session() sets for every session: "\x" + digits. The
  // escape form would otherwise read as garbage (or nothing), silently.
  GW_CHECK(n >= 2 && n % 2 == 0 && v[0] == '\\' && v[1] == 'x');
  out.reserve((n - 2) / 2);
  for (std::size_t i = 2; i + 1 < n; i += 2) {
    const int hi = nibble(v[i]);
    const int lo = nibble(v[i + 1]);
    GW_CHECK(hi >= 0 && lo >= 0);
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

bool Rows::boolean(int row, int col) const {
  const char* v = PQgetvalue(result_.get(), row, col);
  return v != nullptr && v[0] == 't';
}

// ---- PgConnection ----

void PgConnection::Deleter::operator()(pg_conn* c) const { PQfinish(c); }

PgConnection::PgConnection(std::unique_ptr<pg_conn, Deleter> conn, ServerName server,
                           std::string password, bool synchronous)
    : conn_(std::move(conn)),
      server_(std::move(server)),
      password_(std::move(password)),
      synchronous_(synchronous) {}

Result<std::unique_ptr<PgConnection>> PgConnection::connect(const ConnectOptions& options) {
  GW_ASSIGN_OR_RETURN(auto parsed, parse_url(options.url));
  GW_ASSIGN_OR_RETURN(auto server, parse_server_name(options));
  std::string password =
      options.password.empty() ? field(parsed.get(), "password") : options.password;
  const std::string timeout = std::to_string(options.connect_timeout_s);
  // Keywords before "dbname" are defaults the URL may override; "password" after it overrides
  // the URL's (database.password_file wins). TCP keepalives and a user timeout notice a peer
  // that vanished (a failover, a dropped NAT entry) in about a minute instead of the kernel's
  // two hours: a pool connection otherwise hangs on it, and the C-STOREs waiting with it.
  std::vector<const char*> keys = {"connect_timeout",     "keepalives",       "keepalives_idle",
                                   "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                   "application_name",    "client_encoding",  "dbname"};
  std::vector<const char*> values = {
      timeout.c_str(), "1", "30", "10", "3", "30000", "dicom-gw", "UTF8", options.url.c_str()};
  if (!options.password.empty()) {
    keys.push_back("password");
    values.push_back(options.password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  std::unique_ptr<pg_conn, Deleter> conn(
      PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (!conn) return make_error(ErrorCode::kResourceExhausted, "PostgreSQL: out of memory");
  std::unique_ptr<PgConnection> c(
      new PgConnection(std::move(conn), server, std::move(password), options.synchronous));
  if (PQstatus(c->conn_.get()) != CONNECTION_OK) {
    return make_error(ErrorCode::kDatabase, "cannot connect to PostgreSQL at " + server.describe() +
                                                ": " + c->connection_message());
  }
  GW_RETURN_IF_ERROR(c->configure_session());
  return c;
}

Status PgConnection::configure_session() {
  // storage.fsync: false trades the last commits on a server crash for speed, as SQLite's
  // synchronous=NORMAL does; the database stays consistent either way.
  if (!synchronous_) GW_RETURN_IF_ERROR(exec_script("SET synchronous_commit = off", "configure"));
  // Rows::bytea reads the hex form only, whatever the server's or database's default is.
  GW_RETURN_IF_ERROR(exec_script("SET bytea_output = hex", "configure"));
  return core::ok_status();
}

std::string PgConnection::connection_message() const {
  return scrub(trim(PQerrorMessage(conn_.get())), password_);
}

bool PgConnection::healthy() const { return PQstatus(conn_.get()) == CONNECTION_OK; }

bool PgConnection::transaction_failed() const {
  return PQtransactionStatus(conn_.get()) == PQTRANS_INERROR;
}

std::string PgConnection::setting(std::string_view keyword) const {
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> options(PQconninfo(conn_.get()));
  if (!options) return {};
  return field(options.get(), keyword);
}

Status PgConnection::reset() {
  prepared_.clear();
  PQreset(conn_.get());
  if (!healthy()) {
    return make_error(ErrorCode::kDatabase,
                      "lost the connection to PostgreSQL at " + server_.describe() +
                          " and could not reconnect: " + connection_message());
  }
  return configure_session();
}

core::Error PgConnection::error_of(pg_result* result, std::string_view what) const {
  if (!healthy()) {
    return make_error(ErrorCode::kDatabase, std::string(what) +
                                                ": lost the connection to PostgreSQL at " +
                                                server_.describe() + " (" + connection_message() +
                                                "); it is reopened on the next call");
  }
  // The primary message only: DETAIL lines may quote row values (patient data).
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state != nullptr ? state : "";
  std::string message = std::string(what) + ": " +
                        (primary != nullptr ? scrub(primary, password_) : connection_message());
  if (!sqlstate.empty()) message += " (SQLSTATE " + sqlstate + ")";
  ErrorCode code = ErrorCode::kDatabase;
  if (sqlstate == "23505") code = ErrorCode::kAlreadyExists;
  if (sqlstate == "40001" || sqlstate == "40P01") code = ErrorCode::kConflict;
  return make_error(code, std::move(message));
}

Result<Rows> PgConnection::exec(const std::string& sql, const Params& params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    // Parameter types are left to the server to infer; the SQL casts where it cannot.
    std::string name = "gw_" + std::to_string(prepared_.size() + 1);
    PGresult* raw = PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr);
    Rows owned(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK) return error_of(raw, "prepare");
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.values().size());
  for (const auto& v : params.values()) values.push_back(v ? v->c_str() : nullptr);
  PGresult* raw = PQexecPrepared(conn_.get(), it->second.c_str(), static_cast<int>(values.size()),
                                 values.data(), nullptr, nullptr, 0);
  Rows rows(raw);
  const auto status = PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return error_of(raw, "query");
  return rows;
}

Status PgConnection::exec_script(const char* sql, std::string_view what) {
  PGresult* raw = PQexec(conn_.get(), sql);
  Rows rows(raw);
  const auto status = PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return error_of(raw, what);
  return core::ok_status();
}

Result<std::string> PgConnection::exec_command(const char* sql, std::string_view what) {
  PGresult* raw = PQexec(conn_.get(), sql);
  Rows rows(raw);
  const auto status = PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return error_of(raw, what);
  const char* tag = PQcmdStatus(raw);
  return std::string(tag != nullptr ? tag : "");
}

// ---- Transaction ----

Transaction::~Transaction() {
  if (open_) (void)conn_.exec_script("ROLLBACK", "rollback");
}

Status Transaction::begin() {
  GW_RETURN_IF_ERROR(conn_.exec_script("BEGIN", "begin"));
  open_ = true;
  return core::ok_status();
}

Status Transaction::commit() {
  open_ = false;
  // Broken before COMMIT was sent: the server rolls back a transaction whose session ends.
  if (!conn_.healthy()) {
    return make_error(ErrorCode::kDatabase, "commit: lost the connection to PostgreSQL at " +
                                                conn_.server().describe() +
                                                " before COMMIT; nothing was committed");
  }
  auto tag = conn_.exec_command("COMMIT", "commit");
  if (!tag.ok()) {
    // COMMIT went out and no answer came back: the server may have committed just before the
    // connection broke. Not a failure the caller may clean up after as if nothing was written.
    if (!conn_.healthy()) {
      return make_error(ErrorCode::kOutcomeUnknown,
                        tag.error().message + " (whether the transaction committed is unknown)");
    }
    return tag.error();
  }
  // A transaction in which a statement failed ends in ROLLBACK, with COMMIT's success status.
  if (*tag != "COMMIT") {
    return make_error(ErrorCode::kDatabase,
                      "commit: PostgreSQL rolled the transaction back (a statement in it had "
                      "failed; answered " +
                          *tag + ")");
  }
  return core::ok_status();
}

}  // namespace gw::index::pg
