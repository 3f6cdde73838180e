#include "crypto/sodium.h"

#include <sodium.h>

namespace gw::crypto::detail {

bool sodium_ready() {
  // A function-local static is initialised exactly once even when threads race here;
  // sodium_init() returns 1 when someone else (a library) already initialised it.
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace gw::crypto::detail
