#include "app/admin_index.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

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

int with_configured_index(const std::filesystem::path& config_path, std::string_view command,
                          const std::function<int(index::Index&)>& body) {
  core::init_logging("warn");  // "index opened" and friends are noise on a command line
  auto config = config::load_config(config_path);
  if (!config.ok()) {
    std::cerr << "configuration error in " << config_path.string() << ":\n"
              << config.error().message << '\n';
    return 2;
  }
  if (auto problem = foreign_owner_error(config->data_dir, command)) {
    std::cerr << "error: " << *problem << '\n';
    return 2;
  }
  auto index = index::open_index(config->database.url, config->data_dir, config->storage.fsync);
  if (!index.ok()) return fail(index.error(), std::cerr);
  return body(**index);
}

}  // namespace gw::app
