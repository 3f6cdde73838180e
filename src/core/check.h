#pragma once
/// GW_CHECK: an invariant that is always checked (release builds too). On failure it prints
/// the condition and location to stderr and aborts: a broken invariant is a bug, not an input.

namespace gw::core {
[[noreturn]] void check_failed(const char* condition, const char* file, int line);
}  // namespace gw::core

#define GW_CHECK(cond)                                                \
  do {                                                                \
    if (!(cond)) ::gw::core::check_failed(#cond, __FILE__, __LINE__); \
  } while (0)
