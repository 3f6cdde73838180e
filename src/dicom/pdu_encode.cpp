#include <string>

#include "core/bytes.h"
#include "core/check.h"
#include "dicom/pdu.h"
#include "dicom/pdu_items.h"

namespace gw::dicom {
namespace {

using core::ByteWriter;

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

}  // namespace

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

}  // namespace gw::dicom
