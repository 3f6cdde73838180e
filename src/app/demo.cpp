#include "app/demo.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>

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
  const fs::path config = args.dir / "config.yaml";
  if (fs::exists(config)) return config;
  std::ofstream out(config);
  out << fmt::format(R"(# dicom-gw demo configuration (made by `dicom-gw demo`; see docs/config.md)
ae_title: DICOM_GW
data_dir: data
listeners:
  - {{name: plain, bind: 127.0.0.1, port: {}, tls: false}}
storage:
  fsync: true
  duplicates: keep-first
)",
                     args.port);
  out.close();
  if (!out) return core::make_error(core::ErrorCode::kIo, "cannot write " + config.string());
  return config;
}

}  // namespace gw::app
