// GET /health: liveness for load balancers and systemd; no authentication, no index access, so
// it answers even while the database is busy.
#include "http/routes.h"

namespace gw::http {

std::vector<Route> health_routes() {
  auto health = [](const Request&) { return json_response(200, {{"status", "ok"}}); };
  return {
      {"GET", "/health", std::nullopt, health, "Liveness (no authentication)"},
      {"GET", "/api/v1/health", std::nullopt, health, "Liveness (no authentication)"},
  };
}

}  // namespace gw::http
