// GET /health: liveness for load balancers and systemd; no authentication, no index access, so
// it answers even while the database is busy. 503 while ingest is stopped by a failed storage
// flush (ADR 012): the gateway runs but refuses every instance until a restart.
#include "http/routes.h"

namespace gw::http {

std::vector<Route> health_routes(ApiContext& ctx) {
  auto health = [&ctx](const Request&) {
    if (ctx.control != nullptr && ctx.control->ingest_stopped()) {
      return json_response(503, {{"status", "failing"},
                                 {"reason",
                                  "a storage flush failed: instances are refused "
                                  "until the gateway is restarted"}});
    }
    return json_response(200, {{"status", "ok"}});
  };
  return {
      {"GET", "/health", std::nullopt, health, "Liveness (no authentication)"},
      {"GET", "/api/v1/health", std::nullopt, health, "Liveness (no authentication)"},
  };
}

}  // namespace gw::http
