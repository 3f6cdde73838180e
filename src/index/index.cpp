#include "index/index.h"

#include <string_view>

#include "index/sqlite/sqlite_index.h"

namespace gw::index {

Result<std::unique_ptr<Index>> open_index(const std::string& url,
                                          const std::filesystem::path& data_dir, bool synchronous) {
  constexpr std::string_view kSqlite = "sqlite://";
  constexpr std::string_view kMemory = ":memory:";
  std::filesystem::path db_path;
  if (url == kMemory) {
    db_path = kMemory;
  } else if (url.empty() || url.starts_with(kSqlite)) {
    // "sqlite://" alone means index.db in data_dir; "sqlite:///abs.db" an absolute path; a
    // relative path is taken relative to data_dir.
    const std::string rest = url.empty() ? std::string() : url.substr(kSqlite.size());
    if (rest == kMemory) {
      db_path = kMemory;
    } else if (!rest.empty() && std::filesystem::path(rest).is_absolute()) {
      db_path = rest;
    } else {
      if (data_dir.empty()) {
        return core::make_error(core::ErrorCode::kConfig,
                                "database.url: a relative SQLite path needs data_dir");
      }
      db_path = data_dir / (rest.empty() ? std::string("index.db") : rest);
    }
  } else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return core::make_error(core::ErrorCode::kUnsupported,
                            "database.url: the PostgreSQL backend is not available yet");
  } else {
    // Only the scheme is echoed: a URL may carry credentials.
    const auto colon = url.find(':');
    return core::make_error(
        core::ErrorCode::kUnsupported,
        "database.url: unsupported scheme '" +
            (colon == std::string::npos ? std::string() : url.substr(0, colon)) + "'");
  }
  GW_ASSIGN_OR_RETURN(auto index, SqliteIndex::open(db_path, synchronous));
  return std::unique_ptr<Index>(std::move(index));
}

}  // namespace gw::index
