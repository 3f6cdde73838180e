#pragma once
/// The plumbing the local admin commands (`dicom-gw queue …`, `dicom-gw user …`) share: load
/// the configuration, refuse to run as root next to a data directory another user owns, open
/// the configured index (never the store's lock: the gateway may be running), report errors.

#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "core/result.h"
#include "index/index.h"

namespace gw::app {

/// "error: <message>" on `err`; the error's exit code.
int fail(const core::Error& e, std::ostream& err);

/// Running as root next to a gateway that runs as its own user would leave root-owned files
/// (index.db-wal, -shm, a new index.db) the gateway then cannot write; `sudo dicom-gw …` is the
/// obvious first thing to type, so this says what to type instead. nullopt when it is fine.
/// `command`: the subcommand for the hint ("queue", "user").
std::optional<std::string> foreign_owner_error(const std::filesystem::path& data_dir,
                                               std::string_view command);

/// Loads the configuration, opens its index and runs `body` on it; an exit code either way
/// (2 for configuration problems, as every command).
int with_configured_index(const std::filesystem::path& config_path, std::string_view command,
                          const std::function<int(index::Index&)>& body);

}  // namespace gw::app
