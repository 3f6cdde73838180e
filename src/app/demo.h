#pragma once
/// `dicom-gw demo`: a zero-configuration start. Creates a directory with a demo PKI (pki/), a
/// config (plain DICOM listener, a DICOM TLS listener with mutual TLS, embedded SQLite index,
/// data directory), prints how to send to it, and serves.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/result.h"

namespace gw::app {

struct DemoArgs {
  std::filesystem::path dir = "dicom-gw-demo";
  std::uint16_t port = 11112;
  std::uint16_t tls_port = 2762;   ///< DICOM TLS listener (mutual TLS with the demo PKI)
  std::uint16_t http_port = 8080;  ///< REST API on 127.0.0.1
  bool serve = true;
};

/// The file that marks a directory as the demo's (created with it).
inline constexpr const char* kDemoMarker = ".dicom-gw-demo";

/// Writes dir/config.yaml (regenerated each run) and the demo PKI and data dir (kept across
/// runs). Returns the config path. Only a new, an empty or an earlier demo's directory
/// (kDemoMarker, or a demo config.yaml) is used; any other is refused (kInvalidArgument, exit 2).
/// Only a directory it creates gets mode 0750.
core::Result<std::filesystem::path> prepare_demo(const DemoArgs& args);

/// What `dicom-gw demo` prints once its directory is ready: where everything is, and commands
/// that run as shown from any directory: this binary's own path (/proc/self/exe, as `dicom-gw`
/// is not on PATH after scripts/demo.sh), absolute paths, shell-quoted where needed.
std::string demo_instructions(const DemoArgs& args, const std::filesystem::path& config_path);

/// The REST API part, after bootstrap_demo_admin: the token made at the first run (printed
/// once), or how to make another one.
std::string demo_api_instructions(const DemoArgs& args, const std::filesystem::path& config_path,
                                  const std::optional<std::string>& token);

/// The demo's first API user: on a data directory without users, creates `admin` (a random
/// password nobody needs: the token is the way in) and a 30-day API token, and returns the
/// token, to be printed once. nullopt when users exist already (a later run of the demo).
core::Result<std::optional<std::string>> bootstrap_demo_admin(
    const std::filesystem::path& config_path);

}  // namespace gw::app
