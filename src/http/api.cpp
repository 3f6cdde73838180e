#include "http/api.h"

namespace gw::http {

Response json_response(int status, const Json& body) {
  Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

Response error_response(int status, const std::string& code, const std::string& message,
                        const Json& details) {
  Json body = {{"error", code}, {"message", message}};
  if (!details.is_null()) body["details"] = details;
  return json_response(status, body);
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
