#pragma once
/// A dicom-gw gateway under test: writes a config into a temp dir (free loopback port, its own
/// data dir), runs `dicom-gw serve`, waits until it listens, and stops it by PID. The index is
/// read through the SQLite C API (read-only) so tests assert on what was really committed.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace gw::test {

struct GatewayOptions {
  std::string ae_title = "DICOM_GW";
  bool fsync = true;
  bool encrypt = false;  ///< storage.encrypt (needs a key in `env`)
  std::string duplicates = "keep-first";
  int min_free_mb = -1;  ///< storage.min_free_mb (-1: the default)
  int max_associations = 64;
  int max_pending_connections = 0;  ///< limits.max_pending_connections (0: the default)
  int max_async_operations = 16;    ///< limits.max_async_operations
  int idle_timeout_s = 300;
  int artim_timeout_s = 30;
  int shutdown_grace_s = 30;
  /// Extra top-level YAML appended verbatim (e.g. "accept:\n  calling_ae_titles: [A]\n").
  std::string extra_yaml;
  /// Use this data dir instead of <dir>/data (e.g. a small tmpfs for disk-full tests).
  std::filesystem::path data_dir;
  /// Non-empty: a second listener `{name: secure, tls: true}` on tls_port(), and this text as
  /// the top-level `tls:` block ("tls:\n  enabled: true\n  cert_file: ...\n").
  std::string tls_yaml;
  /// The REST API on 127.0.0.1:http_port() (otherwise `http: enabled: false`).
  bool http = false;
  /// With `http`: extra lines of the `http:` section, indented two spaces
  /// ("  tls:\n    enabled: true\n    cert_file: ...\n").
  std::string http_yaml;
  /// Extra environment variables for the gateway process (e.g. DICOM_GW_DB_ENCRYPTION_KEY).
  Env env;
};

class Gateway {
 public:
  /// Starts the gateway; throws std::runtime_error (with the gateway's stderr) if it does not
  /// listen within 15 s.
  static std::unique_ptr<Gateway> start(GatewayOptions options = {});
  ~Gateway();

  std::uint16_t port() const { return port_; }
  /// The DICOM TLS listener's port (0 without GatewayOptions::tls_yaml).
  std::uint16_t tls_port() const { return tls_port_; }
  /// The REST API's port (0 without GatewayOptions::http).
  std::uint16_t http_port() const { return http_port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path data_dir() const;
  std::filesystem::path config_path() const { return dir_.path() / "config.yaml"; }
  Process& process() { return *process_; }
  /// The gateway's stderr so far (its log).
  std::string log() const;

  /// SIGTERM and wait (up to `grace`); returns the exit code.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(40));
  void kill9();
  /// Starts again on the same port, config and data (after stop() or kill9()).
  void restart();
  /// Environment for the next restart() (e.g. another encryption key).
  void set_env(Env env) { options_.env = std::move(env); }

  // ---- the index, read-only ----
  std::int64_t count_instances() const;
  std::vector<std::string> sop_instance_uids() const;
  /// Outbox rows in `state` ("delivered", "pending", ...). A row is delivered only after the
  /// destination answered its C-STORE, and storescp answers after it has written and closed the
  /// file: so wait on this, not on the number of files in storescp's directory (a file that is
  /// still being written is already listed there).
  std::int64_t count_outbox(const std::string& state) const;
  /// Absolute path of the stored file, if the instance is indexed.
  std::optional<std::filesystem::path> stored_file(const std::string& sop_instance_uid) const;
  /// Files under <data>/storage and <data>/spool.
  std::vector<std::filesystem::path> storage_files() const;
  std::vector<std::filesystem::path> spool_files() const;

 private:
  explicit Gateway(GatewayOptions options);
  enum class LaunchResult { kUp, kFailed };
  void pick_ports();
  void write_config() const;
  /// Starts the process and waits until it listens; on kFailed the process may still run.
  LaunchResult launch_once();
  void launch();  ///< launch_once(), or throw with the gateway's log

  GatewayOptions options_;
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::uint16_t http_port_ = 0;
  std::unique_ptr<Process> process_;
  int generation_ = 0;
};

/// Data-set bytes of a Part 10 file (everything after the File Meta group).
std::vector<std::uint8_t> data_set_bytes(const std::filesystem::path& part10_file);

}  // namespace gw::test
