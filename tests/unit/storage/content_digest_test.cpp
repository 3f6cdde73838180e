// ContentDigest: the same digest however the bytes are fed, and the same digest as the
// library's portable code path (the value below was computed with libxxhash's plain
// XXH3_128bits, without the run-time dispatch the gateway uses on x86-64).

#include "storage/content_digest.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace gw::storage {
namespace {

std::vector<std::uint8_t> pattern() {
  std::vector<std::uint8_t> bytes((1u << 20) + 13);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 31 + 7);
  return bytes;
}

constexpr const char* kExpected = "xxh128:339f7db85aa744d0a87f84d8de163113";

TEST(ContentDigest, KnownAnswerInOneCall) { EXPECT_EQ(ContentDigest::of(pattern()), kExpected); }

TEST(ContentDigest, SameDigestWhateverTheChunkSizes) {
  const auto bytes = pattern();
  for (const std::size_t chunk : {std::size_t{1} << 20, std::size_t{262144}, std::size_t{16384},
                                  std::size_t{4099}, std::size_t{1}}) {
    ContentDigest digest;
    std::span<const std::uint8_t> rest(bytes);
    while (!rest.empty()) {
      const auto n = std::min(chunk, rest.size());
      digest.update(rest.first(n));
      rest = rest.subspan(n);
    }
    EXPECT_EQ(digest.text(), kExpected) << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace gw::storage
