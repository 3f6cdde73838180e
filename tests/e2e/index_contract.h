#pragma once
/// The index contract suite: every behaviour of index::Index, run unchanged against SqliteIndex
/// (a database file in a temp dir) and PostgresIndex (a fresh database on a real PostgreSQL 15
/// that this test process starts, support/postgres.h). Each suite derives from IndexContract
/// and is instantiated with INSTANTIATE_INDEX_CONTRACT.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "index/index.h"
#include "index/open.h"
#include "support/postgres.h"
#include "support/temp_dir.h"

namespace gw::index {

enum class Backend { kSqlite, kPostgres };

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

class IndexContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      server_ = &test::PostgresServer::shared();
      database_ = server_->create_database();
    }
    index_ = open();
    ASSERT_NE(index_, nullptr);
  }

  bool postgres() const { return GetParam() == Backend::kPostgres; }

  /// database.url of this test's database.
  std::string url() const {
    return postgres() ? server_->url(database_) : "sqlite://" + (dir_.path() / "index.db").string();
  }

  /// Another Index on the same database: a reopen after index_.reset(), or a second node.
  std::unique_ptr<Index> open() {
    OpenOptions options;
    options.url = url();
    options.data_dir = dir_.path();
    options.pool_size = 4;
    auto index = open_index(options);
    EXPECT_TRUE(index.ok()) << (index.ok() ? "" : index.error().message);
    return index.ok() ? std::move(index).value() : nullptr;
  }

  test::TempDir dir_{"gw-index-contract"};
  test::PostgresServer* server_ = nullptr;
  std::string database_;
  std::unique_ptr<Index> index_;
};

}  // namespace gw::index

#define INSTANTIATE_INDEX_CONTRACT(Suite)                                                \
  INSTANTIATE_TEST_SUITE_P(                                                              \
      Backends, Suite,                                                                   \
      ::testing::Values(::gw::index::Backend::kSqlite, ::gw::index::Backend::kPostgres), \
      ::gw::index::backend_name)
