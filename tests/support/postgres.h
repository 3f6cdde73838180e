#pragma once
/// A real PostgreSQL (Debian package `postgresql`, 15) as a test peer: initdb in a temp dir, the
/// server on a free loopback port with its socket in that dir, a fresh database per test, stopped
/// by PID. PostgreSQL refuses to run as root, so when the tests run as root the binaries run as
/// the `postgres` system user (`runuser -u postgres --`) and the temp dir belongs to it; a
/// non-root user runs them directly.
///
/// Local (socket) connections are trusted, for psql; TCP connections need the password
/// (scram-sha-256), so the gateway under test connects the way production does.

#include <cstdint>
#include <memory>
#include <string>

#include "support/process.h"
#include "support/temp_dir.h"

namespace gw::test {

class PostgresServer {
 public:
  /// Starts a server; throws std::runtime_error (with initdb's or the server's log) when it
  /// does not come up within 30 s.
  static std::unique_ptr<PostgresServer> start();
  /// One server per test process, started on first use and stopped at exit.
  static PostgresServer& shared();

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  /// Stops the server: SIGINT (fast shutdown) to the postmaster, a bounded wait, then SIGKILL.
  ~PostgresServer();

  std::uint16_t port() const { return port_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }

  /// A new empty database (CREATE DATABASE); returns its name.
  std::string create_database();
  /// postgresql://USER:PASSWORD@127.0.0.1:PORT/DBNAME
  std::string url(const std::string& dbname) const;
  /// postgresql://USER@127.0.0.1:PORT/DBNAME (the password given some other way).
  std::string url_without_password(const std::string& dbname) const;

  /// psql -c `sql` on `dbname` as the superuser over the local socket (-At: bare values).
  CommandResult psql(const std::string& dbname, const std::string& sql) const;
  /// pg_dump of `dbname` (plain SQL on stdout) as the superuser over the local socket.
  CommandResult pg_dump(const std::string& dbname) const;
  /// The server's log so far.
  std::string log() const;

 private:
  PostgresServer() = default;
  /// One attempt on a fresh port; false when the server exited (port taken), throws otherwise.
  bool try_start();
  void stop() noexcept;
  /// argv run as the postgres user when we are root.
  std::vector<std::string> as_postgres(std::vector<std::string> argv) const;

  TempDir dir_{"gw-postgres"};
  std::string bin_dir_;
  std::string user_ = "gwtest";
  std::string password_;
  std::uint16_t port_ = 0;
  int databases_ = 0;
  std::unique_ptr<Process> process_;
  /// Write end of the server's lifeline pipe: when this process ends, however it ends, the
  /// pipe closes and the wrapper shell stops the server (see try_start). -1 when none.
  int lifeline_ = -1;
};

}  // namespace gw::test
