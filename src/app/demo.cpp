#include "app/demo.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>

#include "app/pki_commands.h"

namespace gw::app {

namespace fs = std::filesystem;

core::Result<fs::path> prepare_demo(const DemoArgs& args) {
  std::error_code ec;
  fs::create_directories(args.dir / "data", ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kIo,
                            "cannot create " + args.dir.string() + ": " + ec.message());
  }
  ::chmod(args.dir.c_str(), 0750);
  GW_RETURN_IF_ERROR(make_demo_pki(args.dir / "pki"));
  // The config is generated from the arguments every time (so the printed ports are the served
  // ones); the data directory and the PKI are kept across runs.
  const fs::path config = args.dir / "config.yaml";
  std::ofstream out(config, std::ios::trunc);
  out << fmt::format(R"(# dicom-gw demo configuration (made by `dicom-gw demo`; see docs/config.md)
ae_title: DICOM_GW
data_dir: data
listeners:
  - {{name: plain, bind: 127.0.0.1, port: {}, tls: false}}
  - {{name: secure, bind: 127.0.0.1, port: {}, tls: true}}
# The demo PKI (pki/): a root CA, a server certificate for localhost/127.0.0.1 and a client
# certificate (pki/client.pem) that the secure listener accepts (mutual TLS, BCP 195).
tls:
  enabled: true
  cert_file: pki/server.pem
  key_file: pki/server.key
  ca_file: pki/ca/ca.pem
  peer_certificate: required
  profile: bcp195-rfc8996
storage:
  fsync: true
  duplicates: keep-first
)",
                     args.port, args.tls_port);
  out.close();
  if (!out) return core::make_error(core::ErrorCode::kIo, "cannot write " + config.string());
  return config;
}

}  // namespace gw::app
