#pragma once
/// Incremental SHA-256 (OpenSSL EVP). Move-only.

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace gw::storage {

class Sha256 {
 public:
  static core::Result<Sha256> create();

  core::Status update(std::span<const std::uint8_t> bytes);
  /// Lower-case hex of everything so far (finalizes a copy: more updates may follow).
  std::string hex() const;

 private:
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  explicit Sha256(std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx) : ctx_(std::move(ctx)) {}

  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx_;
};

}  // namespace gw::storage
