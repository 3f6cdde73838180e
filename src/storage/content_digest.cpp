#include "storage/content_digest.h"

#include <new>

#if defined(__x86_64__)
// libxxhash's run-time dispatch: the AVX2 or AVX-512 code path where the CPU has it (about 4x
// the SSE2 baseline the library is built for; the same digests). It renames the XXH3 calls below.
#include <xxh_x86dispatch.h>
#endif

namespace gw::storage {

namespace {

std::string to_text(XXH128_hash_t hash) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, hash);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kDigestPrefix);
  out.reserve(kDigestPrefix.size() + 2 * sizeof(canonical.digest));
  for (const unsigned char byte : canonical.digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0x0f]);
  }
  return out;
}

}  // namespace

ContentDigest::ContentDigest() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_128bits_reset(state_.get());
}

void ContentDigest::update(std::span<const std::uint8_t> bytes) {
  XXH3_128bits_update(state_.get(), bytes.data(), bytes.size());
}

std::string ContentDigest::text() const { return to_text(XXH3_128bits_digest(state_.get())); }

std::string ContentDigest::of(std::span<const std::uint8_t> bytes) {
  return to_text(XXH3_128bits(bytes.data(), bytes.size()));
}

}  // namespace gw::storage
