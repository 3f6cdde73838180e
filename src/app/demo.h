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

/// Writes dir/config.yaml (regenerated each run) and the demo PKI and data dir (kept across
/// runs). Returns the config path.
core::Result<std::filesystem::path> prepare_demo(const DemoArgs& args);

/// The demo's first API user: on a data directory without users, creates `admin` (a random
/// password nobody needs: the token is the way in) and a 30-day API token, and returns the
/// token, to be printed once. nullopt when users exist already (a later run of the demo).
core::Result<std::optional<std::string>> bootstrap_demo_admin(
    const std::filesystem::path& config_path);

}  // namespace gw::app
