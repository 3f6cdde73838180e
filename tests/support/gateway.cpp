#include "support/gateway.h"

#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "dicom/part10.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"

namespace gw::test {

namespace fs = std::filesystem;

namespace {

/// A read-only connection to the gateway's index (WAL readers never block the writer).
class IndexReader {
 public:
  explicit IndexReader(const fs::path& db) {
    if (sqlite3_open_v2(db.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open index " + db.string() + ": " + why);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~IndexReader() { sqlite3_close(db_); }
  IndexReader(const IndexReader&) = delete;
  IndexReader& operator=(const IndexReader&) = delete;

  std::vector<std::vector<std::string>> query(const std::string& sql,
                                              const std::vector<std::string>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("index query failed: ") + sqlite3_errmsg(db_));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
    }
    std::vector<std::vector<std::string>> rows;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        const auto* text = sqlite3_column_text(stmt, c);
        row.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
      }
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) {
      // A read error (busy past the timeout, corrupt file...) is not "no rows": a negative
      // check such as count_instances() == 0 must not pass on it.
      const std::string why = sqlite3_errmsg(db_);
      sqlite3_finalize(stmt);
      throw std::runtime_error("index query failed: " + why + " (" + sql + ")");
    }
    sqlite3_finalize(stmt);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) out.push_back(it->path());
  }
  return out;
}

}  // namespace

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)), dir_("gw-e2e") {}

Gateway::~Gateway() {
  if (process_) process_->kill9();
}

fs::path Gateway::data_dir() const {
  return options_.data_dir.empty() ? dir_.path() / "data" : options_.data_dir;
}

std::unique_ptr<Gateway> Gateway::start(GatewayOptions options) {
  std::unique_ptr<Gateway> gw(new Gateway(std::move(options)));
  // Ports come from free_tcp_port(), so another process (a test running beside this one) may
  // take one before the gateway binds it: then the gateway exits with "Address already in use"
  // and we try again with fresh ports. Bounded: a few attempts, each with its own deadline.
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    gw->pick_ports();
    gw->write_config();
    if (gw->launch_once() == LaunchResult::kUp) return gw;
    const std::string err = gw->process_->read_stderr();
    gw->process_->kill9();
    // The DICOM listener reports asio's "Address already in use", the API "cannot listen on".
    const bool port_taken = err.find("Address already in use") != std::string::npos ||
                            err.find("cannot listen on") != std::string::npos;
    if (attempt == kAttempts || !port_taken) {
      throw std::runtime_error("gateway did not listen on port " + std::to_string(gw->port_) +
                               ":\n" + err);
    }
  }
}

void Gateway::pick_ports() {
  // Distinct ports: the kernel may hand out the same free port twice in a row.
  std::vector<std::uint16_t> taken;
  auto next = [&taken]() {
    for (;;) {
      const std::uint16_t p = free_tcp_port();
      if (std::find(taken.begin(), taken.end(), p) == taken.end()) {
        taken.push_back(p);
        return p;
      }
    }
  };
  port_ = next();
  tls_port_ = options_.tls_yaml.empty() ? 0 : next();
  http_port_ = options_.http ? next() : 0;
}

void Gateway::write_config() const {
  std::string tls_listener;
  if (tls_port_ != 0) {
    tls_listener =
        "  - {name: secure, bind: 127.0.0.1, port: " + std::to_string(tls_port_) + ", tls: true}\n";
  }
  std::string http = "http:\n  enabled: false\n";
  if (http_port_ != 0) {
    http = "http:\n  enabled: true\n  bind: 127.0.0.1\n  port: " + std::to_string(http_port_) +
           "\n" + options_.http_yaml;
  }
  std::ofstream config(config_path());
  config << "ae_title: " << options_.ae_title << "\n"
         << "data_dir: " << data_dir().string() << "\n"
         << "listeners:\n"
         << "  - {name: plain, bind: 127.0.0.1, port: " << port_ << ", tls: false}\n"
         << tls_listener << "storage:\n"
         << "  fsync: " << (options_.fsync ? "true" : "false") << "\n"
         << "  encrypt: " << (options_.encrypt ? "true" : "false") << "\n"
         << (options_.min_free_mb >= 0
                 ? "  min_free_mb: " + std::to_string(options_.min_free_mb) + "\n"
                 : std::string())
         << "  duplicates: " << options_.duplicates << "\n"
         << "limits:\n"
         << "  max_associations: " << options_.max_associations << "\n"
         << (options_.max_pending_connections > 0
                 ? "  max_pending_connections: " +
                       std::to_string(options_.max_pending_connections) + "\n"
                 : std::string())
         << "  max_async_operations: " << options_.max_async_operations << "\n"
         << "  idle_timeout: " << options_.idle_timeout_s << "\n"
         << "  artim_timeout: " << options_.artim_timeout_s << "\n"
         << "  shutdown_grace: " << options_.shutdown_grace_s << "\n"
         << http << options_.extra_yaml << options_.tls_yaml;
}

Gateway::LaunchResult Gateway::launch_once() {
  ++generation_;
  ProcessOptions po;
  po.argv = {gateway_binary().string(), "serve", "--config", config_path().string()};
  po.log_dir = dir_.path() / "logs";
  po.log_name = "gateway-" + std::to_string(generation_);
  // die_with_parent (the default): a crashed or killed test binary takes its gateways with it.
  // Linux ties it to the starting thread; every test starts and restarts gateways on its main
  // thread (worker threads only send), so the gateway lives as long as the test needs it.
  po.die_with_parent = true;
  po.env = options_.env;
  process_ = std::make_unique<Process>(Process::start(po));
  // Up means the gateway itself said so for each of our ports (another process listening on
  // one of them would fool a mere connect()). The API is bound before
  // the DICOM listeners. A gateway that refuses to start exits at once: stop waiting then.
  const std::string dicom_line = "event=listening listener=plain port=" + std::to_string(port_);
  const std::string http_line =
      "event=http_listening bind=127.0.0.1 port=" + std::to_string(http_port_) + " ";
  const bool up = wait_until(
      [&] {
        if (!process_->running()) return true;
        const std::string log = process_->read_stderr();
        return log.find(dicom_line) != std::string::npos &&
               (http_port_ == 0 || log.find(http_line) != std::string::npos);
      },
      std::chrono::seconds(15));
  // No connect() to the DICOM port to check: the gateway logs "listening" after listen(), and a
  // probe connection would hold one of limits.max_associations until the gateway sees it close
  // (a test of the limit then saw its first association refused).
  if (!up || !process_->running()) return LaunchResult::kFailed;
  if (http_port_ != 0 && !wait_for_port(http_port_, std::chrono::seconds(5))) {
    return LaunchResult::kFailed;
  }
  return LaunchResult::kUp;
}

void Gateway::launch() {
  if (launch_once() == LaunchResult::kUp) return;
  const std::string err = process_->read_stderr();
  process_->kill9();
  throw std::runtime_error("gateway did not listen on port " + std::to_string(port_) + ":\n" + err);
}

std::string Gateway::log() const { return process_ ? process_->read_stderr() : std::string(); }

int Gateway::stop(std::chrono::milliseconds grace) { return process_->terminate(grace); }

void Gateway::kill9() { process_->kill9(); }

void Gateway::restart() { launch(); }

std::int64_t Gateway::count_instances() const {
  IndexReader index(data_dir() / "index.db");
  auto rows = index.query("SELECT count(*) FROM instances");
  return std::stoll(rows.at(0).at(0));
}

std::int64_t Gateway::count_outbox(const std::string& state) const {
  IndexReader index(data_dir() / "index.db");
  auto rows = index.query("SELECT count(*) FROM outbox WHERE state = ?", {state});
  return std::stoll(rows.at(0).at(0));
}

std::vector<std::string> Gateway::sop_instance_uids() const {
  IndexReader index(data_dir() / "index.db");
  std::vector<std::string> out;
  for (auto& row : index.query("SELECT sop_instance_uid FROM instances")) out.push_back(row[0]);
  return out;
}

std::optional<fs::path> Gateway::stored_file(const std::string& sop_instance_uid) const {
  IndexReader index(data_dir() / "index.db");
  auto rows = index.query("SELECT storage_path FROM instances WHERE sop_instance_uid = ?",
                          {sop_instance_uid});
  if (rows.empty()) return std::nullopt;
  return data_dir() / rows[0][0];
}

std::vector<fs::path> Gateway::storage_files() const { return files_under(data_dir() / "storage"); }
std::vector<fs::path> Gateway::spool_files() const { return files_under(data_dir() / "spool"); }

std::vector<std::uint8_t> data_set_bytes(const fs::path& part10_file) {
  auto header = dicom::read_part10_header(part10_file);
  if (!header.ok()) throw std::runtime_error(part10_file.string() + ": " + header.error().message);
  std::ifstream in(part10_file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(header->data_set_offset));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace gw::test
