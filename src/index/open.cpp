#include "index/open.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string_view>

#include "index/postgres/postgres_index.h"
#include "index/sqlite/sqlite_index.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

Result<std::filesystem::path> sqlite_path(const std::string& url,
                                          const std::filesystem::path& data_dir) {
  constexpr std::string_view kSqlite = "sqlite://";
  constexpr std::string_view kMemory = ":memory:";
  if (url == kMemory) return std::filesystem::path(kMemory);
  // "sqlite://" alone means index.db in data_dir; "sqlite:///abs.db" an absolute path; a
  // relative path is taken relative to data_dir.
  const std::string rest = url.empty() ? std::string() : url.substr(kSqlite.size());
  if (rest == kMemory) return std::filesystem::path(kMemory);
  if (!rest.empty() && std::filesystem::path(rest).is_absolute()) {
    return std::filesystem::path(rest);
  }
  if (data_dir.empty()) {
    return make_error(ErrorCode::kConfig, "database.url: a relative SQLite path needs data_dir");
  }
  return data_dir / (rest.empty() ? std::string("index.db") : rest);
}

}  // namespace

Result<std::string> read_password_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(ErrorCode::kConfig, "database.password_file: cannot read " + path.string());
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return make_error(ErrorCode::kConfig, "database.password_file: " + path.string() +
                                              " is readable by others; chmod 0600 (or 0400) it");
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return make_error(ErrorCode::kConfig, "database.password_file: cannot read " + path.string());
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

bool is_postgres_url(const std::string& url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

Result<std::unique_ptr<Index>> open_index(const OpenOptions& options) {
  const std::string& url = options.url;
  if (is_postgres_url(url)) {
    PostgresOptions pg;
    pg.url = url;
    pg.synchronous = options.synchronous;
    pg.pool_size = options.pool_size;
    if (!options.password_file.empty()) {
      GW_ASSIGN_OR_RETURN(pg.password, read_password_file(options.password_file));
    }
    GW_ASSIGN_OR_RETURN(auto index, PostgresIndex::open(pg));
    return std::unique_ptr<Index>(std::move(index));
  }
  if (url.empty() || url == ":memory:" || url.starts_with("sqlite://")) {
    GW_ASSIGN_OR_RETURN(auto path, sqlite_path(url, options.data_dir));
    GW_ASSIGN_OR_RETURN(auto index, SqliteIndex::open(path, options.synchronous));
    return std::unique_ptr<Index>(std::move(index));
  }
  // Only the scheme is echoed: a URL may carry credentials.
  const auto colon = url.find(':');
  return make_error(ErrorCode::kUnsupported,
                    "database.url: unsupported scheme '" +
                        (colon == std::string::npos ? std::string() : url.substr(0, colon)) + "'");
}

Result<std::unique_ptr<Index>> open_index(const std::string& url,
                                          const std::filesystem::path& data_dir, bool synchronous) {
  OpenOptions options;
  options.url = url;
  options.data_dir = data_dir;
  options.synchronous = synchronous;
  return open_index(options);
}

}  // namespace gw::index
