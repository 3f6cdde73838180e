#include "app/admin_index.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <utility>

#include "app/encryption.h"
#include "config/config.h"
#include "core/log.h"

namespace gw::app {

int fail(const core::Error& e, std::ostream& err) {
  err << "error: " << e.message << '\n';
  return core::exit_code(e.code);
}

std::optional<std::string> foreign_owner_error(const std::filesystem::path& data_dir,
                                               std::string_view command) {
  if (::geteuid() != 0) return std::nullopt;
  struct stat st {};
  if (::stat(data_dir.c_str(), &st) != 0 || st.st_uid == 0) return std::nullopt;
  std::string user = std::to_string(st.st_uid);
  passwd pw{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(st.st_uid, &pw, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
    user = found->pw_name;
  }
  return fmt::format(
      "{} belongs to {}; running as root would leave index files it cannot write. Run as that "
      "user: sudo -u {} dicom-gw {} ...",
      data_dir.string(), user, user, command);
}

index::OpenOptions index_options(const config::Config& config) {
  index::OpenOptions options;
  options.url = config.database.url;
  options.data_dir = config.data_dir;
  options.synchronous = config.storage.fsync;
  options.password_file = config.database.password_file;
  options.pool_size = config.database.pool_size;
  return options;
}

namespace {

/// Loads the configuration and opens its index; nullopt when both are in `config`/`index`.
std::optional<int> open_index_for(const std::filesystem::path& config_path,
                                  std::string_view command, config::Config& config_out,
                                  std::unique_ptr<index::Index>& index_out) {
  core::init_logging("warn");  // "index opened" and friends are noise on a command line
  auto config = config::load_config(config_path);
  if (!config.ok()) {
    std::cerr << "configuration error in " << config_path.string() << ":\n"
              << config.error().message << '\n';
    return 2;
  }
  // Only SQLite leaves index files in data_dir that root could take over.
  if (auto problem = index::is_postgres_url(config->database.url)
                         ? std::nullopt
                         : foreign_owner_error(config->data_dir, command)) {
    std::cerr << "error: " << *problem << '\n';
    return 2;
  }
  auto index = index::open_index(index_options(*config));
  if (!index.ok()) return fail(index.error(), std::cerr);
  config_out = std::move(config).value();
  index_out = std::move(index).value();
  return std::nullopt;
}

}  // namespace

int with_configured_index(const std::filesystem::path& config_path, std::string_view command,
                          const std::function<int(index::Index&)>& body) {
  config::Config config;
  std::unique_ptr<index::Index> index;
  if (auto rc = open_index_for(config_path, command, config, index)) return *rc;
  return body(*index);
}

std::optional<int> open_configured_index(const std::filesystem::path& config_path,
                                         std::string_view command, ConfiguredIndex& out) {
  if (auto rc = open_index_for(config_path, command, out.config, out.index)) return *rc;
  auto keyring = load_keys(out.config, *out.index);
  if (!keyring.ok()) return fail(keyring.error(), std::cerr);
  out.keyring = std::move(keyring).value();
  return std::nullopt;
}

namespace {

std::string user_name_of(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

}  // namespace

index::AuditEvent cli_event(std::string action, std::string target, nlohmann::ordered_json details,
                            std::int64_t now_ms) {
  details["os_user"] = user_name_of(::geteuid());
  // NOLINTNEXTLINE(concurrency-mt-unsafe): the command line runs on one thread.
  if (const char* sudo_user = std::getenv("SUDO_USER"); sudo_user != nullptr) {
    details["sudo_user"] = sudo_user;
  }
  index::AuditEvent e;
  e.at_ms = now_ms;
  e.actor = "cli";
  e.action = std::move(action);
  e.target = std::move(target);
  e.details = details.dump();
  return e;
}

}  // namespace gw::app
