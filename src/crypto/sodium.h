#pragma once
/// Internal to gw_crypto: libsodium's one-time initialisation.

namespace gw::crypto::detail {

/// sodium_init() once per process, from any thread; false when libsodium cannot start (no
/// entropy source), in which case nothing of it may be used.
bool sodium_ready();

}  // namespace gw::crypto::detail
