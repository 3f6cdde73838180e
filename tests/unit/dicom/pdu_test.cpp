#include "dicom/pdu.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace gw::dicom {
namespace {

using Bytes = std::vector<std::uint8_t>;

void append(Bytes& b, std::initializer_list<std::uint8_t> bytes) {
  b.insert(b.end(), bytes.begin(), bytes.end());
}
void append(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }

std::span<const std::uint8_t> body_of(const Bytes& pdu) {
  return std::span<const std::uint8_t>(pdu).subspan(kPduHeaderSize);
}

PduHeader header_of(const Bytes& pdu) {
  EXPECT_GE(pdu.size(), kPduHeaderSize);
  auto header = parse_pdu_header(std::span<const std::uint8_t, kPduHeaderSize>(pdu.data(), 6));
  EXPECT_TRUE(header.ok());
  return header.ok() ? *header : PduHeader{PduType::kAbort, 0};
}

void expect_protocol_error(const core::Error& error) {
  EXPECT_EQ(error.code, core::ErrorCode::kProtocol);
  EXPECT_FALSE(error.message.empty());
}

/// An A-ASSOCIATE-RQ as DCMTK's storescu sends it (two storage contexts, three transfer
/// syntaxes each, max PDU 16384), written out byte by byte.
Bytes storescu_associate_rq() {
  Bytes b;
  append(b, {0x01, 0x00, 0x00, 0x00, 0x01, 0x6b});  // A-ASSOCIATE-RQ, length 363
  append(b, {0x00, 0x01, 0x00, 0x00});              // protocol version 1, reserved
  append(b, "ANY-SCP         ");                    // called AE
  append(b, "STORESCU        ");                    // calling AE
  b.insert(b.end(), 32, 0x00);                      // reserved
  append(b, {0x10, 0x00, 0x00, 0x15});              // application context, 21 bytes
  append(b, "1.2.840.10008.3.1.1.1");
  for (const std::uint8_t id : {1, 3}) {
    append(b, {0x20, 0x00, 0x00, 0x64});  // presentation context, 100 bytes
    append(b, {id, 0x00, 0x00, 0x00});
    append(b, {0x30, 0x00, 0x00, 0x19});  // abstract syntax, 25 bytes
    append(b, id == 1 ? "1.2.840.10008.5.1.4.1.1.2" : "1.2.840.10008.5.1.4.1.1.4");
    append(b, {0x40, 0x00, 0x00, 0x13});
    append(b, "1.2.840.10008.1.2.1");
    append(b, {0x40, 0x00, 0x00, 0x13});
    append(b, "1.2.840.10008.1.2.2");
    append(b, {0x40, 0x00, 0x00, 0x11});
    append(b, "1.2.840.10008.1.2");
  }
  append(b, {0x50, 0x00, 0x00, 0x3a});                          // user information, 58 bytes
  append(b, {0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00});  // max length 16384
  append(b, {0x52, 0x00, 0x00, 0x1b});
  append(b, "1.2.276.0.7230010.3.0.3.6.7");
  append(b, {0x55, 0x00, 0x00, 0x0f});
  append(b, "OFFIS_DCMTK_367");
  return b;
}

UserInformation full_user_information() {
  UserInformation info;
  info.max_pdu_length = 65536;
  info.implementation_class_uid = "1.2.826.0.1.3680043.10.999";
  info.implementation_version_name = "DICOM_GW_010";
  info.async_ops_window = AsyncOpsWindow{3, 5};
  info.role_selections.push_back({"1.2.840.10008.5.1.4.1.1.2", true, false});
  info.role_selections.push_back({"1.2.840.10008.5.1.4.1.1.4", true, true});
  info.extended_negotiations.push_back({"1.2.840.10008.5.1.4.1.2.2.1", {0x01, 0x00, 0x01}});
  info.other_items.push_back({0x57, {0x00, 0x03, '1', '.', '2', 0x00, 0x00}});
  info.other_items.push_back({0x5F, {0xde, 0xad}});
  return info;
}

AssociateRq full_associate_rq() {
  AssociateRq rq;
  rq.called_ae = "GATEWAY";
  rq.calling_ae = "MODALITY 1";
  rq.contexts.push_back({1, "1.2.840.10008.1.1", {"1.2.840.10008.1.2"}});
  rq.contexts.push_back(
      {3, "1.2.840.10008.5.1.4.1.1.2", {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}});
  rq.user_info = full_user_information();
  rq.user_info.user_identity_rq = UserIdentityRq{2, true, {'b', 'o', 'b'}, {'p', 'w'}};
  return rq;
}

AssociateAc full_associate_ac() {
  AssociateAc ac;
  ac.called_ae = "GATEWAY";
  ac.calling_ae = "MODALITY 1";
  ac.contexts.push_back({1, PcResult::kAcceptance, "1.2.840.10008.1.2"});
  ac.contexts.push_back({3, PcResult::kAbstractSyntaxNotSupported, ""});
  ac.contexts.push_back({5, PcResult::kTransferSyntaxesNotSupported, "1.2.840.10008.1.2"});
  ac.user_info = full_user_information();
  ac.user_info.user_identity_ac = UserIdentityAc{{'o', 'k'}};
  return ac;
}

// ---- Header ----------------------------------------------------------------------------------

TEST(PduHeader, ParsesEveryTypeAndLength) {
  for (std::uint8_t type = 1; type <= 7; ++type) {
    const Bytes h = {type, 0x00, 0x12, 0x34, 0x56, 0x78};
    auto header = parse_pdu_header(std::span<const std::uint8_t, 6>(h.data(), 6));
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(static_cast<std::uint8_t>(header->type), type);
    EXPECT_EQ(header->length, 0x12345678u);
  }
}

TEST(PduHeader, KeepsHugeLengthForTheCallerToLimit) {
  const Bytes h = {0x04, 0x00, 0xff, 0xff, 0xff, 0xff};
  auto header = parse_pdu_header(std::span<const std::uint8_t, 6>(h.data(), 6));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->length, 0xFFFFFFFFu);
}

TEST(PduHeader, RejectsUnknownType) {
  for (const std::uint8_t type : {0x00, 0x08, 0x09, 0x16, 0x47, 0xff}) {
    const Bytes h = {type, 0x00, 0x00, 0x00, 0x00, 0x04};
    auto header = parse_pdu_header(std::span<const std::uint8_t, 6>(h.data(), 6));
    ASSERT_FALSE(header.ok()) << int{type};
    expect_protocol_error(header.error());
  }
}

TEST(PduHeader, Names) {
  EXPECT_EQ(name(PduType::kAssociateRq), "A-ASSOCIATE-RQ");
  EXPECT_EQ(name(PduType::kPDataTf), "P-DATA-TF");
  EXPECT_EQ(name(PduType::kAbort), "A-ABORT");
}

// ---- A-ASSOCIATE-RQ / AC ---------------------------------------------------------------------

TEST(AssociateRq, RoundTripWithEverySubItem) {
  const AssociateRq rq = full_associate_rq();
  const Bytes pdu = encode_associate_rq(rq);
  const PduHeader header = header_of(pdu);
  EXPECT_EQ(header.type, PduType::kAssociateRq);
  EXPECT_EQ(header.length, pdu.size() - kPduHeaderSize);
  auto parsed = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, rq);
}

TEST(AssociateAc, RoundTripWithEverySubItem) {
  const AssociateAc ac = full_associate_ac();
  const Bytes pdu = encode_associate_ac(ac);
  const PduHeader header = header_of(pdu);
  EXPECT_EQ(header.type, PduType::kAssociateAc);
  EXPECT_EQ(header.length, pdu.size() - kPduHeaderSize);
  auto parsed = parse_associate_ac(body_of(pdu));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, ac);
}

TEST(AssociateRq, ParsesStorescuBytes) {
  const Bytes pdu = storescu_associate_rq();
  const PduHeader header = header_of(pdu);
  EXPECT_EQ(header.type, PduType::kAssociateRq);
  ASSERT_EQ(header.length, pdu.size() - kPduHeaderSize);
  auto rq = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(rq.ok()) << rq.error().message;
  EXPECT_EQ(rq->protocol_version, 1);
  EXPECT_EQ(rq->called_ae, "ANY-SCP");
  EXPECT_EQ(rq->calling_ae, "STORESCU");
  EXPECT_EQ(rq->application_context, kApplicationContextName);
  ASSERT_EQ(rq->contexts.size(), 2u);
  EXPECT_EQ(rq->contexts[0].id, 1);
  EXPECT_EQ(rq->contexts[0].abstract_syntax, "1.2.840.10008.5.1.4.1.1.2");
  EXPECT_EQ(rq->contexts[0].transfer_syntaxes,
            (std::vector<std::string>{"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                                      "1.2.840.10008.1.2"}));
  EXPECT_EQ(rq->contexts[1].id, 3);
  EXPECT_EQ(rq->contexts[1].abstract_syntax, "1.2.840.10008.5.1.4.1.1.4");
  EXPECT_EQ(rq->user_info.max_pdu_length, 16384u);
  EXPECT_EQ(rq->user_info.implementation_class_uid, "1.2.276.0.7230010.3.0.3.6.7");
  EXPECT_EQ(rq->user_info.implementation_version_name, "OFFIS_DCMTK_367");
  EXPECT_FALSE(rq->user_info.async_ops_window.has_value());
  EXPECT_FALSE(rq->user_info.user_identity_rq.has_value());

  // Our encoder produces the same bytes for the same content.
  EXPECT_EQ(encode_associate_rq(*rq), pdu);
}

TEST(AssociateRq, EveryTruncationFailsCleanly) {
  const Bytes pdu = storescu_associate_rq();
  const auto body = body_of(pdu);
  for (std::size_t n = 0; n < body.size(); ++n) {
    auto rq = parse_associate_rq(body.first(n));
    ASSERT_FALSE(rq.ok()) << "prefix of " << n << " bytes parsed";
    expect_protocol_error(rq.error());
  }
  const Bytes full = encode_associate_rq(full_associate_rq());
  for (std::size_t n = 0; n < full.size() - kPduHeaderSize; ++n) {
    auto rq = parse_associate_rq(body_of(full).first(n));
    ASSERT_FALSE(rq.ok()) << "prefix of " << n << " bytes parsed";
  }
  const Bytes ac = encode_associate_ac(full_associate_ac());
  for (std::size_t n = 0; n < ac.size() - kPduHeaderSize; ++n) {
    ASSERT_FALSE(parse_associate_ac(body_of(ac).first(n)).ok()) << n;
  }
}

TEST(AssociateRq, ItemLengthBeyondBody) {
  Bytes pdu = storescu_associate_rq();
  // The application context item header starts right after the 68 fixed bytes.
  const std::size_t app = kPduHeaderSize + 68;
  ASSERT_EQ(pdu[app], 0x10);
  pdu[app + 2] = 0xff;
  pdu[app + 3] = 0xff;
  auto rq = parse_associate_rq(body_of(pdu));
  ASSERT_FALSE(rq.ok());
  expect_protocol_error(rq.error());
  EXPECT_NE(rq.error().message.find("exceeds"), std::string::npos) << rq.error().message;
}

TEST(AssociateRq, SubItemLengthBeyondItem) {
  Bytes pdu = storescu_associate_rq();
  // The abstract syntax sub-item of the first context: app context item (4 + 21), then the
  // context item header (4) and its 4 fixed bytes.
  const std::size_t abstract = kPduHeaderSize + 68 + 25 + 8;
  ASSERT_EQ(pdu[abstract], 0x30);
  pdu[abstract + 3] = 0x70;  // 112 > the 92 bytes left in the context item
  EXPECT_FALSE(parse_associate_rq(body_of(pdu)).ok());

  Bytes ui = storescu_associate_rq();
  const std::size_t max_length = ui.size() - 58;  // the user information value
  ASSERT_EQ(ui[max_length], 0x51);
  ui[max_length + 2] = 0xff;
  ui[max_length + 3] = 0xff;
  auto rq = parse_associate_rq(body_of(ui));
  ASSERT_FALSE(rq.ok());
  expect_protocol_error(rq.error());
}

TEST(AssociateRq, OptionalSubItemWithBadFieldsIsSkipped) {
  // Role selection whose UID length points past the sub-item (the sub-item's own length fits
  // the user information item): skipped, the association can go ahead (PS3.7 D.3.3.4).
  AssociateRq rq = full_associate_rq();
  rq.user_info = UserInformation{};
  rq.user_info.max_pdu_length = 16384;
  rq.user_info.role_selections.push_back({"1.2.3", true, true});
  Bytes pdu = encode_associate_rq(rq);
  // Find the 0x54 sub-item and corrupt its inner UID length.
  bool found = false;
  for (std::size_t i = kPduHeaderSize + 68; i + 6 < pdu.size(); ++i) {
    if (pdu[i] == 0x54 && pdu[i + 1] == 0 && pdu[i + 2] == 0 && pdu[i + 3] == 9) {
      pdu[i + 4] = 0xff;
      pdu[i + 5] = 0xff;
      found = true;
      break;
    }
  }
  ASSERT_TRUE(found);
  auto parsed = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->user_info.role_selections.empty());
  EXPECT_EQ(parsed->user_info.skipped_sub_items, std::vector<std::uint8_t>{0x54});
  EXPECT_EQ(parsed->user_info.max_pdu_length, 16384u);
  EXPECT_EQ(parsed->contexts, rq.contexts);

  // User identity with a primary field length beyond the sub-item.
  rq.user_info = UserInformation{};
  rq.user_info.user_identity_rq = UserIdentityRq{1, false, {'a'}, {}};
  pdu = encode_associate_rq(rq);
  found = false;
  for (std::size_t i = kPduHeaderSize + 68; i + 8 < pdu.size(); ++i) {
    if (pdu[i] == 0x58 && pdu[i + 1] == 0 && pdu[i + 2] == 0 && pdu[i + 3] == 7) {
      pdu[i + 6] = 0xff;
      pdu[i + 7] = 0xff;
      found = true;
      break;
    }
  }
  ASSERT_TRUE(found);
  parsed = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_FALSE(parsed->user_info.user_identity_rq.has_value());
  EXPECT_EQ(parsed->user_info.skipped_sub_items, std::vector<std::uint8_t>{0x58});
}

TEST(AssociateRq, MaxLengthSubItemMustBeFourBytes) {
  Bytes pdu = storescu_associate_rq();
  const std::size_t max_length = pdu.size() - 58;
  ASSERT_EQ(pdu[max_length], 0x51);
  pdu[max_length + 3] = 0x02;  // claims 2 bytes; the other 2 become a bogus sub-item header
  EXPECT_FALSE(parse_associate_rq(body_of(pdu)).ok());
}

Bytes rq_with_items(std::initializer_list<Bytes> items) {
  Bytes pdu = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
  append(pdu, "CALLED          CALLING         ");
  pdu.insert(pdu.end(), 32, 0x00);
  for (const Bytes& item : items) pdu.insert(pdu.end(), item.begin(), item.end());
  const auto length = static_cast<std::uint32_t>(pdu.size() - kPduHeaderSize);
  pdu[4] = static_cast<std::uint8_t>(length >> 8);
  pdu[5] = static_cast<std::uint8_t>(length);
  return pdu;
}

Bytes item(std::uint8_t type, const Bytes& value) {
  Bytes b = {type, 0x00, static_cast<std::uint8_t>(value.size() >> 8),
             static_cast<std::uint8_t>(value.size())};
  b.insert(b.end(), value.begin(), value.end());
  return b;
}

Bytes str(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

const Bytes kAppContext = item(0x10, str("1.2.840.10008.3.1.1.1"));
const Bytes kUserInfo = item(0x50, item(0x51, {0x00, 0x00, 0x40, 0x00}));

TEST(AssociateRq, MinimalItemsParse) {
  const Bytes pdu = rq_with_items({kAppContext, kUserInfo});
  auto rq = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(rq.ok()) << rq.error().message;
  EXPECT_TRUE(rq->contexts.empty());
  EXPECT_EQ(rq->called_ae, "CALLED");
}

TEST(AssociateRq, MalformedPresentationContextIsKeptForARejection) {
  // No transfer syntax, no abstract syntax, two abstract syntaxes: the context is kept (so it
  // can be answered "no reason") with the missing part empty, and a good one beside it parses.
  const Bytes no_ts = item(0x20, cat({{0x01, 0, 0, 0}, item(0x30, str("1.2.840.10008.1.1"))}));
  const Bytes no_as = item(0x20, cat({{0x03, 0, 0, 0}, item(0x40, str("1.2.840.10008.1.2"))}));
  const Bytes two_as = item(0x20, cat({{0x05, 0, 0, 0},
                                       item(0x30, str("1.2.840.10008.1.1")),
                                       item(0x30, str("1.2.840.10008.5.1.4.1.1.2")),
                                       item(0x40, str("1.2.840.10008.1.2"))}));
  const Bytes good = item(0x20, cat({{0x07, 0, 0, 0},
                                     item(0x30, str("1.2.840.10008.1.1")),
                                     item(0x40, str("1.2.840.10008.1.2"))}));
  auto rq = parse_associate_rq(
      body_of(rq_with_items({kAppContext, no_ts, no_as, two_as, good, kUserInfo})));
  ASSERT_TRUE(rq.ok()) << rq.error().message;
  ASSERT_EQ(rq->contexts.size(), 4u);
  EXPECT_EQ(rq->contexts[0].id, 1);
  EXPECT_EQ(rq->contexts[0].abstract_syntax, "1.2.840.10008.1.1");
  EXPECT_TRUE(rq->contexts[0].transfer_syntaxes.empty());
  EXPECT_EQ(rq->contexts[1].id, 3);
  EXPECT_TRUE(rq->contexts[1].abstract_syntax.empty());
  EXPECT_EQ(rq->contexts[2].id, 5);
  EXPECT_TRUE(rq->contexts[2].abstract_syntax.empty());
  EXPECT_EQ(rq->contexts[3],
            (PresentationContextRq{7, "1.2.840.10008.1.1", {"1.2.840.10008.1.2"}}));
}

TEST(AssociateRq, PresentationContextStillFailsWhenItsLengthsDoNot) {
  // Shorter than its 4 fixed bytes.
  const Bytes short_pc = item(0x20, {0x01, 0, 0});
  EXPECT_FALSE(parse_associate_rq(body_of(rq_with_items({kAppContext, short_pc, kUserInfo}))).ok());
  // A sub-item running past the context item.
  Bytes overrun = item(0x20, cat({{0x01, 0, 0, 0}, item(0x30, str("1.2.840.10008.1.1"))}));
  overrun[4 + 4 + 3] = 0x40;
  EXPECT_FALSE(parse_associate_rq(body_of(rq_with_items({kAppContext, overrun, kUserInfo}))).ok());
}

TEST(AssociateRq, UserInformationSubItemRunningPastItsItemStillFails) {
  // A user identity sub-item declaring more bytes than the user information item holds.
  Bytes identity = item(0x58, {0x01, 0x00, 0x00, 0x01, 'u'});
  identity[3] = 0x40;
  const Bytes ui = item(0x50, cat({item(0x51, {0x00, 0x00, 0x40, 0x00}), identity}));
  auto rq = parse_associate_rq(body_of(rq_with_items({kAppContext, ui})));
  ASSERT_FALSE(rq.ok());
  expect_protocol_error(rq.error());
}

TEST(AssociateRq, UserIdentityWithoutSecondaryFieldLengthIsSkipped) {
  // Type 2 (username and passcode), primary field "user", and no secondary-field length.
  const Bytes identity = item(0x58, {0x02, 0x00, 0x00, 0x04, 'u', 's', 'e', 'r'});
  // Role selection with no role bytes after its UID.
  const Bytes role = item(0x54, cat({{0x00, 0x05}, str("1.2.3")}));
  const Bytes ui =
      item(0x50,
           cat({item(0x51, {0x00, 0x00, 0x40, 0x00}), role, identity, item(0x52, str("1.2.3.4"))}));
  auto rq = parse_associate_rq(body_of(rq_with_items({kAppContext, ui})));
  ASSERT_TRUE(rq.ok()) << rq.error().message;
  EXPECT_FALSE(rq->user_info.user_identity_rq.has_value());
  EXPECT_TRUE(rq->user_info.role_selections.empty());
  EXPECT_EQ(rq->user_info.skipped_sub_items, (std::vector<std::uint8_t>{0x54, 0x58}));
  EXPECT_EQ(rq->user_info.max_pdu_length, 0x4000u);
  EXPECT_EQ(rq->user_info.implementation_class_uid, "1.2.3.4");  // parsing went on after them
}

TEST(AssociateAc, EncodesAContextRejectedForNoReason) {
  AssociateAc ac;
  ac.called_ae = "SCP";
  ac.calling_ae = "SCU";
  ac.contexts = {{1, PcResult::kNoReason, ""}, {3, PcResult::kAcceptance, "1.2.840.10008.1.2"}};
  ac.user_info.max_pdu_length = 16384;
  ac.user_info.implementation_class_uid = "1.2.3";
  const Bytes pdu = encode_associate_ac(ac);
  auto parsed = parse_associate_ac(body_of(pdu));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->contexts, ac.contexts);
}

TEST(AssociateRq, MissingApplicationContextOrUserInformationFails) {
  auto no_app = parse_associate_rq(body_of(rq_with_items({kUserInfo})));
  ASSERT_FALSE(no_app.ok());
  EXPECT_NE(no_app.error().message.find("application context"), std::string::npos);
  auto no_user = parse_associate_rq(body_of(rq_with_items({kAppContext})));
  ASSERT_FALSE(no_user.ok());
  EXPECT_NE(no_user.error().message.find("user information"), std::string::npos);
  EXPECT_FALSE(parse_associate_ac(body_of(rq_with_items({kUserInfo}))).ok());
  EXPECT_FALSE(parse_associate_ac(body_of(rq_with_items({kAppContext}))).ok());
}

TEST(AssociateRq, UnknownItemsAreIgnored) {
  const Bytes pdu = rq_with_items(
      {item(0x7f, {1, 2, 3}), kAppContext, item(0x21, {1, 0, 0, 0}), kUserInfo, item(0x00, {})});
  auto rq = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(rq.ok()) << rq.error().message;
  EXPECT_TRUE(rq->contexts.empty());
}

TEST(AssociateRq, TrimsAeTitlesAndUidPadding) {
  Bytes pdu = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
  append(pdu, "  CALLED AE     ");
  append(pdu, std::string_view("CALLING\0\0\0\0\0\0\0\0\0", 16));
  pdu.insert(pdu.end(), 32, 0x00);
  const Bytes pc = item(0x20, cat({{0x01, 0, 0, 0},
                                   item(0x30, {'1', '.', '2', 0x00}),
                                   item(0x40, str("1.2.840.10008.1.2 "))}));
  const Bytes padded_app = item(0x10, cat({str("1.2.840.10008.3.1.1.1"), {0x00}}));
  for (const Bytes& b : {padded_app, pc, kUserInfo}) pdu.insert(pdu.end(), b.begin(), b.end());
  pdu[4] = static_cast<std::uint8_t>((pdu.size() - 6) >> 8);
  pdu[5] = static_cast<std::uint8_t>(pdu.size() - 6);
  auto rq = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(rq.ok()) << rq.error().message;
  EXPECT_EQ(rq->called_ae, "CALLED AE");
  EXPECT_EQ(rq->calling_ae, "CALLING");
  EXPECT_EQ(rq->application_context, kApplicationContextName);
  EXPECT_EQ(rq->contexts.at(0).abstract_syntax, "1.2");
  EXPECT_EQ(rq->contexts.at(0).transfer_syntaxes.at(0), "1.2.840.10008.1.2");
}

TEST(AssociateRq, EncodePadsAndTruncatesAeTitles) {
  AssociateRq rq;
  rq.called_ae = "SHORT";
  rq.calling_ae = "A_VERY_LONG_AE_TITLE_INDEED";
  const Bytes pdu = encode_associate_rq(rq);
  EXPECT_EQ(std::string(pdu.begin() + 10, pdu.begin() + 26), "SHORT           ");
  EXPECT_EQ(std::string(pdu.begin() + 26, pdu.begin() + 42), "A_VERY_LONG_AE_T");
  auto parsed = parse_associate_rq(body_of(pdu));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->calling_ae, "A_VERY_LONG_AE_T");
  // UIDs are written without padding: the application context item is 21 bytes.
  EXPECT_EQ(pdu[kPduHeaderSize + 68 + 3], 21);
}

TEST(AssociateRq, BodyShorterThanFixedFields) {
  const Bytes body(67, 0x00);
  auto rq = parse_associate_rq(body);
  ASSERT_FALSE(rq.ok());
  expect_protocol_error(rq.error());
  EXPECT_FALSE(parse_associate_rq({}).ok());
}

TEST(AssociateAc, AcceptedContextNeedsTransferSyntaxRejectedDoesNot) {
  const Bytes rejected = item(0x21, {0x03, 0x00, 0x03, 0x00});
  auto ok = parse_associate_ac(body_of(rq_with_items({kAppContext, rejected, kUserInfo})));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->contexts.at(0).result, PcResult::kAbstractSyntaxNotSupported);

  const Bytes accepted = item(0x21, {0x01, 0x00, 0x00, 0x00});
  EXPECT_FALSE(parse_associate_ac(body_of(rq_with_items({kAppContext, accepted, kUserInfo}))).ok());

  const Bytes bad_result =
      item(0x21, cat({{0x01, 0x00, 0x09, 0x00}, item(0x40, str("1.2.840.10008.1.2"))}));
  EXPECT_FALSE(
      parse_associate_ac(body_of(rq_with_items({kAppContext, bad_result, kUserInfo}))).ok());
}

// ---- A-ASSOCIATE-RJ, A-RELEASE, A-ABORT -----------------------------------------------------

TEST(AssociateRj, RoundTripAndBytes) {
  const AssociateRj rj{RejectResult::kTransient, RejectSource::kServiceProviderPresentation,
                       reject_reason::kLocalLimitExceeded};
  const Bytes pdu = encode_associate_rj(rj);
  EXPECT_EQ(pdu, (Bytes{0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x02, 0x03, 0x02}));
  auto parsed = parse_associate_rj(body_of(pdu));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, rj);
}

TEST(AssociateRj, RejectsBadFields) {
  EXPECT_FALSE(parse_associate_rj(Bytes{0x00, 0x03, 0x01, 0x01}).ok());  // result 3
  EXPECT_FALSE(parse_associate_rj(Bytes{0x00, 0x01, 0x04, 0x01}).ok());  // source 4
  EXPECT_FALSE(parse_associate_rj(Bytes{0x00, 0x01, 0x01}).ok());        // short
  EXPECT_FALSE(parse_associate_rj(Bytes{0x00, 0x01, 0x01, 0x01, 0x00}).ok());
}

TEST(Release, RoundTripAndBytes) {
  const Bytes rq = encode_release_rq();
  const Bytes rp = encode_release_rp();
  EXPECT_EQ(rq, (Bytes{0x05, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00}));
  EXPECT_EQ(rp, (Bytes{0x06, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00}));
  EXPECT_TRUE(parse_release(body_of(rq)).ok());
  EXPECT_TRUE(parse_release(body_of(rp)).ok());
  EXPECT_FALSE(parse_release(Bytes{}).ok());
  EXPECT_FALSE(parse_release(Bytes{0, 0, 0, 0, 0}).ok());
}

TEST(Abort, RoundTripAndBytes) {
  const Abort abort{AbortSource::kServiceProvider, abort_reason::kUnexpectedPdu};
  const Bytes pdu = encode_abort(abort);
  EXPECT_EQ(pdu, (Bytes{0x07, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x02, 0x02}));
  auto parsed = parse_abort(body_of(pdu));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, abort);
  EXPECT_FALSE(parse_abort(Bytes{0, 0, 0x05, 0}).ok());
  EXPECT_FALSE(parse_abort(Bytes{0, 0}).ok());
}

TEST(Describe, RejectAndAbort) {
  EXPECT_EQ(describe(AssociateRj{RejectResult::kPermanent, RejectSource::kServiceUser,
                                 reject_reason::kCallingAeNotRecognized}),
            "A-ASSOCIATE-RJ permanent/service-user/calling-AE-title-not-recognized");
  EXPECT_EQ(
      describe(AssociateRj{RejectResult::kTransient, RejectSource::kServiceProviderPresentation,
                           reject_reason::kTemporaryCongestion}),
      "A-ASSOCIATE-RJ transient/service-provider-presentation/temporary-congestion");
  EXPECT_EQ(describe(AssociateRj{RejectResult::kPermanent, RejectSource::kServiceUser, 9}),
            "A-ASSOCIATE-RJ permanent/service-user/reason-9");
  EXPECT_EQ(describe(Abort{AbortSource::kServiceUser, 0}), "A-ABORT service-user");
  EXPECT_EQ(describe(Abort{AbortSource::kServiceProvider, abort_reason::kUnrecognizedPdu}),
            "A-ABORT service-provider/unrecognized-PDU");
}

// ---- P-DATA-TF -------------------------------------------------------------------------------

TEST(PData, HeaderBytes) {
  const auto h = encode_p_data_header(5, true, true, 0x0100);
  EXPECT_EQ(Bytes(h.begin(), h.end()),
            (Bytes{0x04, 0x00, 0x00, 0x00, 0x01, 0x06, 0x00, 0x00, 0x01, 0x02, 0x05, 0x03}));
  const auto d = encode_p_data_header(1, false, false, 0);
  EXPECT_EQ(Bytes(d.begin(), d.end()),
            (Bytes{0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00}));
}

TEST(PData, SinglePdvRoundTrip) {
  const Bytes data = {1, 2, 3, 4, 5, 6, 7};
  const auto h = encode_p_data_header(3, false, true, static_cast<std::uint32_t>(data.size()));
  Bytes pdu(h.begin(), h.end());
  pdu.insert(pdu.end(), data.begin(), data.end());
  const PduHeader header = header_of(pdu);
  EXPECT_EQ(header.type, PduType::kPDataTf);
  ASSERT_EQ(header.length, pdu.size() - kPduHeaderSize);
  std::vector<Pdv> pdvs;
  ASSERT_TRUE(parse_p_data_tf(body_of(pdu), pdvs).ok());
  ASSERT_EQ(pdvs.size(), 1u);
  EXPECT_EQ(pdvs[0].context_id, 3);
  EXPECT_FALSE(pdvs[0].is_command);
  EXPECT_TRUE(pdvs[0].is_last);
  EXPECT_EQ(Bytes(pdvs[0].data.begin(), pdvs[0].data.end()), data);
}

TEST(PData, SeveralPdvs) {
  const Bytes body = {
      0x00, 0x00, 0x00, 0x04, 0x01, 0x03, 0xaa, 0xbb,  // ctx 1, command, last, 2 bytes
      0x00, 0x00, 0x00, 0x02, 0x03, 0x00,              // ctx 3, data, more, empty
      0x00, 0x00, 0x00, 0x03, 0x03, 0x02, 0xcc,        // ctx 3, data, last, 1 byte
  };
  std::vector<Pdv> pdvs = {Pdv{}};  // cleared first
  ASSERT_TRUE(parse_p_data_tf(body, pdvs).ok());
  ASSERT_EQ(pdvs.size(), 3u);
  EXPECT_EQ(pdvs[0].context_id, 1);
  EXPECT_TRUE(pdvs[0].is_command);
  EXPECT_TRUE(pdvs[0].is_last);
  EXPECT_EQ(Bytes(pdvs[0].data.begin(), pdvs[0].data.end()), (Bytes{0xaa, 0xbb}));
  EXPECT_FALSE(pdvs[1].is_command);
  EXPECT_FALSE(pdvs[1].is_last);
  EXPECT_TRUE(pdvs[1].data.empty());
  EXPECT_EQ(pdvs[2].data.size(), 1u);
  EXPECT_EQ(pdvs[2].data[0], 0xcc);
  EXPECT_EQ(pdvs[2].data.data(), body.data() + 20);  // a view, not a copy
}

TEST(PData, EmptyPDataIsAProtocolError) {
  std::vector<Pdv> pdvs;
  auto status = parse_p_data_tf({}, pdvs);
  ASSERT_FALSE(status.ok());
  expect_protocol_error(status.error());
}

TEST(PData, PdvLengthZeroOrOneFails) {
  std::vector<Pdv> pdvs;
  for (const Bytes& body :
       {Bytes{0x00, 0x00, 0x00, 0x00}, Bytes{0x00, 0x00, 0x00, 0x00, 0x01},
        Bytes{0x00, 0x00, 0x00, 0x01, 0x01}, Bytes{0x00, 0x00, 0x00, 0x01, 0x01, 0x02}}) {
    auto status = parse_p_data_tf(body, pdvs);
    ASSERT_FALSE(status.ok());
    expect_protocol_error(status.error());
  }
}

TEST(PData, PdvLengthBeyondBodyFails) {
  std::vector<Pdv> pdvs;
  EXPECT_FALSE(parse_p_data_tf(Bytes{0x00, 0x00, 0x00, 0x05, 0x01, 0x02, 0xaa}, pdvs).ok());
  EXPECT_FALSE(parse_p_data_tf(Bytes{0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0xaa}, pdvs).ok());
  // A valid PDV followed by a truncated item length.
  EXPECT_FALSE(parse_p_data_tf(Bytes{0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x00, 0x00}, pdvs).ok());
}

}  // namespace
}  // namespace gw::dicom
