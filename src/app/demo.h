#pragma once
/// `dicom-gw demo`: a zero-configuration start. Creates a directory with a demo PKI (pki/), a
/// config (plain DICOM listener, a DICOM TLS listener with mutual TLS, embedded SQLite index,
/// data directory), prints how to send to it, and serves.

#include <cstdint>
#include <filesystem>

#include "core/result.h"

namespace gw::app {

struct DemoArgs {
  std::filesystem::path dir = "dicom-gw-demo";
  std::uint16_t port = 11112;
  std::uint16_t tls_port = 2762;  ///< DICOM TLS listener (mutual TLS with the demo PKI)
  bool serve = true;
};

/// Writes dir/config.yaml (regenerated each run) and the demo PKI and data dir (kept across
/// runs). Returns the config path.
core::Result<std::filesystem::path> prepare_demo(const DemoArgs& args);

}  // namespace gw::app
