#include "core/error.h"

#include <array>

namespace gw::core {
namespace {

struct Row {
  ErrorCode code;
  std::string_view name;
  int http;
  std::uint16_t dimse;
  int exit;
};

// DIMSE: 0xA700 out of resources, 0xA900 data set does not match SOP class, 0xC000 cannot
// understand, 0x0111 duplicate SOP instance, 0x0110 processing failure, 0x0122 SOP class not
// supported. 0xA7xx is the refusal senders and operators read as "try again later" (our
// forwarder retries it; 0x0110 reads as final): it answers every failure that passes, including
// kConflict (a race with a concurrent store of the same instance, a serialization failure of
// the database: "send it again").
constexpr std::array kTable = {
    Row{ErrorCode::kInvalidArgument, "invalid_argument", 400, 0xC000, 2},
    Row{ErrorCode::kNotFound, "not_found", 404, 0x0110, 1},
    Row{ErrorCode::kAlreadyExists, "already_exists", 409, 0x0111, 1},
    Row{ErrorCode::kConflict, "conflict", 409, 0xA700, 1},
    Row{ErrorCode::kPermissionDenied, "permission_denied", 403, 0x0124, 1},
    Row{ErrorCode::kUnauthenticated, "unauthenticated", 401, 0x0124, 1},
    Row{ErrorCode::kResourceExhausted, "resource_exhausted", 507, 0xA700, 1},
    Row{ErrorCode::kTooLarge, "too_large", 413, 0xA700, 1},
    Row{ErrorCode::kRateLimited, "rate_limited", 429, 0xA700, 1},
    Row{ErrorCode::kTimeout, "timeout", 504, 0xA700, 1},
    Row{ErrorCode::kCancelled, "cancelled", 503, 0xFE00, 1},
    Row{ErrorCode::kIo, "io_error", 500, 0xA700, 1},
    Row{ErrorCode::kProtocol, "protocol_error", 400, 0xC000, 1},
    Row{ErrorCode::kTls, "tls_error", 502, 0xA700, 1},
    Row{ErrorCode::kRejected, "rejected", 502, 0x0110, 1},
    Row{ErrorCode::kUnsupported, "unsupported", 422, 0x0122, 1},
    Row{ErrorCode::kConfig, "config_error", 422, 0x0110, 2},
    Row{ErrorCode::kDatabase, "database_error", 500, 0xA700, 1},
    Row{ErrorCode::kOutcomeUnknown, "outcome_unknown", 503, 0xA700, 1},
    Row{ErrorCode::kDataLoss, "data_loss", 500, 0x0110, 1},
    Row{ErrorCode::kInternal, "internal", 500, 0x0110, 1},
};

const Row& row(ErrorCode code) {
  for (const auto& r : kTable) {
    if (r.code == code) return r;
  }
  return kTable.back();
}

}  // namespace

std::string_view error_code_name(ErrorCode code) { return row(code).name; }
int http_status(ErrorCode code) { return row(code).http; }
std::uint16_t dimse_status(ErrorCode code) { return row(code).dimse; }
int exit_code(ErrorCode code) { return row(code).exit; }

}  // namespace gw::core
