#include "dicom/dimse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "dicom/uids.h"

namespace gw::dicom {
namespace {

constexpr char kCtImageStorage[] = "1.2.840.10008.5.1.4.1.1.2";

TEST(DimseTest, EchoRqExactBytes) {
  // Hand-computed from PS3.7 annex E: 4 elements after the group length, 56 bytes in all; the
  // 17-character Verification UID is padded with one NUL.
  const std::vector<std::uint8_t> expected = {
      0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,  // (0000,0000) 56
      0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,                          // (0000,0002) 18
      '1',  '.',  '2',  '.',  '8',  '4',  '0',  '.',  '1',  '0',  '0',  '0',
      '8',  '.',  '1',  '.',  '1',  0x00,                          //
      0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,  // (0000,0100)
      0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00,  // (0000,0110) 7
      0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,  // (0000,0800)
  };
  EXPECT_EQ(encode_command(make_c_echo_rq(7)), expected);
}

TEST(DimseTest, EchoRoundTrip) {
  const Command rq = make_c_echo_rq(42);
  auto parsed_rq = parse_command(encode_command(rq));
  ASSERT_TRUE(parsed_rq.ok()) << parsed_rq.error().message;
  EXPECT_EQ(parsed_rq->command_field, CommandField::kCEchoRq);
  EXPECT_EQ(parsed_rq->message_id, std::optional<std::uint16_t>(42));
  EXPECT_EQ(parsed_rq->affected_sop_class_uid, kVerificationSopClass);
  EXPECT_FALSE(parsed_rq->has_data_set());
  EXPECT_FALSE(parsed_rq->status.has_value());

  const Command rsp = make_c_echo_rsp(*parsed_rq, status::kSuccess);
  auto parsed_rsp = parse_command(encode_command(rsp));
  ASSERT_TRUE(parsed_rsp.ok()) << parsed_rsp.error().message;
  EXPECT_EQ(parsed_rsp->command_field, CommandField::kCEchoRsp);
  EXPECT_EQ(parsed_rsp->message_id_responded_to, std::optional<std::uint16_t>(42));
  EXPECT_FALSE(parsed_rsp->message_id.has_value());
  EXPECT_EQ(parsed_rsp->status, std::optional<std::uint16_t>(status::kSuccess));
  EXPECT_EQ(parsed_rsp->affected_sop_class_uid, kVerificationSopClass);
  EXPECT_FALSE(parsed_rsp->has_data_set());
}

TEST(DimseTest, StoreRoundTrip) {
  // Odd-length instance UID: padded on the wire, unpadded after parsing.
  const Command rq = make_c_store_rq(3, kCtImageStorage, "1.2.3.4.5");
  auto parsed_rq = parse_command(encode_command(rq));
  ASSERT_TRUE(parsed_rq.ok()) << parsed_rq.error().message;
  EXPECT_EQ(parsed_rq->command_field, CommandField::kCStoreRq);
  EXPECT_EQ(parsed_rq->message_id, std::optional<std::uint16_t>(3));
  EXPECT_EQ(parsed_rq->priority, std::optional<std::uint16_t>(0));
  EXPECT_EQ(parsed_rq->data_set_type, kDataSetPresent);
  EXPECT_TRUE(parsed_rq->has_data_set());
  EXPECT_EQ(parsed_rq->affected_sop_class_uid, kCtImageStorage);
  EXPECT_EQ(parsed_rq->affected_sop_instance_uid, "1.2.3.4.5");

  const Command rsp = make_c_store_rsp(*parsed_rq, status::kOutOfResources, "disk full");
  auto parsed_rsp = parse_command(encode_command(rsp));
  ASSERT_TRUE(parsed_rsp.ok()) << parsed_rsp.error().message;
  EXPECT_EQ(parsed_rsp->command_field, CommandField::kCStoreRsp);
  EXPECT_EQ(parsed_rsp->message_id_responded_to, std::optional<std::uint16_t>(3));
  EXPECT_EQ(parsed_rsp->status, std::optional<std::uint16_t>(status::kOutOfResources));
  EXPECT_EQ(parsed_rsp->data_set_type, kNoDataSet);
  EXPECT_EQ(parsed_rsp->affected_sop_class_uid, kCtImageStorage);
  EXPECT_EQ(parsed_rsp->affected_sop_instance_uid, "1.2.3.4.5");
  EXPECT_EQ(parsed_rsp->error_comment, "disk full");
  EXPECT_FALSE(parsed_rsp->priority.has_value());
}

TEST(DimseTest, StoreRspWithoutCommentOmitsElement) {
  const Command rq = make_c_store_rq(1, kCtImageStorage, "1.2.3");
  const auto with = encode_command(make_c_store_rsp(rq, status::kSuccess, "x"));
  const auto without = encode_command(make_c_store_rsp(rq, status::kSuccess));
  ASSERT_EQ(with.size(), without.size() + 8 + 2);  // header + "x" padded with a space
  // (0000,0902) precedes the 14-byte (0000,1000) element ("1.2.3" + NUL).
  EXPECT_EQ(with[with.size() - 14 - 2], 'x');
  EXPECT_EQ(with[with.size() - 14 - 1], ' ');
  EXPECT_EQ(with[with.size() - 1], 0x00);
}

TEST(DimseTest, GroupLengthCoversFollowingElements) {
  const auto bytes = encode_command(make_c_store_rq(9, kCtImageStorage, "1.2.840.1"));
  ASSERT_GE(bytes.size(), 12u);
  const std::uint32_t group_length =
      bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (std::uint32_t{bytes[11]} << 24);
  EXPECT_EQ(group_length, bytes.size() - 12);
  EXPECT_EQ(bytes.size() % 2, 0u);
}

TEST(DimseTest, MoveFieldsRoundTrip) {
  Command c = make_c_store_rq(5, kCtImageStorage, "1.2.3");
  c.move_originator_ae = "MOVER";
  c.move_originator_message_id = 77;
  auto parsed = parse_command(encode_command(c));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->move_originator_ae, "MOVER");
  EXPECT_EQ(parsed->move_originator_message_id, std::optional<std::uint16_t>(77));
}

TEST(DimseTest, UnknownGroupZeroElementsAreSkipped) {
  auto bytes = encode_command(make_c_echo_rq(1));
  // (0000,0600) Move Destination AE "DEST  " — not a Command field, must be skipped.
  const std::vector<std::uint8_t> extra = {0x00, 0x00, 0x00, 0x06, 0x06, 0x00, 0x00,
                                           0x00, 'D',  'E',  'S',  'T',  ' ',  ' '};
  bytes.insert(bytes.end(), extra.begin(), extra.end());
  auto parsed = parse_command(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->command_field, CommandField::kCEchoRq);
}

TEST(DimseTest, TruncatedInputIsProtocolError) {
  const auto bytes = encode_command(make_c_store_rq(1, kCtImageStorage, "1.2.3"));
  // Element boundaries: a cut there leaves a shorter but well-formed command.
  std::vector<bool> boundary(bytes.size() + 1, false);
  for (std::size_t pos = 0; pos + 8 <= bytes.size();) {
    boundary[pos] = true;
    pos += 8 + (bytes[pos + 4] | (bytes[pos + 5] << 8));
  }
  for (std::size_t n = 1; n < bytes.size(); ++n) {
    if (boundary[n]) continue;
    auto parsed = parse_command(std::span(bytes.data(), n));
    ASSERT_FALSE(parsed.ok()) << "n=" << n;
    EXPECT_EQ(parsed.error().code, core::ErrorCode::kProtocol) << "n=" << n;
  }
}

TEST(DimseTest, LengthBeyondEndIsProtocolError) {
  auto bytes = encode_command(make_c_echo_rq(1));
  bytes[16] = 0xFF;  // (0000,0002) length low byte: 0x12 -> 0xFF
  auto parsed = parse_command(bytes);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, core::ErrorCode::kProtocol);

  const std::vector<std::uint8_t> huge = {0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x30};
  auto parsed_huge = parse_command(huge);
  ASSERT_FALSE(parsed_huge.ok());
  EXPECT_EQ(parsed_huge.error().code, core::ErrorCode::kProtocol);
}

TEST(DimseTest, OtherGroupIsProtocolError) {
  auto bytes = encode_command(make_c_echo_rq(1));
  // (0008,0016) UI — a data set element inside the command.
  const std::vector<std::uint8_t> data_element = {0x08, 0x00, 0x16, 0x00, 0x02,
                                                  0x00, 0x00, 0x00, '1',  0x00};
  bytes.insert(bytes.end(), data_element.begin(), data_element.end());
  auto parsed = parse_command(bytes);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, core::ErrorCode::kProtocol);
}

TEST(DimseTest, MissingCommandFieldIsProtocolError) {
  const std::vector<std::uint8_t> only_message_id = {0x00, 0x00, 0x10, 0x01, 0x02,
                                                     0x00, 0x00, 0x00, 0x01, 0x00};
  auto parsed = parse_command(only_message_id);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, core::ErrorCode::kProtocol);

  auto empty = parse_command({});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, core::ErrorCode::kProtocol);
}

TEST(DimseTest, WrongUsLengthIsProtocolError) {
  const std::vector<std::uint8_t> bad = {0x00, 0x00, 0x00, 0x01, 0x04, 0x00,
                                         0x00, 0x00, 0x30, 0x00, 0x00, 0x00};
  auto parsed = parse_command(bad);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, core::ErrorCode::kProtocol);
}

TEST(DimseTest, Categorize) {
  EXPECT_EQ(categorize(0x0000), StatusCategory::kSuccess);
  EXPECT_EQ(categorize(0xFF00), StatusCategory::kPending);
  EXPECT_EQ(categorize(0xFF01), StatusCategory::kPending);
  EXPECT_EQ(categorize(0xFE00), StatusCategory::kCancel);
  EXPECT_EQ(categorize(0x0001), StatusCategory::kWarning);
  EXPECT_EQ(categorize(0x0107), StatusCategory::kWarning);
  EXPECT_EQ(categorize(0x0116), StatusCategory::kWarning);
  EXPECT_EQ(categorize(status::kWarningCoercion), StatusCategory::kWarning);
  EXPECT_EQ(categorize(status::kWarningElementsDiscarded), StatusCategory::kWarning);
  EXPECT_EQ(categorize(status::kWarningDataSetMismatch), StatusCategory::kWarning);
  EXPECT_EQ(categorize(0xBFFF), StatusCategory::kWarning);
  EXPECT_EQ(categorize(status::kOutOfResources), StatusCategory::kFailure);
  EXPECT_EQ(categorize(status::kDataSetDoesNotMatchSopClass), StatusCategory::kFailure);
  EXPECT_EQ(categorize(status::kCannotUnderstand), StatusCategory::kFailure);
  EXPECT_EQ(categorize(status::kDuplicateSopInstance), StatusCategory::kFailure);
  EXPECT_EQ(categorize(status::kProcessingFailure), StatusCategory::kFailure);
  EXPECT_EQ(categorize(status::kSopClassNotSupported), StatusCategory::kFailure);
  EXPECT_EQ(categorize(status::kNotAuthorized), StatusCategory::kFailure);
  EXPECT_EQ(categorize(0xFE01), StatusCategory::kFailure);
}

}  // namespace
}  // namespace gw::dicom
