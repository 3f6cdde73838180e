#include "http/api.h"

#include <chrono>

#include "core/log.h"

namespace gw::http {

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Response json_response(int status, const Json& body) {
  Response r;
  r.status = status;
  // Replace, never throw: a stray invalid UTF-8 byte in a stored field must not fail a listing.
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Response error_response(int status, const std::string& code, const std::string& message,
                        const Json& details) {
  Json body = {{"error", code}, {"message", message}};
  if (!details.is_null()) body["details"] = details;
  return json_response(status, body);
}

Response error_response(const core::Error& error) {
  const int status = core::http_status(error.code);
  const std::string code(core::error_code_name(error.code));
  // 502/504 (a peer refused, a timeout) keep their message: it names the peer's answer.
  if (status == 500 || status == 507) {
    core::logger("http")->error("event=api_error code={} reason=\"{}\"", code, error.message);
    return error_response(status, code, "internal error (details are in the gateway log)");
  }
  return error_response(status, code, error.message);
}

bool role_allows(index::Role role, index::Role min_role) {
  auto rank = [](index::Role r) {
    switch (r) {
      case index::Role::kViewer:
        return 0;
      case index::Role::kOperator:
        return 1;
      case index::Role::kAdmin:
        return 2;
    }
    return 0;
  };
  return rank(role) >= rank(min_role);
}

}  // namespace gw::http
