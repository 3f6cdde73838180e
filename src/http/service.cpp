#include "http/service.h"

namespace gw::http {

HttpService::HttpService(index::Index& index, GatewayControl* control)
    : limiter_(), ctx_{index, limiter_, control, system_now_ms}, auth_(index) {}

HttpService::~HttpService() { stop(); }

core::Result<std::unique_ptr<HttpService>> HttpService::create(const config::Http& config,
                                                               index::Index& index,
                                                               GatewayControl* control) {
  std::unique_ptr<HttpService> s(new HttpService(index, control));
  GW_ASSIGN_OR_RETURN(auto router, Router::create(api_routes(s->ctx_)));
  s->dispatcher_ = std::make_unique<Dispatcher>(std::move(router), s->auth_);
  ServerOptions options;
  options.bind = config.bind;
  options.port = config.port;
  options.tls = config.tls;
  options.cors_origins = config.cors_origins;
  for (const auto& proxy : config.trusted_proxies) {
    GW_ASSIGN_OR_RETURN(auto network, config::parse_ip_network(proxy));
    options.trusted_proxies.push_back(network);
  }
  GW_ASSIGN_OR_RETURN(s->server_, Server::create(std::move(options), *s->dispatcher_));
  return s;
}

void HttpService::start() { server_->start(); }

void HttpService::stop() {
  if (server_) server_->stop();
}

}  // namespace gw::http
