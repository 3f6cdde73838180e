#pragma once
/// DIMSE command sets (PS3.7 section 9.3 and annex E): group 0000 elements in Implicit VR
/// Little Endian, always with the Command Group Length (0000,0000). Covers the fields C-ECHO and
/// C-STORE need and keeps the rest of the command machinery generic enough for C-FIND/C-MOVE.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace gw::dicom {

using core::Result;

enum class CommandField : std::uint16_t {
  kCStoreRq = 0x0001,
  kCStoreRsp = 0x8001,
  kCGetRq = 0x0010,
  kCGetRsp = 0x8010,
  kCFindRq = 0x0020,
  kCFindRsp = 0x8020,
  kCMoveRq = 0x0021,
  kCMoveRsp = 0x8021,
  kCEchoRq = 0x0030,
  kCEchoRsp = 0x8030,
  kCCancelRq = 0x0FFF,
};

/// (0000,0800) Command Data Set Type: 0x0101 means "no data set"; anything else means one follows.
inline constexpr std::uint16_t kNoDataSet = 0x0101;
inline constexpr std::uint16_t kDataSetPresent = 0x0000;

namespace status {
inline constexpr std::uint16_t kSuccess = 0x0000;
inline constexpr std::uint16_t kWarningCoercion = 0xB000;
inline constexpr std::uint16_t kWarningElementsDiscarded = 0xB006;
inline constexpr std::uint16_t kWarningDataSetMismatch = 0xB007;
inline constexpr std::uint16_t kOutOfResources = 0xA700;
inline constexpr std::uint16_t kDataSetDoesNotMatchSopClass = 0xA900;
inline constexpr std::uint16_t kCannotUnderstand = 0xC000;
inline constexpr std::uint16_t kDuplicateSopInstance = 0x0111;
inline constexpr std::uint16_t kProcessingFailure = 0x0110;
inline constexpr std::uint16_t kSopClassNotSupported = 0x0122;
inline constexpr std::uint16_t kNotAuthorized = 0x0124;
}  // namespace status

enum class StatusCategory { kSuccess, kWarning, kFailure, kCancel, kPending };
StatusCategory categorize(std::uint16_t status);

/// A DIMSE command. Optional fields are encoded only when set.
struct Command {
  CommandField command_field = CommandField::kCEchoRq;
  std::optional<std::uint16_t> message_id;                  ///< (0000,0110) requests
  std::optional<std::uint16_t> message_id_responded_to;     ///< (0000,0120) responses
  std::string affected_sop_class_uid;                       ///< (0000,0002)
  std::string affected_sop_instance_uid;                    ///< (0000,1000)
  std::optional<std::uint16_t> priority;                    ///< (0000,0700) C-STORE-RQ: 0 medium
  std::uint16_t data_set_type = kNoDataSet;                 ///< (0000,0800)
  std::optional<std::uint16_t> status;                      ///< (0000,0900) responses
  std::string error_comment;                                ///< (0000,0902) max 64 chars
  std::string move_originator_ae;                           ///< (0000,1030)
  std::optional<std::uint16_t> move_originator_message_id;  ///< (0000,1031)

  bool has_data_set() const { return data_set_type != kNoDataSet; }
};

/// Parses a command set. Unknown group-0000 elements are skipped; elements of another group are
/// a kProtocol error; lengths are checked against the input. UID strings lose trailing NUL/space
/// padding.
Result<Command> parse_command(std::span<const std::uint8_t> bytes);

/// Encodes a command set with its group length; strings are padded to even length (UIDs with
/// NUL, other strings with space).
std::vector<std::uint8_t> encode_command(const Command& command);

/// Convenience builders for the messages the gateway sends.
Command make_c_echo_rq(std::uint16_t message_id);
Command make_c_echo_rsp(const Command& rq, std::uint16_t status);
Command make_c_store_rq(std::uint16_t message_id, std::string sop_class_uid,
                        std::string sop_instance_uid);
Command make_c_store_rsp(const Command& rq, std::uint16_t status, std::string error_comment = {});

}  // namespace gw::dicom
