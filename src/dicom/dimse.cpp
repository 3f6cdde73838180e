#include "dicom/dimse.h"

#include <cstdio>
#include <string_view>
#include <utility>

#include "core/bytes.h"
#include "dicom/uids.h"

namespace gw::dicom {
namespace {

// Group 0000 element numbers (PS3.7 annex E).
constexpr std::uint16_t kGroupLength = 0x0000;
constexpr std::uint16_t kAffectedSopClassUid = 0x0002;
constexpr std::uint16_t kCommandField = 0x0100;
constexpr std::uint16_t kMessageId = 0x0110;
constexpr std::uint16_t kMessageIdRespondedTo = 0x0120;
constexpr std::uint16_t kPriority = 0x0700;
constexpr std::uint16_t kCommandDataSetType = 0x0800;
constexpr std::uint16_t kStatus = 0x0900;
constexpr std::uint16_t kErrorComment = 0x0902;
constexpr std::uint16_t kAffectedSopInstanceUid = 0x1000;
constexpr std::uint16_t kMoveOriginatorAe = 0x1030;
constexpr std::uint16_t kMoveOriginatorMessageId = 0x1031;

constexpr std::size_t kElementHeaderSize = 8;  // tag (4) + 32-bit length, Implicit VR
constexpr std::size_t kMaxErrorCommentLength = 64;

enum class Padding : char { kNul = '\0', kSpace = ' ' };

void put_header(core::ByteWriter& w, std::uint16_t element, std::uint32_t length) {
  w.u16le(0x0000);
  w.u16le(element);
  w.u32le(length);
}

void put_us(core::ByteWriter& w, std::uint16_t element, std::uint16_t value) {
  put_header(w, element, 2);
  w.u16le(value);
}

void put_string(core::ByteWriter& w, std::uint16_t element, std::string_view value,
                Padding padding) {
  const bool odd = value.size() % 2 != 0;
  put_header(w, element, static_cast<std::uint32_t>(value.size() + (odd ? 1 : 0)));
  w.bytes(value);
  if (odd) w.u8(static_cast<std::uint8_t>(padding));
}

std::string_view trim_trailing(std::string_view s) {
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

std::string_view trim_leading_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

std::string to_string(std::span<const std::uint8_t> value) {
  return std::string(reinterpret_cast<const char*>(value.data()), value.size());
}

std::string tag_name(std::uint16_t group, std::uint16_t element) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", group, element);
  return buf;
}

core::Error protocol_error(std::string message) {
  return core::make_error(core::ErrorCode::kProtocol, "DIMSE command: " + std::move(message));
}

}  // namespace

StatusCategory categorize(std::uint16_t status) {
  if (status == status::kSuccess) return StatusCategory::kSuccess;
  if (status == 0xFF00 || status == 0xFF01) return StatusCategory::kPending;
  if (status == 0xFE00) return StatusCategory::kCancel;
  if (status == 0x0001 || status == 0x0107 || status == 0x0116 || (status & 0xF000) == 0xB000) {
    return StatusCategory::kWarning;
  }
  return StatusCategory::kFailure;
}

Result<Command> parse_command(std::span<const std::uint8_t> bytes) {
  core::ByteReader r(bytes);
  Command command;
  bool have_command_field = false;
  while (!r.empty()) {
    std::uint16_t group = 0;
    std::uint16_t element = 0;
    std::uint32_t length = 0;
    if (!r.u16le(group) || !r.u16le(element) || !r.u32le(length)) {
      return protocol_error("truncated element header at offset " + std::to_string(r.position()));
    }
    if (group != 0x0000) {
      return protocol_error("element " + tag_name(group, element) + " in a command set");
    }
    std::span<const std::uint8_t> value;
    if (!r.bytes(length, value)) {
      return protocol_error("element " + tag_name(group, element) + " length " +
                            std::to_string(length) + " exceeds the remaining " +
                            std::to_string(r.remaining()) + " bytes");
    }

    auto us = [&]() -> Result<std::uint16_t> {
      core::ByteReader vr(value);
      std::uint16_t v = 0;
      if (length != 2 || !vr.u16le(v)) {
        return protocol_error("US element " + tag_name(group, element) + " has length " +
                              std::to_string(length));
      }
      return v;
    };

    switch (element) {
      case kGroupLength:
        break;  // recomputed on encode; the element boundaries are checked above
      case kAffectedSopClassUid:
        command.affected_sop_class_uid = std::string(trim_trailing(to_string(value)));
        break;
      case kCommandField: {
        GW_ASSIGN_OR_RETURN(auto v, us());
        command.command_field = static_cast<CommandField>(v);
        have_command_field = true;
        break;
      }
      case kMessageId: {
        GW_ASSIGN_OR_RETURN(command.message_id, us());
        break;
      }
      case kMessageIdRespondedTo: {
        GW_ASSIGN_OR_RETURN(command.message_id_responded_to, us());
        break;
      }
      case kPriority: {
        GW_ASSIGN_OR_RETURN(command.priority, us());
        break;
      }
      case kCommandDataSetType: {
        GW_ASSIGN_OR_RETURN(command.data_set_type, us());
        break;
      }
      case kStatus: {
        GW_ASSIGN_OR_RETURN(command.status, us());
        break;
      }
      case kErrorComment:
        command.error_comment = std::string(trim_trailing(to_string(value)));
        break;
      case kAffectedSopInstanceUid:
        command.affected_sop_instance_uid = std::string(trim_trailing(to_string(value)));
        break;
      case kMoveOriginatorAe:
        command.move_originator_ae =
            std::string(trim_leading_spaces(trim_trailing(to_string(value))));
        break;
      case kMoveOriginatorMessageId: {
        GW_ASSIGN_OR_RETURN(command.move_originator_message_id, us());
        break;
      }
      default:
        break;  // other group-0000 elements (C-FIND/C-MOVE fields, retired ones) are skipped
    }
  }
  if (!have_command_field) return protocol_error("missing Command Field (0000,0100)");
  return command;
}

std::vector<std::uint8_t> encode_command(const Command& command) {
  std::vector<std::uint8_t> body;
  core::ByteWriter w(body);
  if (!command.affected_sop_class_uid.empty()) {
    put_string(w, kAffectedSopClassUid, command.affected_sop_class_uid, Padding::kNul);
  }
  put_us(w, kCommandField, static_cast<std::uint16_t>(command.command_field));
  if (command.message_id) put_us(w, kMessageId, *command.message_id);
  if (command.message_id_responded_to) {
    put_us(w, kMessageIdRespondedTo, *command.message_id_responded_to);
  }
  if (command.priority) put_us(w, kPriority, *command.priority);
  put_us(w, kCommandDataSetType, command.data_set_type);
  if (command.status) put_us(w, kStatus, *command.status);
  if (!command.error_comment.empty()) {
    put_string(w, kErrorComment, command.error_comment, Padding::kSpace);
  }
  if (!command.affected_sop_instance_uid.empty()) {
    put_string(w, kAffectedSopInstanceUid, command.affected_sop_instance_uid, Padding::kNul);
  }
  if (!command.move_originator_ae.empty()) {
    put_string(w, kMoveOriginatorAe, command.move_originator_ae, Padding::kSpace);
  }
  if (command.move_originator_message_id) {
    put_us(w, kMoveOriginatorMessageId, *command.move_originator_message_id);
  }

  std::vector<std::uint8_t> out;
  out.reserve(kElementHeaderSize + 4 + body.size());
  core::ByteWriter ow(out);
  put_header(ow, kGroupLength, 4);
  ow.u32le(static_cast<std::uint32_t>(body.size()));
  ow.bytes(body);
  return out;
}

Command make_c_echo_rq(std::uint16_t message_id) {
  Command c;
  c.command_field = CommandField::kCEchoRq;
  c.message_id = message_id;
  c.affected_sop_class_uid = std::string(kVerificationSopClass);
  c.data_set_type = kNoDataSet;
  return c;
}

Command make_c_echo_rsp(const Command& rq, std::uint16_t status) {
  Command c;
  c.command_field = CommandField::kCEchoRsp;
  c.message_id_responded_to = rq.message_id.value_or(0);
  c.affected_sop_class_uid = rq.affected_sop_class_uid.empty() ? std::string(kVerificationSopClass)
                                                               : rq.affected_sop_class_uid;
  c.data_set_type = kNoDataSet;
  c.status = status;
  return c;
}

Command make_c_store_rq(std::uint16_t message_id, std::string sop_class_uid,
                        std::string sop_instance_uid) {
  Command c;
  c.command_field = CommandField::kCStoreRq;
  c.message_id = message_id;
  c.affected_sop_class_uid = std::move(sop_class_uid);
  c.affected_sop_instance_uid = std::move(sop_instance_uid);
  c.priority = 0;
  c.data_set_type = kDataSetPresent;
  return c;
}

Command make_c_store_rsp(const Command& rq, std::uint16_t status, std::string error_comment) {
  Command c;
  c.command_field = CommandField::kCStoreRsp;
  c.message_id_responded_to = rq.message_id.value_or(0);
  c.affected_sop_class_uid = rq.affected_sop_class_uid;
  c.affected_sop_instance_uid = rq.affected_sop_instance_uid;
  c.data_set_type = kNoDataSet;
  c.status = status;
  if (error_comment.size() > kMaxErrorCommentLength) error_comment.resize(kMaxErrorCommentLength);
  c.error_comment = std::move(error_comment);
  return c;
}

}  // namespace gw::dicom
