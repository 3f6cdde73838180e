#include "dicom/tls_engine.h"

#include <openssl/err.h>

#include <algorithm>
#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <climits>
#include <cstring>
#include <new>

namespace gw::dicom {

namespace {

std::error_code ssl_error_code(unsigned long code) {
  return {static_cast<int>(code), asio::error::get_ssl_category()};
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

}  // namespace

BIO_METHOD* TlsEngine::bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "dicom-gw channel");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, &TlsEngine::bio_write);
    BIO_meth_set_read(m, &TlsEngine::bio_read);
    BIO_meth_set_ctrl(m, &TlsEngine::bio_ctrl);
    BIO_meth_set_create(m, &bio_create);
    return m;
  }();
  return method;
}

TlsEngine::TlsEngine(SSL_CTX* context) : ssl_(SSL_new(context)) {
  if (ssl_ == nullptr) throw std::system_error(ssl_error_code(ERR_get_error()), "SSL_new");
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);  // an idle connection keeps no record buffers
  BIO_METHOD* method = bio_method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    const auto code = ERR_get_error();
    SSL_free(ssl_);
    throw std::system_error(ssl_error_code(code), "BIO_new");
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL object owns it
}

TlsEngine::~TlsEngine() { SSL_free(ssl_); }

int TlsEngine::bio_write(BIO* bio, const char* data, int len) {
  auto* self = static_cast<TlsEngine*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  const auto* p = reinterpret_cast<const std::uint8_t*>(data);
  try {
    self->tx_pending_.insert(self->tx_pending_.end(), p, p + len);
  } catch (const std::bad_alloc&) {
    return -1;  // no retry flag: OpenSSL reports an error (no exception through C frames)
  }
  return len;
}

int TlsEngine::bio_read(BIO* bio, char* out, int len) {
  auto* self = static_cast<TlsEngine*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const std::size_t available = self->rx_end_ - self->rx_begin_;
  if (available == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  if (len <= 0) return 0;
  const std::size_t n = std::min(available, static_cast<std::size_t>(len));
  std::memcpy(out, self->rx_.data() + self->rx_begin_, n);
  self->rx_begin_ += n;
  return static_cast<int>(n);
}

long TlsEngine::bio_ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  auto* self = static_cast<TlsEngine*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(self->rx_end_ - self->rx_begin_);
    case BIO_CTRL_WPENDING:
      return static_cast<long>(self->tx_pending_.size());
    default:
      return 0;
  }
}

TlsEngine::Step TlsEngine::finish(int result) {
  const int kind = SSL_get_error(ssl_, result);
  const unsigned long code = ERR_get_error();  // the first queued error, as Asio reports it
  switch (kind) {
    case SSL_ERROR_NONE:
      return {Want::kDone, result > 0 ? static_cast<std::size_t>(result) : 0, {}};
    case SSL_ERROR_WANT_READ:
      return {Want::kInput, 0, {}};
    case SSL_ERROR_ZERO_RETURN:
      return {Want::kClosed, 0, asio::error::eof};
    default:  // SSL_ERROR_SSL, SSL_ERROR_SYSCALL, and the retries our BIO never asks for
      if (code == 0) return {Want::kError, 0, asio::ssl::error::unspecified_system_error};
      return {Want::kError, 0, ssl_error_code(code)};
  }
}

TlsEngine::Step TlsEngine::handshake() {
  ERR_clear_error();
  return finish(SSL_do_handshake(ssl_));
}

TlsEngine::Step TlsEngine::read(std::span<std::uint8_t> out) {
  ERR_clear_error();
  const int want = static_cast<int>(std::min<std::size_t>(out.size(), INT_MAX));
  return finish(SSL_read(ssl_, out.data(), want));
}

TlsEngine::Step TlsEngine::write(std::span<const std::uint8_t> in) {
  std::size_t done = 0;
  while (done < in.size()) {
    ERR_clear_error();
    const int want = static_cast<int>(std::min<std::size_t>(in.size() - done, INT_MAX / 2));
    auto step = finish(SSL_write(ssl_, in.data() + done, want));
    if (step.want != Want::kDone) {
      step.want = Want::kError;
      if (!step.error) step.error = asio::ssl::error::unexpected_result;
      return step;
    }
    done += step.bytes;
  }
  return {Want::kDone, done, {}};
}

TlsEngine::Step TlsEngine::shutdown() {
  if ((SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0) {
    ERR_clear_error();
    const int r = SSL_shutdown(ssl_);
    if (r == 1) return {};
    if (r < 0) return finish(r);
  }
  // close_notify is queued; the peer's is read like data (anything before it is dropped).
  std::uint8_t scratch[4096];
  for (;;) {
    ERR_clear_error();
    auto step = finish(SSL_read(ssl_, scratch, sizeof(scratch)));
    if (step.want == Want::kDone) continue;  // bounded: only what is already buffered
    if (step.want == Want::kClosed) return {};
    return step;
  }
}

std::span<std::uint8_t> TlsEngine::rx_space() {
  if (rx_begin_ == rx_end_) {
    rx_begin_ = rx_end_ = 0;
    const std::size_t size = SSL_is_init_finished(ssl_) ? kReceiveBuffer : kHandshakeBuffer;
    if (rx_.size() < size) rx_.resize(size);
  } else if (rx_end_ == rx_.size() && rx_begin_ > 0) {
    std::memmove(rx_.data(), rx_.data() + rx_begin_, rx_end_ - rx_begin_);
    rx_end_ -= rx_begin_;
    rx_begin_ = 0;
  }
  return {rx_.data() + rx_end_, rx_.size() - rx_end_};
}

std::span<const std::uint8_t> TlsEngine::begin_flush() {
  tx_inflight_.swap(tx_pending_);  // both were allocated before: no copy, capacity is kept
  return tx_inflight_;
}

void TlsEngine::end_flush() {
  tx_inflight_.clear();
  if (tx_inflight_.capacity() > kKeptOutput) std::vector<std::uint8_t>().swap(tx_inflight_);
}

std::error_code TlsEngine::eof_error() const {
  if ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0) return asio::error::eof;
  return asio::ssl::error::stream_truncated;
}

}  // namespace gw::dicom
