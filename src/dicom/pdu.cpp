#include "dicom/pdu.h"

#include <string>
#include <utility>

#include "core/bytes.h"
#include "core/check.h"

namespace gw::dicom {
namespace {

using core::ByteReader;
using core::ByteWriter;
using core::ErrorCode;

constexpr std::size_t kAeTitleSize = 16;
constexpr std::size_t kAssociateFixedSize = 68;  // version, reserved, 2 AE titles, 32 reserved
constexpr std::size_t kItemHeaderSize = 4;       // type, reserved, u16 length

// Item types (PS3.8 9.3.2 / 9.3.3).
constexpr std::uint8_t kItemApplicationContext = 0x10;
constexpr std::uint8_t kItemPresentationContextRq = 0x20;
constexpr std::uint8_t kItemPresentationContextAc = 0x21;
constexpr std::uint8_t kItemAbstractSyntax = 0x30;
constexpr std::uint8_t kItemTransferSyntax = 0x40;
constexpr std::uint8_t kItemUserInformation = 0x50;
// User information sub-items (PS3.8 annex D, PS3.7 annex D).
constexpr std::uint8_t kSubMaxLength = 0x51;
constexpr std::uint8_t kSubImplementationClassUid = 0x52;
constexpr std::uint8_t kSubAsyncOpsWindow = 0x53;
constexpr std::uint8_t kSubRoleSelection = 0x54;
constexpr std::uint8_t kSubImplementationVersionName = 0x55;
constexpr std::uint8_t kSubExtendedNegotiation = 0x56;
constexpr std::uint8_t kSubUserIdentityRq = 0x58;
constexpr std::uint8_t kSubUserIdentityAc = 0x59;

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

Result<PresentationContextRq> parse_pc_rq(std::span<const std::uint8_t> value) {
  ByteReader reader(value);
  PresentationContextRq pc;
  if (!reader.u8(pc.id) || !reader.skip(3)) {
    return protocol_error("presentation context item (0x20) shorter than 4 bytes");
  }
  bool have_abstract_syntax = false;
  while (!reader.empty()) {
    GW_ASSIGN_OR_RETURN(const Item sub, read_item(reader, "presentation context item (0x20)"));
    if (sub.type == kItemAbstractSyntax) {
      if (have_abstract_syntax) {
        return protocol_error("presentation context " + std::to_string(pc.id) +
                              ": more than one abstract syntax");
      }
      have_abstract_syntax = true;
      pc.abstract_syntax = trim_uid(sub.value);
    } else if (sub.type == kItemTransferSyntax) {
      pc.transfer_syntaxes.push_back(trim_uid(sub.value));
    }
    // Other sub-item types are not defined for 0x20; ignored like unknown items.
  }
  if (!have_abstract_syntax) {
    return protocol_error("presentation context " + std::to_string(pc.id) +
                          ": no abstract syntax sub-item");
  }
  if (pc.transfer_syntaxes.empty()) {
    return protocol_error("presentation context " + std::to_string(pc.id) +
                          ": no transfer syntax sub-item");
  }
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
      case kSubRoleSelection:
        GW_RETURN_IF_ERROR(parse_role_selection(sub.value, info));
        break;
      case kSubImplementationVersionName:
        info.implementation_version_name = trim_uid(sub.value);
        break;
      case kSubExtendedNegotiation:
        GW_RETURN_IF_ERROR(parse_extended_negotiation(sub.value, info));
        break;
      case kSubUserIdentityRq:
        GW_RETURN_IF_ERROR(parse_user_identity_rq(sub.value, info));
        break;
      case kSubUserIdentityAc:
        GW_RETURN_IF_ERROR(parse_user_identity_ac(sub.value, info));
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

// ---- Encoding helpers -----------------------------------------------------------------------

/// Writes the PDU header with a zero length; `finish_pdu` patches the length in.
std::size_t begin_pdu(ByteWriter& w, PduType type) {
  const std::size_t start = w.size();
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(0);
  w.u32be(0);
  return start;
}

void finish_pdu(ByteWriter& w, std::size_t start) {
  const std::size_t length = w.size() - start - kPduHeaderSize;
  GW_CHECK(length <= 0xFFFFFFFFu);
  w.patch_u32be(start + 2, static_cast<std::uint32_t>(length));
}

std::size_t begin_item(ByteWriter& w, std::uint8_t type) {
  const std::size_t start = w.size();
  w.u8(type);
  w.u8(0);
  w.u16be(0);
  return start;
}

void finish_item(ByteWriter& w, std::size_t start) {
  const std::size_t length = w.size() - start - kItemHeaderSize;
  GW_CHECK(length <= 0xFFFF);  // item values come from u16 fields or local configuration
  w.patch_u16be(start + 2, static_cast<std::uint16_t>(length));
}

void write_item(ByteWriter& w, std::uint8_t type, std::span<const std::uint8_t> value) {
  const std::size_t start = begin_item(w, type);
  w.bytes(value);
  finish_item(w, start);
}

void write_item(ByteWriter& w, std::uint8_t type, std::string_view value) {
  const std::size_t start = begin_item(w, type);
  w.bytes(value);
  finish_item(w, start);
}

void write_u16_field(ByteWriter& w, std::span<const std::uint8_t> value) {
  GW_CHECK(value.size() <= 0xFFFF);
  w.u16be(static_cast<std::uint16_t>(value.size()));
  w.bytes(value);
}

void write_u16_field(ByteWriter& w, std::string_view value) {
  GW_CHECK(value.size() <= 0xFFFF);
  w.u16be(static_cast<std::uint16_t>(value.size()));
  w.bytes(value);
}

void write_ae(ByteWriter& w, std::string_view ae) {
  ae = ae.substr(0, kAeTitleSize);
  w.bytes(ae);
  for (std::size_t i = ae.size(); i < kAeTitleSize; ++i) w.u8(' ');
}

void write_user_information(ByteWriter& w, const UserInformation& info) {
  const std::size_t start = begin_item(w, kItemUserInformation);
  {
    const std::size_t sub = begin_item(w, kSubMaxLength);
    w.u32be(info.max_pdu_length);
    finish_item(w, sub);
  }
  if (!info.implementation_class_uid.empty()) {
    write_item(w, kSubImplementationClassUid, info.implementation_class_uid);
  }
  if (info.async_ops_window) {
    const std::size_t sub = begin_item(w, kSubAsyncOpsWindow);
    w.u16be(info.async_ops_window->max_invoked);
    w.u16be(info.async_ops_window->max_performed);
    finish_item(w, sub);
  }
  for (const RoleSelection& role : info.role_selections) {
    const std::size_t sub = begin_item(w, kSubRoleSelection);
    write_u16_field(w, role.sop_class_uid);
    w.u8(role.scu_role ? 1 : 0);
    w.u8(role.scp_role ? 1 : 0);
    finish_item(w, sub);
  }
  if (!info.implementation_version_name.empty()) {
    write_item(w, kSubImplementationVersionName, info.implementation_version_name);
  }
  for (const ExtendedNegotiation& ext : info.extended_negotiations) {
    const std::size_t sub = begin_item(w, kSubExtendedNegotiation);
    write_u16_field(w, ext.sop_class_uid);
    w.bytes(ext.info);
    finish_item(w, sub);
  }
  for (const RawItem& raw : info.other_items) write_item(w, raw.type, raw.value);
  if (info.user_identity_rq) {
    const UserIdentityRq& id = *info.user_identity_rq;
    const std::size_t sub = begin_item(w, kSubUserIdentityRq);
    w.u8(id.type);
    w.u8(id.positive_response_requested ? 1 : 0);
    write_u16_field(w, id.primary_field);
    write_u16_field(w, id.secondary_field);
    finish_item(w, sub);
  }
  if (info.user_identity_ac) {
    const std::size_t sub = begin_item(w, kSubUserIdentityAc);
    write_u16_field(w, info.user_identity_ac->server_response);
    finish_item(w, sub);
  }
  finish_item(w, start);
}

void write_associate_fixed(ByteWriter& w, std::uint16_t version, std::string_view called,
                           std::string_view calling, std::string_view application_context) {
  w.u16be(version);
  w.zeros(2);
  write_ae(w, called);
  write_ae(w, calling);
  w.zeros(32);
  write_item(w, kItemApplicationContext, application_context);
}

std::vector<std::uint8_t> encode_fixed4(PduType type, std::uint8_t b1, std::uint8_t b2,
                                        std::uint8_t b3) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  const std::size_t start = begin_pdu(w, type);
  w.u8(0);
  w.u8(b1);
  w.u8(b2);
  w.u8(b3);
  finish_pdu(w, start);
  return out;
}

std::string_view reject_reason_name(RejectSource source, std::uint8_t reason) {
  switch (source) {
    case RejectSource::kServiceUser:
      switch (reason) {
        case 1:
          return "no-reason-given";
        case 2:
          return "application-context-name-not-supported";
        case 3:
          return "calling-AE-title-not-recognized";
        case 7:
          return "called-AE-title-not-recognized";
        default:
          return {};
      }
    case RejectSource::kServiceProviderAcse:
      switch (reason) {
        case 1:
          return "no-reason-given";
        case 2:
          return "protocol-version-not-supported";
        default:
          return {};
      }
    case RejectSource::kServiceProviderPresentation:
      switch (reason) {
        case 1:
          return "temporary-congestion";
        case 2:
          return "local-limit-exceeded";
        default:
          return {};
      }
  }
  return {};
}

}  // namespace

std::string_view name(PduType type) {
  switch (type) {
    case PduType::kAssociateRq:
      return "A-ASSOCIATE-RQ";
    case PduType::kAssociateAc:
      return "A-ASSOCIATE-AC";
    case PduType::kAssociateRj:
      return "A-ASSOCIATE-RJ";
    case PduType::kPDataTf:
      return "P-DATA-TF";
    case PduType::kReleaseRq:
      return "A-RELEASE-RQ";
    case PduType::kReleaseRp:
      return "A-RELEASE-RP";
    case PduType::kAbort:
      return "A-ABORT";
  }
  return "unknown-PDU";
}

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

namespace {

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

std::vector<std::uint8_t> encode_associate_rq(const AssociateRq& rq) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  const std::size_t start = begin_pdu(w, PduType::kAssociateRq);
  write_associate_fixed(w, rq.protocol_version, rq.called_ae, rq.calling_ae,
                        rq.application_context);
  for (const PresentationContextRq& pc : rq.contexts) {
    const std::size_t item = begin_item(w, kItemPresentationContextRq);
    w.u8(pc.id);
    w.zeros(3);
    write_item(w, kItemAbstractSyntax, pc.abstract_syntax);
    for (const std::string& ts : pc.transfer_syntaxes) write_item(w, kItemTransferSyntax, ts);
    finish_item(w, item);
  }
  write_user_information(w, rq.user_info);
  finish_pdu(w, start);
  return out;
}

std::vector<std::uint8_t> encode_associate_ac(const AssociateAc& ac) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  const std::size_t start = begin_pdu(w, PduType::kAssociateAc);
  write_associate_fixed(w, ac.protocol_version, ac.called_ae, ac.calling_ae,
                        ac.application_context);
  for (const PresentationContextAc& pc : ac.contexts) {
    const std::size_t item = begin_item(w, kItemPresentationContextAc);
    w.u8(pc.id);
    w.u8(0);
    w.u8(static_cast<std::uint8_t>(pc.result));
    w.u8(0);
    write_item(w, kItemTransferSyntax, pc.transfer_syntax);
    finish_item(w, item);
  }
  write_user_information(w, ac.user_info);
  finish_pdu(w, start);
  return out;
}

std::vector<std::uint8_t> encode_associate_rj(const AssociateRj& rj) {
  return encode_fixed4(PduType::kAssociateRj, static_cast<std::uint8_t>(rj.result),
                       static_cast<std::uint8_t>(rj.source), rj.reason);
}

std::vector<std::uint8_t> encode_release_rq() {
  return encode_fixed4(PduType::kReleaseRq, 0, 0, 0);
}

std::vector<std::uint8_t> encode_release_rp() {
  return encode_fixed4(PduType::kReleaseRp, 0, 0, 0);
}

std::vector<std::uint8_t> encode_abort(const Abort& abort) {
  return encode_fixed4(PduType::kAbort, 0, static_cast<std::uint8_t>(abort.source), abort.reason);
}

std::array<std::uint8_t, kPduHeaderSize + kPdvHeaderSize> encode_p_data_header(
    std::uint8_t context_id, bool is_command, bool is_last, std::uint32_t data_length) {
  // PDU length = PDV item length field (4) + PDV item length; PDV item length = 2 + data.
  GW_CHECK(data_length <= 0xFFFFFFFFu - kPdvHeaderSize);
  const std::uint32_t item_length = data_length + 2;
  const std::uint32_t pdu_length = data_length + static_cast<std::uint32_t>(kPdvHeaderSize);
  std::array<std::uint8_t, kPduHeaderSize + kPdvHeaderSize> h{};
  h[0] = static_cast<std::uint8_t>(PduType::kPDataTf);
  h[1] = 0;
  for (int i = 0; i < 4; ++i) {
    h[2 + i] = static_cast<std::uint8_t>(pdu_length >> (24 - 8 * i));
    h[6 + i] = static_cast<std::uint8_t>(item_length >> (24 - 8 * i));
  }
  h[10] = context_id;
  h[11] = static_cast<std::uint8_t>((is_command ? 0x01 : 0x00) | (is_last ? 0x02 : 0x00));
  return h;
}

std::string describe(const AssociateRj& rj) {
  std::string out = "A-ASSOCIATE-RJ ";
  switch (rj.result) {
    case RejectResult::kPermanent:
      out += "permanent";
      break;
    case RejectResult::kTransient:
      out += "transient";
      break;
    default:
      out += "result-" + std::to_string(static_cast<int>(rj.result));
      break;
  }
  out += '/';
  switch (rj.source) {
    case RejectSource::kServiceUser:
      out += "service-user";
      break;
    case RejectSource::kServiceProviderAcse:
      out += "service-provider-ACSE";
      break;
    case RejectSource::kServiceProviderPresentation:
      out += "service-provider-presentation";
      break;
    default:
      out += "source-" + std::to_string(static_cast<int>(rj.source));
      break;
  }
  out += '/';
  const std::string_view reason = reject_reason_name(rj.source, rj.reason);
  if (reason.empty()) {
    out += "reason-" + std::to_string(rj.reason);
  } else {
    out += reason;
  }
  return out;
}

std::string describe(const Abort& abort) {
  switch (abort.source) {
    case AbortSource::kServiceUser:
      return "A-ABORT service-user";  // the reason is not significant for this source
    case AbortSource::kServiceProvider:
      break;
    default:
      return "A-ABORT source-" + std::to_string(static_cast<int>(abort.source));
  }
  std::string out = "A-ABORT service-provider/";
  switch (abort.reason) {
    case abort_reason::kNotSpecified:
      return out + "reason-not-specified";
    case abort_reason::kUnrecognizedPdu:
      return out + "unrecognized-PDU";
    case abort_reason::kUnexpectedPdu:
      return out + "unexpected-PDU";
    case abort_reason::kUnrecognizedPduParameter:
      return out + "unrecognized-PDU-parameter";
    case abort_reason::kUnexpectedPduParameter:
      return out + "unexpected-PDU-parameter";
    case abort_reason::kInvalidPduParameterValue:
      return out + "invalid-PDU-parameter-value";
    default:
      return out + "reason-" + std::to_string(abort.reason);
  }
}

}  // namespace gw::dicom
