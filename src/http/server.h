#pragma once
/// The HTTP(S) listener: cpp-httplib underneath, our Dispatcher on top. Every request, whatever
/// its method or path, goes through the Dispatcher, so handlers never see httplib types and
/// there is one place for 404/405. This file owns what only HTTP knows:
///   - security headers on every response, httplib's own errors included (no CORS headers:
///     the web UI is same-origin);
///   - request body limits, enforced on the bytes actually read (Content-Length, chunked and
///     compressed bodies alike) -> 413; a declared oversize body is refused before it is read;
///   - a body without Content-Length or Transfer-Encoding is empty (RFC 9112 6.3), not "read
///     until the client closes";
///   - who the client is: the TCP peer, or behind a trusted reverse proxy the address its
///     X-Forwarded-For names (http.trusted_proxies, client_address);
///   - threads of its own (blocking index calls run there, not on DICOM threads): `threads`
///     kept ready, more while connections wait, up to `max_threads` (http/task_queue.h), so
///     slow clients cannot take them all.
///
/// HTTPS (http.tls): the certificate is a snapshot swapped by reload_tls() and picked up by the
/// next handshake (a ClientHello callback switches each connection to the current context).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "config/ip_network.h"
#include "core/result.h"
#include "http/dispatcher.h"
#include "tls/context.h"

namespace httplib {
class Server;
}

namespace gw::http {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;   ///< 0: an ephemeral port (port() tells which)
  std::size_t threads = 4;  ///< kept ready; more start while connections wait (max_threads)
  std::size_t max_threads = 64;
  /// Largest request body (JSON, or a multipart certificate upload with all its parts).
  std::size_t max_body_bytes = 1 << 20;
  /// HTTPS certificate and key; disabled = plain HTTP.
  config::HttpTls tls;
  /// http.cors_origins: browser origins that get CORS headers (exact match); empty = none.
  std::vector<std::string> cors_origins;
  /// http.trusted_proxies: reverse proxies whose X-Forwarded-For names the client (see
  /// client_address); empty = the TCP peer is the client.
  std::vector<config::IpNetwork> trusted_proxies;
};

/// Who the client of a request is, for rate limiting and audit rows.
struct ClientAddress {
  std::string ip;          ///< the TCP peer, or the address X-Forwarded-For names (canonical)
  bool forwarded = false;  ///< `ip` comes from X-Forwarded-For
  bool malformed = false;  ///< X-Forwarded-For could not be read: `ip` is the TCP peer
};

/// The client of a request from TCP peer `peer_ip` carrying X-Forwarded-For `forwarded_for`
/// (repeated headers joined by commas; nullopt when absent). A peer outside `trusted_proxies`
/// is the client whatever it sends. A trusted peer (nginx with `proxy_set_header
/// X-Forwarded-For $proxy_add_x_forwarded_for`) appends the address it saw, so the list is read
/// from the right: the first hop that is not a trusted proxy is the client (the leftmost when
/// all are). Hops left of it are the client's own claims and are never read, so a client cannot
/// make the header unreadable. A hop that must be read and is not an IP address makes the result
/// the TCP peer, `malformed`.
ClientAddress client_address(const std::string& peer_ip,
                             const std::optional<std::string>& forwarded_for,
                             const std::vector<config::IpNetwork>& trusted_proxies);

class Server {
 public:
  /// Binds the port (a port in use fails here, at start-up) but serves nothing until start().
  static core::Result<std::unique_ptr<Server>> create(ServerOptions options,
                                                      const Dispatcher& dispatcher);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Serves on its own threads until stop().
  void start();
  /// Stops accepting, lets requests in progress finish, joins the threads. Idempotent.
  void stop();

  std::uint16_t port() const { return port_; }
  bool https() const { return tls_ != nullptr; }
  /// Reads the HTTPS certificate and key again; new connections get them. On failure the old
  /// ones stay. kUnsupported without HTTPS.
  core::Status reload_tls(const config::HttpTls& tls);

 private:
  Server(ServerOptions options, const Dispatcher& dispatcher);
  void install_handlers();

  ServerOptions options_;
  const Dispatcher& dispatcher_;
  std::shared_ptr<tls::TlsContextHolder> tls_;  ///< null: plain HTTP
  std::unique_ptr<httplib::Server> server_;
  std::uint16_t port_ = 0;
  std::atomic<bool> warned_forwarded_for_{false};  ///< a malformed X-Forwarded-For was logged
  std::jthread thread_;
};

/// The listener's TLS settings from http.tls: our certificate only, no client certificates,
/// the default BCP 195 profile.
config::Tls https_tls_config(const config::HttpTls& tls);

}  // namespace gw::http
