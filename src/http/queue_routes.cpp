// /api/v1/queue: the outbox as operators see it (the same rows as `dicom-gw queue list`), with
// retry and delete. Each change and its audit row are one transaction (the index takes the
// AuditEvent). A retried row is due at once: the gateway is told, so its forwarder does not
// sleep until its next timer.
#include <cstdint>

#include "http/params.h"
#include "http/routes.h"

namespace gw::http {

namespace {

using core::ErrorCode;

constexpr std::int64_t kMaxLimit = 1000;

Json item_json(const index::OutboxItem& i) {
  return {{"id", i.id},
          {"destination", i.destination},
          {"state", index::to_string(i.state)},
          {"attempts", i.attempts},
          {"created_at", time_or_null(i.created_at_ms)},
          {"next_attempt_at", time_or_null(i.next_attempt_at_ms)},
          {"updated_at", time_or_null(i.updated_at_ms)},
          {"lease_owner", i.lease_owner},
          {"lease_expires_at", time_or_null(i.lease_expires_at_ms)},
          {"sop_instance_uid", i.sop_instance_uid},
          {"sop_class_uid", i.sop_class_uid},
          {"transfer_syntax_uid", i.transfer_syntax_uid},
          {"study_instance_uid", i.study_instance_uid},
          {"size_bytes", i.size_bytes},
          {"last_status", i.last_status < 0 ? Json(nullptr) : Json(i.last_status)},
          {"last_error", i.last_error},
          {"warning", i.warning}};
}

Json depth_json(const index::QueueDepth& d) {
  return {{"destination", d.destination},
          {"pending", d.pending},
          {"in_flight", d.in_flight},
          {"delivered", d.delivered},
          {"dead", d.dead},
          {"oldest_pending_created_at", time_or_null(d.oldest_pending_created_at_ms)}};
}

core::Result<Response> list_queue(const ApiContext& ctx, const Request& request) {
  GW_RETURN_IF_ERROR(check_query_names(request, {"state", "destination", "limit", "offset"}));
  index::OutboxQuery q;
  GW_ASSIGN_OR_RETURN(auto state, query_text(request, "state", 32));
  if (!state.empty()) {
    q.state = index::outbox_state_from_string(state);
    if (!q.state) {
      return core::make_error(
          ErrorCode::kInvalidArgument,
          "query parameter `state`: one of pending, in_flight, delivered, dead");
    }
  }
  GW_ASSIGN_OR_RETURN(q.destination, query_text(request, "destination", 64));
  GW_ASSIGN_OR_RETURN(q.limit, query_int(request, "limit", 100, 1, kMaxLimit));
  GW_ASSIGN_OR_RETURN(q.offset, query_int(request, "offset", 0, 0, INT64_MAX / 2));
  auto items = ctx.index.list_outbox(q);
  if (!items.ok()) return index_error(items.error());
  auto depths = ctx.index.queue_depths();
  if (!depths.ok()) return index_error(depths.error());
  Json rows = Json::array();
  for (const auto& i : *items) rows.push_back(item_json(i));
  Json per_destination = Json::array();
  for (const auto& d : *depths) per_destination.push_back(depth_json(d));
  return json_response(
      200,
      {{"items", rows}, {"depths", per_destination}, {"limit", q.limit}, {"offset", q.offset}});
}

/// The index's refusals in the API's words (the row is named, the state explained).
core::Error outbox_error(const core::Error& e, std::int64_t id) {
  if (e.code == ErrorCode::kNotFound) {
    return core::make_error(ErrorCode::kNotFound, "no queue item " + std::to_string(id));
  }
  if (e.code == ErrorCode::kConflict) {
    return core::make_error(ErrorCode::kConflict,
                            "queue item " + std::to_string(id) +
                                " is being sent right now (in flight): try again when it is not");
  }
  return index_error(e);
}

/// The audit row of a change to `item` (as it was before), written with the change.
index::AuditEvent queue_audit(const ApiContext& ctx, const Request& request,
                              const std::string& action, const index::OutboxItem& item) {
  return audit_event(ctx, request, action, "queue:" + std::to_string(item.id),
                     {{"destination", item.destination},
                      {"sop_instance_uid", item.sop_instance_uid},
                      {"previous_state", index::to_string(item.state)}});
}

core::Result<index::OutboxItem> existing_item(const ApiContext& ctx, std::int64_t id) {
  auto item = ctx.index.find_outbox(id);
  if (!item.ok()) return index_error(item.error());
  if (!item->has_value()) {
    return core::make_error(ErrorCode::kNotFound, "no queue item " + std::to_string(id));
  }
  return std::move(**item);
}

core::Result<Response> retry_item(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(auto id, path_id(request, "id"));
  GW_ASSIGN_OR_RETURN(auto before, existing_item(ctx, id));
  const auto audit = queue_audit(ctx, request, "queue.retry", before);
  if (auto st = ctx.index.retry_outbox(id, ctx.now_ms(), &audit); !st.ok()) {
    return outbox_error(st.error(), id);
  }
  if (ctx.control != nullptr) ctx.control->queue_changed(before.destination);
  GW_ASSIGN_OR_RETURN(auto after, existing_item(ctx, id));
  return json_response(200, item_json(after));
}

core::Result<Response> delete_item(const ApiContext& ctx, const Request& request) {
  GW_ASSIGN_OR_RETURN(auto id, path_id(request, "id"));
  GW_ASSIGN_OR_RETURN(auto before, existing_item(ctx, id));
  const auto audit = queue_audit(ctx, request, "queue.delete", before);
  if (auto st = ctx.index.delete_outbox(id, ctx.now_ms(), &audit); !st.ok()) {
    return outbox_error(st.error(), id);
  }
  return no_content();
}

}  // namespace

std::vector<Route> queue_routes(ApiContext& ctx) {
  return {
      {"GET", "/api/v1/queue", index::Role::kViewer, bind_handler(ctx, list_queue),
       "List queued deliveries and the depth per destination"},
      {"POST", "/api/v1/queue/{id}/retry", index::Role::kOperator, bind_handler(ctx, retry_item),
       "Make a queued delivery due now (attempts reset)"},
      {"DELETE", "/api/v1/queue/{id}", index::Role::kOperator, bind_handler(ctx, delete_item),
       "Remove a queued delivery that is not in flight"},
  };
}

}  // namespace gw::http
