#pragma once
/// `dicom-gw echo` and `dicom-gw send`: the SCU tools (like DCMTK's echoscu/storescu, but
/// `send` streams every data set byte-for-byte as it is stored in the file).

#include <filesystem>
#include <string>
#include <vector>

#include "dicom/scu.h"

namespace gw::app {

struct EchoArgs {
  dicom::ScuOptions scu;
  int repeat = 1;
};

struct SendArgs {
  dicom::ScuOptions scu;
  std::vector<std::filesystem::path> inputs;  ///< files and directories (recursed)
  std::filesystem::path report;  ///< optional: one line per instance, flushed as acknowledged
  bool progress = true;          ///< progress bar when stderr is a terminal
  int parallel = 1;              ///< associations in parallel
};

/// Exit codes: 0 success, 1 operation failed, 2 usage.
int run_echo(const EchoArgs& args);
int run_send(const SendArgs& args);

}  // namespace gw::app
