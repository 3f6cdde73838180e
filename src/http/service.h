#pragma once
/// The REST API as the App sees it: everything the HTTP side needs (route table, login rate
/// limiter, authenticator, listener), built from the `http:` config section in one call.

#include <cstdint>
#include <memory>

#include "config/config.h"
#include "core/result.h"
#include "http/control.h"
#include "http/dispatcher.h"
#include "http/rate_limiter.h"
#include "http/routes.h"
#include "http/server.h"
#include "index/index.h"

namespace gw::http {

class HttpService {
 public:
  /// Builds the routes and binds http.bind:http.port (a port in use fails here, at start-up).
  /// `control` may be null (no /status counters, no forwarder wake-ups); both it and `index`
  /// must outlive the service.
  static core::Result<std::unique_ptr<HttpService>> create(const config::Http& config,
                                                           index::Index& index,
                                                           GatewayControl* control);
  ~HttpService();

  void start();
  /// Stops accepting and waits for requests in progress. Idempotent.
  void stop();
  std::uint16_t port() const { return server_->port(); }
  /// New HTTPS certificate and key for the next connections (certificate upload, reload).
  core::Status reload_tls(const config::HttpTls& tls) { return server_->reload_tls(tls); }

 private:
  HttpService(index::Index& index, GatewayControl* control);

  // Declaration order is construction order: the server refers to the dispatcher, which
  // refers to the authenticator and (through its routes) to the context.
  LoginRateLimiter limiter_;
  ApiContext ctx_;
  Authenticator auth_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Server> server_;
};

}  // namespace gw::http
