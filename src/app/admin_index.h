#pragma once
/// The plumbing the local admin commands (`dicom-gw queue …`, `dicom-gw user …`) share: load
/// the configuration, refuse to run as root next to a data directory another user owns, open
/// the configured index (never the store's lock: the gateway may be running), report errors.

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/result.h"
#include "index/index.h"
#include "index/open.h"

namespace gw::crypto {
struct Keyring;
}

namespace gw::app {

/// "error: <message>" on `err`; the error's exit code.
int fail(const core::Error& e, std::ostream& err);

/// Running as root next to a gateway that runs as its own user would leave root-owned files
/// (index.db-wal, -shm, a new index.db) the gateway then cannot write; `sudo dicom-gw …` is the
/// obvious first thing to type, so this says what to type instead. nullopt when it is fine.
/// `command`: the subcommand for the hint ("queue", "user").
std::optional<std::string> foreign_owner_error(const std::filesystem::path& data_dir,
                                               std::string_view command);

/// How to open the index `config` names (database.*, data_dir, storage.fsync): the one
/// translation used by serve and by every admin command.
index::OpenOptions index_options(const config::Config& config);

/// Loads the configuration, opens its index and runs `body` on it; an exit code either way
/// (2 for configuration problems, as every command).
int with_configured_index(const std::filesystem::path& config_path, std::string_view command,
                          const std::function<int(index::Index&)>& body);

/// The configuration and its index with the encryption keys registered (commands that read
/// or change sealed values and encrypted files).
struct ConfiguredIndex {
  config::Config config;
  std::unique_ptr<index::Index> index;
  std::shared_ptr<const crypto::Keyring> keyring;
};

/// with_configured_index's checks, then the keys (app/encryption.h load_keys); nullopt when
/// `out` is ready, else the exit code after saying what is wrong on stderr.
std::optional<int> open_configured_index(const std::filesystem::path& config_path,
                                         std::string_view command, ConfiguredIndex& out);

/// The audit row of a local command's change, written in the change's transaction. The actor
/// is "cli"; details say which local account ran it (and who sudo says asked: informative
/// only, the environment is the caller's).
index::AuditEvent cli_event(std::string action, std::string target, nlohmann::ordered_json details,
                            std::int64_t now_ms);

}  // namespace gw::app
