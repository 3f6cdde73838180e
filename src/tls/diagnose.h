#pragma once
/// Why a TLS handshake failed, in the words an operator needs: "client certificate expired",
/// "unknown CA", "plain DICOM spoken to the TLS port", "protocol too old"... instead of
/// OpenSSL's "certificate verify failed" / "sslv3 alert handshake failure".
///
/// Pure functions over what the channel observed (the Asio error, which carries OpenSSL's
/// packed error code, the first certificate verification failure, the first byte the peer
/// sent), so they are unit-tested without sockets.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace gw::tls {

/// Which end of the connection we are.
enum class Side { kServer, kClient };

/// The first certificate verification failure of one connection, as the verify callback saw
/// it (OpenSSL reports only the last one through SSL_get_verify_result).
struct VerifyFailure {
  int error = 0;        ///< X509_V_ERR_*; 0 (X509_V_OK) when nothing failed
  int depth = -1;       ///< 0 = the peer's own certificate
  std::string subject;  ///< RFC 2253 subject of the certificate that failed
  [[nodiscard]] bool failed() const { return error != 0; }
};

struct HandshakeFailure {
  Side side = Side::kServer;
  std::error_code error;  ///< from the Asio handshake (ssl category: OpenSSL's packed code)
  VerifyFailure verify;
  /// Server side: the first byte the peer sent (peeked before the handshake).
  std::optional<std::uint8_t> first_byte;
  bool timed_out = false;
  std::string host;  ///< client side: the name or address we dialled
};

/// One line of plain words ("client certificate expired (CN=modality1)").
std::string diagnose(const HandshakeFailure& failure);

/// A certificate verification error (X509_V_ERR_*) in plain words, naming whose certificate it
/// is: the client's when we are the server, the server's when we are the client.
std::string describe_verify_error(int x509_error, Side side, std::string_view host = "");

/// What a first byte that is not a TLS handshake record (0x16) means: 0x01 is an
/// A-ASSOCIATE-RQ (plain DICOM), 'G'/'P'/'H' HTTP, 0x80 an SSLv2-format hello. nullopt for 0x16.
std::optional<std::string> describe_first_byte(std::uint8_t byte);

/// The TLS record content type of a handshake: what every TLS ClientHello starts with.
inline constexpr std::uint8_t kTlsHandshakeRecord = 0x16;

}  // namespace gw::tls
