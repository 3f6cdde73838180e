#include "index/auth.h"

namespace gw::index {

std::string_view to_string(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kViewer:
      return "viewer";
  }
  return "viewer";
}

std::optional<Role> role_from_string(std::string_view text) {
  for (auto r : {Role::kAdmin, Role::kOperator, Role::kViewer}) {
    if (text == to_string(r)) return r;
  }
  return std::nullopt;
}

}  // namespace gw::index
