#pragma once
/// Synthetic DICOM test data from tests/tools/gen_dicom (no patient data).

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace gw::test {

using namespace std::chrono_literals;

/// Runs `gen_dicom --out OUT_DIR ARGS...` (e.g. {"--count", "20", "--mix", "--seed", "1"}, see
/// `gen_dicom --help`) and returns the files it wrote, in index order (0.dcm, 1.dcm, ...).
/// Throws std::runtime_error if the generator fails or times out.
std::vector<std::filesystem::path> generate_dicom(const std::filesystem::path& out_dir,
                                                  const std::vector<std::string>& args,
                                                  std::chrono::milliseconds timeout = 300s);

}  // namespace gw::test
