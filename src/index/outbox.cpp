#include "index/outbox.h"

namespace gw::index {

std::string_view to_string(OutboxState state) {
  switch (state) {
    case OutboxState::kPending:
      return "pending";
    case OutboxState::kInFlight:
      return "in_flight";
    case OutboxState::kDelivered:
      return "delivered";
    case OutboxState::kDead:
      return "dead";
  }
  return "pending";
}

std::optional<OutboxState> outbox_state_from_string(std::string_view text) {
  for (auto s : {OutboxState::kPending, OutboxState::kInFlight, OutboxState::kDelivered,
                 OutboxState::kDead}) {
    if (text == to_string(s)) return s;
  }
  return std::nullopt;
}

}  // namespace gw::index
