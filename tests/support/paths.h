#pragma once
/// Where the binaries under test are. Paths come from the build (CMake generator
/// expressions), so tests run from any working directory.

#include <filesystem>

namespace gw::test {

/// The dicom-gw binary of this build; the environment variable GW_BINARY overrides it (to
/// run the e2e suite against an installed binary).
std::filesystem::path gateway_binary();

/// The gen_dicom test data generator (tests/tools/gen_dicom.cpp).
std::filesystem::path gen_dicom_binary();

/// The directory holding the test tools (gen_dicom, ...).
std::filesystem::path test_tool_dir();

}  // namespace gw::test
