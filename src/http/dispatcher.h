#pragma once
/// The API without sockets: a Request in, a Response out. Order of checks: a token in the
/// query string (400), the route (404, 405), authentication (401) and role (403), then the
/// handler. A handler that throws answers 500 and is logged; it never ends the process.
/// The server (server.h) only translates HTTP to and from these types, so everything here is
/// unit-tested directly.

#include "http/api.h"
#include "http/auth.h"
#include "http/router.h"

namespace gw::http {

class Dispatcher {
 public:
  Dispatcher(Router router, Authenticator& auth) : router_(std::move(router)), auth_(auth) {}

  /// Fills request.path_params, user, token_id and actor before calling the handler.
  Response handle(Request& request) const;

  const Router& router() const { return router_; }

 private:
  Router router_;
  Authenticator& auth_;
};

}  // namespace gw::http
