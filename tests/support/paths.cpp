#include "support/paths.h"

#include <cstdlib>

namespace gw::test {

std::filesystem::path gateway_binary() {
  const char* over = std::getenv("GW_BINARY");
  if (over != nullptr && *over != '\0') return over;
  return GW_BINARY_PATH;
}

std::filesystem::path gen_dicom_binary() { return GW_GEN_DICOM_PATH; }

std::filesystem::path test_tool_dir() { return gen_dicom_binary().parent_path(); }

}  // namespace gw::test
