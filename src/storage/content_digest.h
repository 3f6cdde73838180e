#pragma once
/// The content digest recorded for every stored file: XXH3 128-bit (xxHash, Debian
/// `libxxhash-dev`), written as "xxh128:" + 32 lower-case hex digits in xxHash's canonical
/// (big-endian) order, so `xxhsum -H2 FILE` prints the same digits.
///
/// Why not SHA-256: the digest is an integrity check (bit rot, a truncated copy, "is this the
/// file we received?"), not a signature; SHA-256 cost a quarter of the receiver's CPU at
/// ~1.8 GB/s, XXH3 runs at memory speed. Files that must resist tampering are encrypted with
/// AES-256-GCM (storage.encrypt), whose tags do that job. See docs/adr/008-content-digest.md.

#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace gw::storage {

inline constexpr std::string_view kDigestPrefix = "xxh128:";

/// Incremental digest. Move-only; never fails (XXH3 needs no resources beyond its state).
class ContentDigest {
 public:
  ContentDigest();

  void update(std::span<const std::uint8_t> bytes);
  /// "xxh128:<32 hex>" of everything so far (more updates may follow).
  std::string text() const;

  /// One-shot, for checks and tests.
  static std::string of(std::span<const std::uint8_t> bytes);

 private:
  struct StateDeleter {
    void operator()(XXH3_state_t* state) const { XXH3_freeState(state); }
  };
  std::unique_ptr<XXH3_state_t, StateDeleter> state_;
};

}  // namespace gw::storage
