#pragma once
/// The `dicom-gw` command line: subcommands serve, demo, config check, echo, send.
/// Exit codes: 0 success, 1 operation failed, 2 usage or configuration error.

namespace gw::app {
int run_cli(int argc, char** argv);
}  // namespace gw::app
