#pragma once
/// One error vocabulary for the whole gateway. Every expected failure is an ErrorCode plus a
/// message; one table (error.cpp) maps each code to an HTTP status, a DIMSE status and a CLI
/// exit code, so the mapping is decided once.

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::core {

enum class ErrorCode {
  kInvalidArgument,  ///< bad input from a caller or peer
  kNotFound,
  kAlreadyExists,  ///< duplicate (e.g. SOP Instance UID under duplicates: reject)
  kConflict,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,  ///< disk full, too many associations, memory limit
  kTooLarge,           ///< a length over a configured limit
  kRateLimited,
  kTimeout,
  kCancelled,
  kIo,        ///< file system or socket error
  kProtocol,  ///< peer broke the DICOM protocol
  kTls,
  kRejected,  ///< peer refused (association rejected, failure status)
  kUnsupported,
  kConfig,
  kDatabase,
  kOutcomeUnknown,  ///< a commit whose connection broke: the write may or may not have landed
  kDataLoss,        ///< stored data failed authentication (corrupt or altered; ADR 010)
  kInternal,
};

/// Canonical lower-case name, used in JSON errors and logs ("invalid_argument").
std::string_view error_code_name(ErrorCode code);
int http_status(ErrorCode code);
/// DIMSE C-STORE failure status for an error that ends a store (PS3.4 B.2.3).
std::uint16_t dimse_status(ErrorCode code);
/// Process exit code: 1 operation failed, 2 usage/config.
int exit_code(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) { return {code, std::move(message)}; }

}  // namespace gw::core
