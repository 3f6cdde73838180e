// Users, tokens and audit rows of SqliteIndex (placeholder until they land: kUnsupported).
#include "index/sqlite/sqlite_index.h"

namespace gw::index {
namespace {
core::Error not_yet() { return core::make_error(core::ErrorCode::kUnsupported, "auth: not yet"); }
}  // namespace

Result<std::int64_t> SqliteIndex::create_user(const User&, const AuditEvent*) { return not_yet(); }
Status SqliteIndex::update_user(const User&, const AuditEvent*) { return not_yet(); }
Status SqliteIndex::delete_user(std::int64_t, const AuditEvent*) { return not_yet(); }
Result<std::optional<User>> SqliteIndex::find_user(const std::string&) { return not_yet(); }
Result<std::optional<User>> SqliteIndex::find_user_by_id(std::int64_t) { return not_yet(); }
Result<std::vector<User>> SqliteIndex::list_users() { return not_yet(); }
Result<std::int64_t> SqliteIndex::count_users() { return not_yet(); }
Result<std::int64_t> SqliteIndex::create_token(const ApiToken&, const AuditEvent*) {
  return not_yet();
}
Result<std::optional<TokenOwner>> SqliteIndex::find_token(const std::string&) { return not_yet(); }
Status SqliteIndex::revoke_token(std::int64_t, std::int64_t, const AuditEvent*) {
  return not_yet();
}
Status SqliteIndex::touch_token(std::int64_t, std::int64_t) { return not_yet(); }
Result<std::vector<ApiToken>> SqliteIndex::list_tokens(std::int64_t) { return not_yet(); }
Result<std::int64_t> SqliteIndex::append_audit(const AuditEvent&) { return not_yet(); }
Result<std::vector<AuditEvent>> SqliteIndex::list_audit(const AuditQuery&) { return not_yet(); }

}  // namespace gw::index
