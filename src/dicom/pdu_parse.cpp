#include <string>
#include <utility>

#include "core/bytes.h"
#include "dicom/pdu.h"
#include "dicom/pdu_items.h"

namespace gw::dicom {
namespace {

using core::ByteReader;
using core::ErrorCode;

constexpr std::size_t kAssociateFixedSize = 68;  // version, reserved, 2 AE titles, 32 reserved

core::Error protocol_error(std::string message) {
  return core::make_error(ErrorCode::kProtocol, std::move(message));
}

std::string hex8(std::uint8_t v) {
  constexpr char kDigits[] = "0123456789abcdef";
  return {'0', 'x', kDigits[v >> 4], kDigits[v & 0x0F]};
}

std::string_view as_chars(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// AE titles: leading and trailing spaces are not significant (PS3.8 9.3.2); some peers pad
/// with NULs, which are dropped at the end too.
std::string trim_ae(std::span<const std::uint8_t> bytes) {
  std::string_view s = as_chars(bytes);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s);
}

/// UIDs and names inside items: trailing NUL or space padding is removed.
std::string trim_uid(std::span<const std::uint8_t> bytes) {
  std::string_view s = as_chars(bytes);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::uint8_t> to_vector(std::span<const std::uint8_t> bytes) {
  return {bytes.begin(), bytes.end()};
}

/// One item or sub-item: type, reserved byte, 16-bit length, value. The value is a view into
/// the body being parsed.
struct Item {
  std::uint8_t type = 0;
  std::span<const std::uint8_t> value;
};

Result<Item> read_item(ByteReader& reader, std::string_view where) {
  Item item;
  std::uint8_t reserved = 0;
  std::uint16_t length = 0;
  if (!reader.u8(item.type) || !reader.u8(reserved) || !reader.u16be(length)) {
    return protocol_error(std::string(where) + ": truncated item header");
  }
  if (!reader.bytes(length, item.value)) {
    return protocol_error(std::string(where) + ": item " + hex8(item.type) + " length " +
                          std::to_string(length) + " exceeds the remaining " +
                          std::to_string(reader.remaining()) + " bytes");
  }
  return item;
}

/// A 16-bit-length-prefixed field inside a sub-item (role selection, extended negotiation,
/// user identity).
Result<std::span<const std::uint8_t>> read_u16_field(ByteReader& reader, std::string_view what) {
  std::uint16_t length = 0;
  std::span<const std::uint8_t> value;
  if (!reader.u16be(length) || !reader.bytes(length, value)) {
    return protocol_error(std::string(what) + " length exceeds its sub-item");
  }
  return value;
}

/// A context item whose sub-items are all within bounds but do not make a proposal (no
/// abstract syntax, two of them, no transfer syntax) is returned with the abstract syntax or
/// the transfer syntaxes empty (see PresentationContextRq): it is rejected (provider
/// rejection) while the other contexts are negotiated. Only a length that runs past
/// the item, or an item too short for its ID, fails the whole PDU.
Result<PresentationContextRq> parse_pc_rq(std::span<const std::uint8_t> value) {
  ByteReader reader(value);
  PresentationContextRq pc;
  if (!reader.u8(pc.id) || !reader.skip(3)) {
    return protocol_error("presentation context item (0x20) shorter than 4 bytes");
  }
  int abstract_syntaxes = 0;
  while (!reader.empty()) {
    GW_ASSIGN_OR_RETURN(const Item sub, read_item(reader, "presentation context item (0x20)"));
    if (sub.type == kItemAbstractSyntax) {
      if (++abstract_syntaxes == 1) pc.abstract_syntax = trim_uid(sub.value);
    } else if (sub.type == kItemTransferSyntax) {
      pc.transfer_syntaxes.push_back(trim_uid(sub.value));
    }
    // Other sub-item types are not defined for 0x20; ignored like unknown items.
  }
  if (abstract_syntaxes > 1) pc.abstract_syntax.clear();
  return pc;
}

Result<PresentationContextAc> parse_pc_ac(std::span<const std::uint8_t> value) {
  ByteReader reader(value);
  PresentationContextAc pc;
  std::uint8_t reserved = 0;
  std::uint8_t result = 0;
  if (!reader.u8(pc.id) || !reader.u8(reserved) || !reader.u8(result) || !reader.skip(1)) {
    return protocol_error("presentation context item (0x21) shorter than 4 bytes");
  }
  if (result > static_cast<std::uint8_t>(PcResult::kTransferSyntaxesNotSupported)) {
    return protocol_error("presentation context " + std::to_string(pc.id) +
                          ": invalid result/reason " + std::to_string(result));
  }
  pc.result = static_cast<PcResult>(result);
  bool have_transfer_syntax = false;
  while (!reader.empty()) {
    GW_ASSIGN_OR_RETURN(const Item sub, read_item(reader, "presentation context item (0x21)"));
    if (sub.type == kItemTransferSyntax) {
      if (have_transfer_syntax) {
        return protocol_error("presentation context " + std::to_string(pc.id) +
                              ": more than one transfer syntax in A-ASSOCIATE-AC");
      }
      have_transfer_syntax = true;
      pc.transfer_syntax = trim_uid(sub.value);
    }
  }
  // A rejected context's transfer syntax "shall not be tested" (PS3.8 9.3.3.2), so only an
  // accepted one must carry it.
  if (pc.result == PcResult::kAcceptance && !have_transfer_syntax) {
    return protocol_error("presentation context " + std::to_string(pc.id) +
                          ": accepted without a transfer syntax sub-item");
  }
  return pc;
}

Status parse_role_selection(std::span<const std::uint8_t> value, UserInformation& info) {
  ByteReader reader(value);
  GW_ASSIGN_OR_RETURN(const auto uid, read_u16_field(reader, "role selection (0x54) UID"));
  std::uint8_t scu = 0;
  std::uint8_t scp = 0;
  if (!reader.u8(scu) || !reader.u8(scp)) {
    return protocol_error("role selection (0x54): missing role bytes");
  }
  info.role_selections.push_back({trim_uid(uid), scu != 0, scp != 0});
  return core::ok_status();
}

Status parse_extended_negotiation(std::span<const std::uint8_t> value, UserInformation& info) {
  ByteReader reader(value);
  GW_ASSIGN_OR_RETURN(const auto uid, read_u16_field(reader, "extended negotiation (0x56) UID"));
  std::span<const std::uint8_t> rest;
  reader.bytes(reader.remaining(), rest);
  info.extended_negotiations.push_back({trim_uid(uid), to_vector(rest)});
  return core::ok_status();
}

Status parse_user_identity_rq(std::span<const std::uint8_t> value, UserInformation& info) {
  ByteReader reader(value);
  UserIdentityRq identity;
  std::uint8_t positive = 0;
  if (!reader.u8(identity.type) || !reader.u8(positive)) {
    return protocol_error("user identity (0x58) shorter than 2 bytes");
  }
  identity.positive_response_requested = positive != 0;
  GW_ASSIGN_OR_RETURN(const auto primary, read_u16_field(reader, "user identity primary field"));
  GW_ASSIGN_OR_RETURN(const auto secondary,
                      read_u16_field(reader, "user identity secondary field"));
  identity.primary_field = to_vector(primary);
  identity.secondary_field = to_vector(secondary);
  info.user_identity_rq = std::move(identity);
  return core::ok_status();
}

Status parse_user_identity_ac(std::span<const std::uint8_t> value, UserInformation& info) {
  ByteReader reader(value);
  GW_ASSIGN_OR_RETURN(const auto response,
                      read_u16_field(reader, "user identity (0x59) server response"));
  info.user_identity_ac = UserIdentityAc{to_vector(response)};
  return core::ok_status();
}

Result<UserInformation> parse_user_information(std::span<const std::uint8_t> value) {
  ByteReader reader(value);
  UserInformation info;
  while (!reader.empty()) {
    GW_ASSIGN_OR_RETURN(const Item sub, read_item(reader, "user information item (0x50)"));
    switch (sub.type) {
      case kSubMaxLength: {
        ByteReader r(sub.value);
        if (sub.value.size() != 4 || !r.u32be(info.max_pdu_length)) {
          return protocol_error("maximum length sub-item (0x51) length " +
                                std::to_string(sub.value.size()) + ", expected 4");
        }
        break;
      }
      case kSubImplementationClassUid:
        info.implementation_class_uid = trim_uid(sub.value);
        break;
      case kSubAsyncOpsWindow: {
        ByteReader r(sub.value);
        AsyncOpsWindow window;
        if (sub.value.size() != 4 || !r.u16be(window.max_invoked) ||
            !r.u16be(window.max_performed)) {
          return protocol_error("asynchronous operations window sub-item (0x53) length " +
                                std::to_string(sub.value.size()) + ", expected 4");
        }
        info.async_ops_window = window;
        break;
      }
      // Optional sub-items the gateway does not act on (PS3.7 D.3.3.4, D.3.3.5, D.3.3.7): one
      // whose own length fits (read_item checked it) but whose fields do not is skipped and
      // noted, instead of failing the whole association.
      case kSubRoleSelection:
        if (!parse_role_selection(sub.value, info).ok()) info.skipped_sub_items.push_back(sub.type);
        break;
      case kSubImplementationVersionName:
        info.implementation_version_name = trim_uid(sub.value);
        break;
      case kSubExtendedNegotiation:
        if (!parse_extended_negotiation(sub.value, info).ok()) {
          info.skipped_sub_items.push_back(sub.type);
        }
        break;
      case kSubUserIdentityRq:
        if (!parse_user_identity_rq(sub.value, info).ok()) {
          info.skipped_sub_items.push_back(sub.type);
        }
        break;
      case kSubUserIdentityAc:
        if (!parse_user_identity_ac(sub.value, info).ok()) {
          info.skipped_sub_items.push_back(sub.type);
        }
        break;
      default:  // 0x57 and anything unknown: kept raw
        info.other_items.push_back({sub.type, to_vector(sub.value)});
        break;
    }
  }
  return info;
}

/// The fields and items A-ASSOCIATE-RQ and -AC share; the presentation context items differ.
struct AssociateCommon {
  std::uint16_t protocol_version = 0;
  std::string called_ae;
  std::string calling_ae;
  std::string application_context;
  UserInformation user_info;
};

template <class Pc, class ParsePc>
Status parse_associate(std::span<const std::uint8_t> body, std::string_view pdu_name,
                       std::uint8_t pc_item_type, ParsePc parse_pc, AssociateCommon& common,
                       std::vector<Pc>& contexts) {
  ByteReader reader(body);
  std::span<const std::uint8_t> called;
  std::span<const std::uint8_t> calling;
  if (!reader.u16be(common.protocol_version) || !reader.skip(2) ||
      !reader.bytes(kAeTitleSize, called) || !reader.bytes(kAeTitleSize, calling) ||
      !reader.skip(32)) {
    return protocol_error(std::string(pdu_name) + ": body of " + std::to_string(body.size()) +
                          " bytes is shorter than the fixed " +
                          std::to_string(kAssociateFixedSize) + " bytes");
  }
  common.called_ae = trim_ae(called);
  common.calling_ae = trim_ae(calling);

  bool have_application_context = false;
  bool have_user_info = false;
  while (!reader.empty()) {
    GW_ASSIGN_OR_RETURN(const Item item, read_item(reader, pdu_name));
    if (item.type == kItemApplicationContext) {
      if (have_application_context) {
        return protocol_error(std::string(pdu_name) + ": more than one application context");
      }
      have_application_context = true;
      common.application_context = trim_uid(item.value);
    } else if (item.type == pc_item_type) {
      GW_ASSIGN_OR_RETURN(auto pc, parse_pc(item.value));
      contexts.push_back(std::move(pc));
    } else if (item.type == kItemUserInformation) {
      if (have_user_info) {
        return protocol_error(std::string(pdu_name) + ": more than one user information item");
      }
      have_user_info = true;
      GW_ASSIGN_OR_RETURN(common.user_info, parse_user_information(item.value));
    }
    // Unrecognised items are ignored (PS3.8 9.3.1).
  }
  if (!have_application_context) {
    return protocol_error(std::string(pdu_name) + ": no application context item");
  }
  if (!have_user_info) {
    return protocol_error(std::string(pdu_name) + ": no user information item");
  }
  return core::ok_status();
}

/// Moves the fields A-ASSOCIATE-RQ and -AC share into the parsed PDU.
template <class Pdu>
void take_common(AssociateCommon&& common, Pdu& out) {
  out.protocol_version = common.protocol_version;
  out.called_ae = std::move(common.called_ae);
  out.calling_ae = std::move(common.calling_ae);
  out.application_context = std::move(common.application_context);
  out.user_info = std::move(common.user_info);
}

}  // namespace

Result<PduHeader> parse_pdu_header(std::span<const std::uint8_t, kPduHeaderSize> bytes) {
  const std::uint8_t type = bytes[0];
  if (type < static_cast<std::uint8_t>(PduType::kAssociateRq) ||
      type > static_cast<std::uint8_t>(PduType::kAbort)) {
    return protocol_error("unknown PDU type " + hex8(type));
  }
  ByteReader reader(bytes.subspan<2>());
  PduHeader header{static_cast<PduType>(type), 0};
  reader.u32be(header.length);  // cannot fail: exactly 4 bytes remain
  return header;
}

Result<AssociateRq> parse_associate_rq(std::span<const std::uint8_t> body) {
  AssociateCommon common;
  AssociateRq rq;
  GW_RETURN_IF_ERROR(parse_associate(body, "A-ASSOCIATE-RQ", kItemPresentationContextRq,
                                     parse_pc_rq, common, rq.contexts));
  take_common(std::move(common), rq);
  return rq;
}

Result<AssociateAc> parse_associate_ac(std::span<const std::uint8_t> body) {
  AssociateCommon common;
  AssociateAc ac;
  GW_RETURN_IF_ERROR(parse_associate(body, "A-ASSOCIATE-AC", kItemPresentationContextAc,
                                     parse_pc_ac, common, ac.contexts));
  take_common(std::move(common), ac);
  return ac;
}

Result<AssociateRj> parse_associate_rj(std::span<const std::uint8_t> body) {
  if (body.size() != 4) {
    return protocol_error("A-ASSOCIATE-RJ: body length " + std::to_string(body.size()) +
                          ", expected 4");
  }
  const std::uint8_t result = body[1];
  const std::uint8_t source = body[2];
  if (result != 1 && result != 2) {
    return protocol_error("A-ASSOCIATE-RJ: invalid result " + std::to_string(result));
  }
  if (source < 1 || source > 3) {
    return protocol_error("A-ASSOCIATE-RJ: invalid source " + std::to_string(source));
  }
  return AssociateRj{static_cast<RejectResult>(result), static_cast<RejectSource>(source), body[3]};
}

Status parse_p_data_tf(std::span<const std::uint8_t> body, std::vector<Pdv>& out) {
  out.clear();
  ByteReader reader(body);
  while (!reader.empty()) {
    std::uint32_t length = 0;
    if (!reader.u32be(length)) {
      return protocol_error("P-DATA-TF: truncated PDV item length");
    }
    if (length < 2) {
      return protocol_error("P-DATA-TF: PDV item length " + std::to_string(length) +
                            " leaves no room for the context ID and control header");
    }
    if (length > reader.remaining()) {
      return protocol_error("P-DATA-TF: PDV item length " + std::to_string(length) +
                            " exceeds the remaining " + std::to_string(reader.remaining()) +
                            " bytes");
    }
    Pdv pdv;
    std::uint8_t control = 0;
    reader.u8(pdv.context_id);
    reader.u8(control);
    reader.bytes(length - 2, pdv.data);
    pdv.is_command = (control & 0x01) != 0;
    pdv.is_last = (control & 0x02) != 0;
    out.push_back(pdv);
  }
  if (out.empty()) {
    return protocol_error("P-DATA-TF: no PDV items");
  }
  return core::ok_status();
}

Status parse_release(std::span<const std::uint8_t> body) {
  if (body.size() != 4) {
    return protocol_error("A-RELEASE: body length " + std::to_string(body.size()) + ", expected 4");
  }
  return core::ok_status();
}

Result<Abort> parse_abort(std::span<const std::uint8_t> body) {
  if (body.size() != 4) {
    return protocol_error("A-ABORT: body length " + std::to_string(body.size()) + ", expected 4");
  }
  const std::uint8_t source = body[2];
  if (source != static_cast<std::uint8_t>(AbortSource::kServiceUser) &&
      source != static_cast<std::uint8_t>(AbortSource::kServiceProvider)) {
    return protocol_error("A-ABORT: invalid source " + std::to_string(source));
  }
  return Abort{static_cast<AbortSource>(source), body[3]};
}

}  // namespace gw::dicom
