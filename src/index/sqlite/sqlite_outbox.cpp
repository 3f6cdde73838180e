// Outbox operations of SqliteIndex (placeholder until the outbox lands: every call is
// kUnsupported).
#include "index/sqlite/sqlite_index.h"

namespace gw::index {
namespace {
core::Error not_yet() { return core::make_error(core::ErrorCode::kUnsupported, "outbox: not yet"); }
}  // namespace

Result<std::vector<OutboxItem>> SqliteIndex::claim_outbox(const std::string&, std::size_t,
                                                          const std::string&, std::int64_t,
                                                          std::int64_t) {
  return not_yet();
}
Status SqliteIndex::renew_outbox_leases(const std::string&, std::int64_t, std::int64_t) {
  return not_yet();
}
Status SqliteIndex::complete_outbox(std::int64_t, const std::string&, const OutboxResult&,
                                    std::int64_t) {
  return not_yet();
}
Status SqliteIndex::reschedule_outbox(std::int64_t, const std::string&, std::int64_t,
                                      const OutboxResult&, std::int64_t) {
  return not_yet();
}
Status SqliteIndex::fail_outbox(std::int64_t, const std::string&, const OutboxResult&,
                                std::int64_t) {
  return not_yet();
}
Status SqliteIndex::release_outbox_leases(const std::string&, std::int64_t) { return not_yet(); }
Status SqliteIndex::retry_outbox(std::int64_t, std::int64_t) { return not_yet(); }
Status SqliteIndex::delete_outbox(std::int64_t) { return not_yet(); }
Result<std::optional<OutboxItem>> SqliteIndex::find_outbox(std::int64_t) { return not_yet(); }
Result<std::vector<OutboxItem>> SqliteIndex::list_outbox(const OutboxQuery&) { return not_yet(); }
Result<std::vector<QueueDepth>> SqliteIndex::queue_depths() { return not_yet(); }
Result<std::optional<std::int64_t>> SqliteIndex::next_outbox_due(const std::string&) {
  return not_yet();
}

}  // namespace gw::index
