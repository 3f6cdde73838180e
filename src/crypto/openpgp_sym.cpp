#include "crypto/openpgp_sym.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <memory>
#include <optional>

namespace gw::crypto {
namespace {

using core::ErrorCode;
using core::make_error;
using Bytes = std::vector<std::uint8_t>;

// RFC 4880 constants.
constexpr std::uint8_t kTagSkesk = 3;
constexpr std::uint8_t kTagCompressed = 8;
constexpr std::uint8_t kTagSed = 9;
constexpr std::uint8_t kTagLiteral = 11;
constexpr std::uint8_t kTagSeipd = 18;
constexpr std::uint8_t kTagMdc = 19;
constexpr std::uint8_t kCipherAes128 = 7;
constexpr std::uint8_t kCipherAes192 = 8;
constexpr std::uint8_t kCipherAes256 = 9;
constexpr std::uint8_t kHashSha1 = 2;
constexpr std::uint8_t kHashSha256 = 8;
constexpr std::size_t kBlock = 16;  // AES
constexpr std::size_t kMaxMessage = 64u << 20;

core::Error corrupt() {
  return make_error(ErrorCode::kDataLoss, "openpgp: wrong key or corrupted value");
}

void put_header(Bytes& out, std::uint8_t tag, std::size_t length) {
  out.push_back(static_cast<std::uint8_t>(0xC0 | tag));
  if (length < 192) {
    out.push_back(static_cast<std::uint8_t>(length));
  } else if (length < 8384) {
    const std::size_t l = length - 192;
    out.push_back(static_cast<std::uint8_t>((l >> 8) + 192));
    out.push_back(static_cast<std::uint8_t>(l & 0xff));
  } else {
    out.push_back(0xff);
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<std::uint8_t>((length >> shift) & 0xff));
    }
  }
}

const EVP_MD* digest_of(std::uint8_t algo) {
  switch (algo) {
    case kHashSha1:
      return EVP_sha1();
    case kHashSha256:
      return EVP_sha256();
    default:
      return nullptr;
  }
}

const EVP_CIPHER* cfb_of(std::uint8_t algo, std::size_t& key_size) {
  switch (algo) {
    case kCipherAes128:
      key_size = 16;
      return EVP_aes_128_cfb128();
    case kCipherAes192:
      key_size = 24;
      return EVP_aes_192_cfb128();
    case kCipherAes256:
      key_size = 32;
      return EVP_aes_256_cfb128();
    default:
      return nullptr;
  }
}

/// RFC 4880 3.7.1: the session key from the passphrase. `count` 0 = not iterated.
std::optional<Bytes> s2k(const EVP_MD* md, std::span<const std::uint8_t> salt,
                         std::string_view passphrase, std::size_t count, std::size_t key_size) {
  Bytes data(salt.begin(), salt.end());
  data.insert(data.end(), passphrase.begin(), passphrase.end());
  Bytes key;
  const std::size_t hash_size = static_cast<std::size_t>(EVP_MD_get_size(md));
  for (std::size_t round = 0; key.size() < key_size && round < 8; ++round) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return std::nullopt;
    const std::uint8_t zero = 0;
    for (std::size_t z = 0; z < round; ++z) EVP_DigestUpdate(ctx.get(), &zero, 1);
    std::size_t left = std::max(count, data.size());
    while (left > 0) {
      const std::size_t n = std::min(left, data.size());
      EVP_DigestUpdate(ctx.get(), data.data(), n);
      left -= n;
    }
    std::array<std::uint8_t, EVP_MAX_MD_SIZE> h{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), h.data(), &len) != 1 || len != hash_size) {
      return std::nullopt;
    }
    key.insert(key.end(), h.begin(), h.begin() + len);
  }
  OPENSSL_cleanse(data.data(), data.size());
  key.resize(key_size);
  return key;
}

/// Full-stream CFB with an all-zero IV (SEIPD), in place.
bool cfb(const EVP_CIPHER* cipher, const Bytes& key, Bytes& data, bool encrypt) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  const std::array<std::uint8_t, kBlock> iv{};
  int n = 0;
  int done = 0;
  return ctx &&
         EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), iv.data(), encrypt ? 1 : 0) ==
             1 &&
         EVP_CipherUpdate(ctx.get(), data.data(), &n, data.data(), static_cast<int>(data.size())) ==
             1 &&
         EVP_CipherFinal_ex(ctx.get(), data.data() + n, &done) == 1;
}

std::array<std::uint8_t, 20> sha1(std::span<const std::uint8_t> data) {
  std::array<std::uint8_t, 20> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha1(), nullptr);
  return out;
}

struct Packet {
  std::uint8_t tag = 0;
  Bytes body;
};

/// Reads the packet at `pos` (old or new header, partial lengths reassembled) and advances
/// `pos`. nullopt for a malformed header or a length past the end.
std::optional<Packet> read_packet(std::span<const std::uint8_t> in, std::size_t& pos) {
  if (pos >= in.size()) return std::nullopt;
  const std::uint8_t first = in[pos++];
  if ((first & 0x80) == 0) return std::nullopt;
  Packet p;
  auto take = [&](std::size_t n) -> bool {
    if (n > in.size() - pos) return false;
    p.body.insert(p.body.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                  in.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    return true;
  };
  if ((first & 0x40) == 0) {  // old format
    p.tag = (first >> 2) & 0x0f;
    const int type = first & 0x03;
    std::size_t length = 0;
    if (type == 3)
      return take(in.size() - pos) ? std::optional<Packet>(std::move(p)) : std::nullopt;
    const int octets = type == 0 ? 1 : (type == 1 ? 2 : 4);
    if (static_cast<std::size_t>(octets) > in.size() - pos) return std::nullopt;
    for (int i = 0; i < octets; ++i) length = (length << 8) | in[pos++];
    return take(length) ? std::optional<Packet>(std::move(p)) : std::nullopt;
  }
  p.tag = first & 0x3f;
  // New format: a chain of partial lengths ends with a normal length. Bounded by the input.
  for (std::size_t chunks = 0; chunks <= in.size(); ++chunks) {
    if (pos >= in.size()) return std::nullopt;
    const std::uint8_t l0 = in[pos++];
    if (l0 < 192) return take(l0) ? std::optional<Packet>(std::move(p)) : std::nullopt;
    if (l0 < 224) {
      if (pos >= in.size()) return std::nullopt;
      const std::size_t length = ((static_cast<std::size_t>(l0) - 192) << 8) + in[pos++] + 192;
      return take(length) ? std::optional<Packet>(std::move(p)) : std::nullopt;
    }
    if (l0 == 255) {
      if (in.size() - pos < 4) return std::nullopt;
      std::size_t length = 0;
      for (int i = 0; i < 4; ++i) length = (length << 8) | in[pos++];
      return take(length) ? std::optional<Packet>(std::move(p)) : std::nullopt;
    }
    if (!take(std::size_t{1} << (l0 & 0x1f))) return std::nullopt;  // partial body
  }
  return std::nullopt;
}

}  // namespace

core::Result<std::vector<std::uint8_t>> pgp_sym_encrypt(std::string_view plaintext,
                                                        std::string_view passphrase) {
  if (plaintext.size() > kMaxMessage - 1024) {
    return make_error(ErrorCode::kTooLarge, "openpgp: value too large");
  }
  std::array<std::uint8_t, 8> salt{};
  std::array<std::uint8_t, kBlock> prefix{};
  if (RAND_bytes(salt.data(), salt.size()) != 1 || RAND_bytes(prefix.data(), prefix.size()) != 1) {
    return make_error(ErrorCode::kInternal, "openpgp: no randomness");
  }
  auto key = s2k(EVP_sha256(), salt, passphrase, 0, 32);
  if (!key) return make_error(ErrorCode::kInternal, "openpgp: key derivation failed");

  // The plaintext of the SEIPD packet: prefix, its last two octets again, the literal packet,
  // then the MDC packet over all of that.
  Bytes inner(prefix.begin(), prefix.end());
  inner.push_back(prefix[kBlock - 2]);
  inner.push_back(prefix[kBlock - 1]);
  put_header(inner, kTagLiteral, 6 + plaintext.size());
  inner.push_back('u');             // UTF-8 text
  inner.push_back(0);               // no file name
  inner.insert(inner.end(), 4, 0);  // date 0
  inner.insert(inner.end(), plaintext.begin(), plaintext.end());
  inner.push_back(0xC0 | kTagMdc);
  inner.push_back(20);
  const auto mdc = sha1(inner);
  inner.insert(inner.end(), mdc.begin(), mdc.end());
  const bool ok = cfb(EVP_aes_256_cfb128(), *key, inner, true);
  OPENSSL_cleanse(key->data(), key->size());
  if (!ok) return make_error(ErrorCode::kInternal, "openpgp: encryption failed");

  Bytes out;
  out.reserve(inner.size() + 32);
  put_header(out, kTagSkesk, 12);
  out.push_back(4);              // version
  out.push_back(kCipherAes256);  // cipher
  out.push_back(1);              // S2K: salted
  out.push_back(kHashSha256);
  out.insert(out.end(), salt.begin(), salt.end());
  put_header(out, kTagSeipd, 1 + inner.size());
  out.push_back(1);  // version
  out.insert(out.end(), inner.begin(), inner.end());
  return out;
}

core::Result<std::string> pgp_sym_decrypt(std::span<const std::uint8_t> message,
                                          std::string_view passphrase) {
  if (message.size() > kMaxMessage) return make_error(ErrorCode::kTooLarge, "openpgp: too large");
  std::size_t pos = 0;
  auto skesk = read_packet(message, pos);
  if (!skesk || skesk->tag != kTagSkesk) return corrupt();
  const Bytes& s = skesk->body;
  if (s.size() < 4 || s[0] != 4) return corrupt();
  std::size_t key_size = 0;
  const EVP_CIPHER* cipher = cfb_of(s[1], key_size);
  if (cipher == nullptr) return make_error(ErrorCode::kUnsupported, "openpgp: unsupported cipher");
  const std::uint8_t s2k_type = s[2];
  const EVP_MD* md = digest_of(s[3]);
  if (md == nullptr) return make_error(ErrorCode::kUnsupported, "openpgp: unsupported hash");
  std::span<const std::uint8_t> salt;
  std::size_t count = 0;
  std::size_t consumed = 4;
  if (s2k_type == 1 || s2k_type == 3) {
    if (s.size() < 12) return corrupt();
    salt = std::span<const std::uint8_t>(s.data() + 4, 8);
    consumed = 12;
    if (s2k_type == 3) {
      if (s.size() < 13) return corrupt();
      const std::uint8_t c = s[12];
      count = static_cast<std::size_t>(16 + (c & 15)) << ((c >> 4) + 6);
      consumed = 13;
    }
  } else if (s2k_type != 0) {
    return make_error(ErrorCode::kUnsupported, "openpgp: unsupported S2K");
  }
  if (s.size() != consumed) {
    return make_error(ErrorCode::kUnsupported, "openpgp: encrypted session keys are not supported");
  }
  // Further packets before the data may be marker packets (tag 10); skip them, bounded.
  std::optional<Packet> data;
  for (int i = 0; i < 4; ++i) {
    data = read_packet(message, pos);
    if (!data || data->tag != 10) break;
  }
  if (!data || pos != message.size()) return corrupt();  // nothing may follow the data
  if (data->tag == kTagSed) {
    return make_error(ErrorCode::kUnsupported, "openpgp: a value without integrity protection");
  }
  if (data->tag != kTagSeipd || data->body.empty() || data->body[0] != 1) return corrupt();
  auto key = s2k(md, salt, passphrase, count, key_size);
  if (!key) return make_error(ErrorCode::kInternal, "openpgp: key derivation failed");
  Bytes inner(data->body.begin() + 1, data->body.end());
  const bool ok = cfb(cipher, *key, inner, false);
  OPENSSL_cleanse(key->data(), key->size());
  if (!ok) return corrupt();
  // Quick check (prefix repeat), then the MDC over everything before its hash.
  if (inner.size() < kBlock + 2 + 22 || inner[kBlock - 2] != inner[kBlock] ||
      inner[kBlock - 1] != inner[kBlock + 1]) {
    return corrupt();
  }
  const std::size_t mdc_at = inner.size() - 22;
  if (inner[mdc_at] != (0xC0 | kTagMdc) || inner[mdc_at + 1] != 20) return corrupt();
  const auto mdc = sha1(std::span<const std::uint8_t>(inner.data(), mdc_at + 2));
  if (CRYPTO_memcmp(mdc.data(), inner.data() + mdc_at + 2, mdc.size()) != 0) return corrupt();
  // The packets inside: one literal data packet.
  const std::span<const std::uint8_t> packets(inner.data() + kBlock + 2, mdc_at - kBlock - 2);
  std::size_t ipos = 0;
  auto literal = read_packet(packets, ipos);
  if (!literal) return corrupt();
  if (literal->tag == kTagCompressed) {
    return make_error(ErrorCode::kUnsupported,
                      "openpgp: compressed values are not supported (use compress-algo=0)");
  }
  if (literal->tag != kTagLiteral || ipos != packets.size()) return corrupt();
  const Bytes& l = literal->body;
  if (l.size() < 2) return corrupt();
  const std::size_t name_length = l[1];
  if (l.size() < 2 + name_length + 4) return corrupt();
  const std::size_t start = 2 + name_length + 4;
  return std::string(l.begin() + static_cast<std::ptrdiff_t>(start), l.end());
}

}  // namespace gw::crypto
