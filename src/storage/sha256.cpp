#include "storage/sha256.h"

#include <array>

namespace gw::storage {

core::Result<Sha256> Sha256::create() {
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return core::make_error(core::ErrorCode::kInternal, "EVP SHA-256 init failed");
  }
  return Sha256(std::move(ctx));
}

core::Status Sha256::update(std::span<const std::uint8_t> bytes) {
  if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) {
    return core::make_error(core::ErrorCode::kInternal, "EVP SHA-256 update failed");
  }
  return {};
}

std::string Sha256::hex() const {
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> copy(EVP_MD_CTX_new());
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1 ||
      EVP_DigestFinal_ex(copy.get(), md.data(), &len) != 1) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0x0f]);
  }
  return out;
}

}  // namespace gw::storage
