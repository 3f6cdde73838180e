#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace gw::core {

void check_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "GW_CHECK failed: %s at %s:%d\n", condition, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace gw::core
