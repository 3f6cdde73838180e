#include "index/postgres/pg_pool.h"

#include <utility>

namespace gw::index::pg {

using core::ErrorCode;
using core::make_error;

Result<std::unique_ptr<PgPool>> PgPool::create(ConnectOptions options, std::size_t size) {
  GW_ASSIGN_OR_RETURN(auto server, parse_server_name(options));
  GW_ASSIGN_OR_RETURN(auto first, PgConnection::connect(options));
  std::unique_ptr<PgPool> pool(new PgPool(std::move(options), size == 0 ? 1 : size, server));
  pool->open_ = 1;
  pool->idle_.push_back(std::move(first));
  return pool;
}

PgPool::Lease::~Lease() {
  if (conn_ && pool_ != nullptr) pool_->give_back(std::move(conn_));
}

void PgPool::give_back(std::unique_ptr<PgConnection> conn) {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

Result<PgPool::Lease> PgPool::acquire(std::chrono::milliseconds wait) {
  std::unique_ptr<PgConnection> conn;
  bool open_new = false;
  {
    std::unique_lock lock(mu_);
    const bool ready = cv_.wait_for(lock, wait, [&] { return !idle_.empty() || open_ < size_; });
    if (!ready) {
      return make_error(ErrorCode::kResourceExhausted,
                        "all " + std::to_string(size_) + " connections to PostgreSQL at " +
                            server_.describe() + " stayed busy for " +
                            std::to_string(wait.count()) + " ms");
    }
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++open_;  // reserved now, opened below without the lock
      open_new = true;
    }
  }
  // A connection that broke (server restarted, network cut) is reopened before use; when that
  // fails, the slot is freed and the caller gets the reason.
  Status status = core::ok_status();
  if (open_new) {
    auto opened = PgConnection::connect(options_);
    if (opened.ok()) {
      conn = std::move(opened).value();
    } else {
      status = opened.error();
    }
  } else if (!conn->healthy()) {
    status = conn->reset();
  }
  if (!status.ok()) {
    conn.reset();
    {
      std::lock_guard lock(mu_);
      --open_;
    }
    cv_.notify_one();
    return std::move(status).error();
  }
  return Lease(this, std::move(conn));
}

}  // namespace gw::index::pg
