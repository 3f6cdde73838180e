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

bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace gw::index
