#pragma once
/// Wall-clock time as the index, the audit trail and the queue store it: Unix epoch
/// milliseconds.

#include <chrono>
#include <cstdint>

namespace gw::core {

inline std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace gw::core
