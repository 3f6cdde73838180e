#pragma once
/// Internal to the PostgreSQL backend: a small fixed-size pool of connections. The index is
/// called from I/O-completion workers, forwarders and HTTP threads at once; each call borrows
/// one connection for its duration, so calls run in parallel on the server (PostgreSQL takes
/// care of row locks) instead of queueing behind one mutex. Connections open on demand up to
/// the pool size; a broken one is reset before it is handed out again.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "index/postgres/pg_connection.h"

namespace gw::index::pg {

class PgPool {
 public:
  /// Opens the first connection now, so a wrong URL or an unreachable server fails here.
  static Result<std::unique_ptr<PgPool>> create(ConnectOptions options, std::size_t size);
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  /// A borrowed connection, returned to the pool when the lease ends.
  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConnection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    PgConnection& operator*() const { return *conn_; }
    PgConnection* operator->() const { return conn_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  /// Waits up to `wait` for a free connection (kResourceExhausted after that).
  Result<Lease> acquire(std::chrono::milliseconds wait = std::chrono::seconds(30));
  const ServerName& server() const { return server_; }
  std::size_t size() const { return size_; }

 private:
  PgPool(ConnectOptions options, std::size_t size, ServerName server)
      : options_(std::move(options)), size_(size), server_(std::move(server)) {}
  void give_back(std::unique_ptr<PgConnection> conn);

  const ConnectOptions options_;
  const std::size_t size_;
  const ServerName server_;
  /// Locking rule: mu_ guards idle_ and open_ (connections that exist, idle or lent). It is
  /// never held while talking to the server.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::size_t open_ = 0;
};

}  // namespace gw::index::pg
