// The sequence-depth walk that runs before DCMTK parses a data set (dicom/nesting_scan.h):
// each encoding, each way a sequence can be written, and data it cannot follow.

#include "dicom/nesting_scan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dicom/instance_info.h"
#include "dicom/part10.h"
#include "support/deflated_writer.h"
#include "support/temp_dir.h"

namespace gw::dicom {
namespace {

constexpr std::uint32_t kUndefined = 0xFFFFFFFF;

class MemoryReader final : public SequentialReader {
 public:
  explicit MemoryReader(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  bool read(std::span<std::uint8_t> out) override {
    if (bytes_.size() - pos_ < out.size()) return false;
    std::copy_n(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_), out.size(), out.begin());
    pos_ += out.size();
    return true;
  }
  bool skip(std::uint64_t n) override {
    if (bytes_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

/// Writes elements in one encoding.
class Writer {
 public:
  explicit Writer(bool big_endian = false) : big_(big_endian) {}

  void u16(std::uint16_t v) {
    if (big_) {
      out.push_back(static_cast<std::uint8_t>(v >> 8));
      out.push_back(static_cast<std::uint8_t>(v));
    } else {
      out.push_back(static_cast<std::uint8_t>(v));
      out.push_back(static_cast<std::uint8_t>(v >> 8));
    }
  }
  void u32(std::uint32_t v) {
    if (big_) {
      u16(static_cast<std::uint16_t>(v >> 16));
      u16(static_cast<std::uint16_t>(v));
    } else {
      u16(static_cast<std::uint16_t>(v));
      u16(static_cast<std::uint16_t>(v >> 16));
    }
  }
  void tag(std::uint16_t g, std::uint16_t e) {
    u16(g);
    u16(e);
  }
  /// Explicit VR with a long length field (OB, SQ, UN, ...).
  void explicit_long(std::uint16_t g, std::uint16_t e, const char* vr, std::uint32_t length) {
    tag(g, e);
    out.push_back(static_cast<std::uint8_t>(vr[0]));
    out.push_back(static_cast<std::uint8_t>(vr[1]));
    u16(0);
    u32(length);
  }
  void explicit_short(std::uint16_t g, std::uint16_t e, const char* vr, const std::string& value) {
    tag(g, e);
    out.push_back(static_cast<std::uint8_t>(vr[0]));
    out.push_back(static_cast<std::uint8_t>(vr[1]));
    u16(static_cast<std::uint16_t>(value.size()));
    out.insert(out.end(), value.begin(), value.end());
  }
  void implicit(std::uint16_t g, std::uint16_t e, std::uint32_t length) {
    tag(g, e);
    u32(length);
  }
  void item(std::uint32_t length = kUndefined) {
    tag(0xFFFE, 0xE000);
    u32(length);
  }
  void item_end() {
    tag(0xFFFE, 0xE00D);
    u32(0);
  }
  void sequence_end() {
    tag(0xFFFE, 0xE0DD);
    u32(0);
  }

  std::vector<std::uint8_t> out;

 private:
  bool big_;
};

core::Status walk(std::vector<std::uint8_t> bytes, DataSetEncoding encoding, int max_depth) {
  MemoryReader reader(std::move(bytes));
  return check_sequence_nesting(reader, encoding, max_depth);
}

/// `depth` nested undefined-length sequences (Referenced Study Sequence), each in one item.
std::vector<std::uint8_t> nested_explicit(int depth, bool big_endian = false) {
  Writer w(big_endian);
  w.explicit_short(0x0008, 0x0018, "UI", "1.2.3.4");
  for (int i = 0; i < depth; ++i) {
    w.explicit_long(0x0008, 0x1110, "SQ", kUndefined);
    w.item();
    w.explicit_short(0x0008, 0x1150, "UI", "1.2.3.4");
  }
  for (int i = 0; i < depth; ++i) {
    w.item_end();
    w.sequence_end();
  }
  w.explicit_short(0x0010, 0x0020, "LO", "ID");
  return w.out;
}

TEST(NestingScan, TheLimitIsReachedButNotPassed) {
  for (const bool big : {false, true}) {
    const auto encoding = big ? DataSetEncoding::kExplicitBig : DataSetEncoding::kExplicitLittle;
    EXPECT_TRUE(walk(nested_explicit(8, big), encoding, 8).ok());
    const auto refused = walk(nested_explicit(9, big), encoding, 8);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, core::ErrorCode::kInvalidArgument);
    EXPECT_NE(refused.error().message.find("more than 8 levels"), std::string::npos);
  }
}

TEST(NestingScan, SiblingSequencesDoNotAddUp) {
  Writer w;
  for (int i = 0; i < 50; ++i) {
    w.explicit_long(0x0008, 0x1110, "SQ", kUndefined);
    w.item();
    w.explicit_long(0x0008, 0x1115, "SQ", kUndefined);
    w.item();
    w.item_end();
    w.sequence_end();
    w.item_end();
    w.sequence_end();
  }
  EXPECT_TRUE(walk(w.out, DataSetEncoding::kExplicitLittle, 2).ok());
  EXPECT_FALSE(walk(w.out, DataSetEncoding::kExplicitLittle, 1).ok());
}

TEST(NestingScan, DefinedLengthSequencesAndItemsCloseAtTheirEnd) {
  // SQ (defined) > item (defined) > SQ (defined) > item (defined) > UI, then a sibling SQ.
  Writer inner;
  inner.explicit_short(0x0008, 0x1150, "UI", "1.2");
  Writer w;
  const auto item_len = static_cast<std::uint32_t>(inner.out.size());
  const std::uint32_t inner_sq_len = 8 + item_len;
  const std::uint32_t outer_item_len = 12 + inner_sq_len;
  const std::uint32_t outer_sq_len = 8 + outer_item_len;
  w.explicit_long(0x0008, 0x1110, "SQ", outer_sq_len);
  w.item(outer_item_len);
  w.explicit_long(0x0008, 0x1115, "SQ", inner_sq_len);
  w.item(item_len);
  w.out.insert(w.out.end(), inner.out.begin(), inner.out.end());
  w.explicit_long(0x0008, 0x1140, "SQ", 8 + item_len);
  w.item(item_len);
  w.out.insert(w.out.end(), inner.out.begin(), inner.out.end());
  EXPECT_TRUE(walk(w.out, DataSetEncoding::kExplicitLittle, 2).ok());
  EXPECT_FALSE(walk(w.out, DataSetEncoding::kExplicitLittle, 1).ok());
}

TEST(NestingScan, ImplicitVrSequencesAreFoundByTheDictionaryOrTheirLength) {
  Writer w;
  // (0008,1110) is an SQ in the dictionary: defined length, one item.
  w.implicit(0x0008, 0x1110, 8 + 12);
  w.item(12);
  w.implicit(0x0008, 0x1150, 4);
  w.out.insert(w.out.end(), {'1', '.', '2', 0});
  // An unknown private tag with undefined length: read as a sequence.
  w.implicit(0x0009, 0x1010, kUndefined);
  w.item();
  w.implicit(0x0009, 0x1011, kUndefined);
  w.item();
  w.item_end();
  w.sequence_end();
  w.item_end();
  w.sequence_end();
  EXPECT_TRUE(walk(w.out, DataSetEncoding::kImplicitLittle, 2).ok());
  EXPECT_FALSE(walk(w.out, DataSetEncoding::kImplicitLittle, 1).ok());
}

TEST(NestingScan, APrivateValueThatHoldsItemsIsWalkedAsASequence) {
  // Implicit VR, a defined-length private value whose content is an item holding a sequence:
  // a private dictionary may make DCMTK parse it as one.
  Writer content;
  content.implicit(0x0009, 0x1011, kUndefined);
  content.item();
  content.item_end();
  content.sequence_end();
  Writer w;
  w.implicit(0x0009, 0x1010, static_cast<std::uint32_t>(8 + content.out.size()));
  w.item(static_cast<std::uint32_t>(content.out.size()));
  w.out.insert(w.out.end(), content.out.begin(), content.out.end());
  w.implicit(0x0010, 0x0020, 2);
  w.out.insert(w.out.end(), {'I', 'D'});
  EXPECT_TRUE(walk(w.out, DataSetEncoding::kImplicitLittle, 2).ok());
  EXPECT_FALSE(walk(w.out, DataSetEncoding::kImplicitLittle, 1).ok());
}

TEST(NestingScan, UndefinedLengthUnHoldsImplicitVr) {
  Writer w;
  w.explicit_long(0x0009, 0x1010, "UN", kUndefined);
  w.item();
  w.implicit(0x0009, 0x1011, kUndefined);  // implicit inside UN
  w.item();
  w.item_end();
  w.sequence_end();
  w.item_end();
  w.sequence_end();
  w.explicit_short(0x0010, 0x0020, "LO", "ID");
  EXPECT_TRUE(walk(w.out, DataSetEncoding::kExplicitLittle, 2).ok());
  EXPECT_FALSE(walk(w.out, DataSetEncoding::kExplicitLittle, 1).ok());
}

// DCMTK reads a VR it does not know with a 4-byte length, and with undefined length as UN:
// a sequence in Implicit VR (CP-246). Read otherwise, the walk would lose its way and stop
// early while DCMTK went on into the nesting.
TEST(NestingScan, AnUnknownVrIsReadAsDcmtkReadsIt) {
  Writer defined;
  defined.explicit_long(0x0009, 0x1010, "ZZ", 4);
  defined.out.insert(defined.out.end(), {'a', 'b', 'c', 'd'});
  defined.explicit_long(0x0008, 0x1110, "SQ", kUndefined);
  defined.item();
  defined.item_end();
  defined.sequence_end();
  EXPECT_TRUE(walk(defined.out, DataSetEncoding::kExplicitLittle, 1).ok());
  EXPECT_FALSE(walk(defined.out, DataSetEncoding::kExplicitLittle, 0).ok());

  Writer undefined;
  undefined.explicit_long(0x0009, 0x1010, "ZZ", kUndefined);
  undefined.item();
  undefined.implicit(0x0008, 0x1110, kUndefined);  // Implicit VR inside
  undefined.item();
  undefined.item_end();
  undefined.sequence_end();
  undefined.item_end();
  undefined.sequence_end();
  EXPECT_TRUE(walk(undefined.out, DataSetEncoding::kExplicitLittle, 2).ok());
  EXPECT_FALSE(walk(undefined.out, DataSetEncoding::kExplicitLittle, 1).ok());
}

TEST(NestingScan, EncapsulatedPixelDataFragmentsAreNotLevels) {
  Writer w;
  w.explicit_long(0x7FE0, 0x0010, "OB", kUndefined);
  w.item(0);  // the basic offset table
  for (int i = 0; i < 10; ++i) {
    w.item(4);
    w.out.insert(w.out.end(), {0xFE, 0xFF, 0x00, 0xE0});  // fragment bytes that look like a tag
  }
  w.sequence_end();
  EXPECT_TRUE(walk(w.out, DataSetEncoding::kExplicitLittle, 0).ok());
}

TEST(NestingScan, TruncatedOrMalformedDataEndsTheWalkWithoutAnError) {
  auto deep = nested_explicit(5);
  deep.resize(deep.size() / 3);  // cut in the middle of the nesting
  EXPECT_TRUE(walk(deep, DataSetEncoding::kExplicitLittle, 8).ok());
  Writer stray;
  stray.item_end();  // a delimiter outside any item
  EXPECT_TRUE(walk(stray.out, DataSetEncoding::kExplicitLittle, 8).ok());
  EXPECT_TRUE(walk({0x08, 0x00}, DataSetEncoding::kExplicitLittle, 8).ok());
  EXPECT_TRUE(walk({}, DataSetEncoding::kExplicitLittle, 8).ok());
  // A value longer than the data.
  Writer longer;
  longer.explicit_long(0x0009, 0x1010, "OB", 1000);
  EXPECT_TRUE(walk(longer.out, DataSetEncoding::kExplicitLittle, 8).ok());
}

TEST(NestingScan, EncodingsByTransferSyntax) {
  EXPECT_EQ(encoding_of("1.2.840.10008.1.2"), DataSetEncoding::kImplicitLittle);
  EXPECT_EQ(encoding_of("1.2.840.10008.1.2.1"), DataSetEncoding::kExplicitLittle);
  EXPECT_EQ(encoding_of("1.2.840.10008.1.2.2"), DataSetEncoding::kExplicitBig);
  EXPECT_EQ(encoding_of("1.2.840.10008.1.2.1.99"), DataSetEncoding::kExplicitLittle);
  EXPECT_EQ(encoding_of("1.2.840.10008.1.2.4.50"), DataSetEncoding::kExplicitLittle);
}

// ---- through read_instance_info, where the walk runs before DCMTK parses ----------------------

constexpr const char* kCtImage = "1.2.840.10008.5.1.4.1.1.2";

/// SOP class and instance UIDs, then `depth` nested sequences, in Explicit VR Little Endian.
std::vector<std::uint8_t> deep_data_set(int depth) {
  Writer w;
  w.explicit_short(0x0008, 0x0016, "UI", std::string(kCtImage) + '\0');
  w.explicit_short(0x0008, 0x0018, "UI", "1.2.3.4");
  auto nested = nested_explicit(depth);
  w.out.insert(w.out.end(), nested.begin(), nested.end());
  return w.out;
}

void write_part10(const std::filesystem::path& path, const std::string& transfer_syntax,
                  const std::vector<std::uint8_t>& data_set) {
  FileMeta meta;
  meta.media_storage_sop_class_uid = kCtImage;
  meta.media_storage_sop_instance_uid = "1.2.3.4";
  meta.transfer_syntax_uid = transfer_syntax;
  meta.implementation_class_uid = "1.2.826.0.1.3680043.2.1.99";
  const auto head = encode_file_meta(meta);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
  out.write(reinterpret_cast<const char*>(data_set.data()),
            static_cast<std::streamsize>(data_set.size()));
}

// 30,000 levels (about 1 MB) made DCMTK's recursive parse overflow the thread's stack: the
// whole gateway died on one instance. Refused before DCMTK sees it.
TEST(NestingScanParse, AThousandfoldNestedDataSetIsRefusedNotParsed) {
  test::TempDir dir("gw-nesting-test");
  const auto path = dir.path() / "deep.dcm";
  write_part10(path, "1.2.840.10008.1.2.1", deep_data_set(30000));
  auto info = read_instance_info(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message.find("nest more than 128 levels"), std::string::npos)
      << info.error().message;

  // Behind a VR DCMTK does not know, of undefined length: DCMTK reads it as UN, a sequence
  // in Implicit VR (CP-246), and went on into the nesting.
  Writer hidden;
  hidden.explicit_short(0x0008, 0x0016, "UI", std::string(kCtImage) + '\0');
  hidden.explicit_short(0x0008, 0x0018, "UI", "1.2.3.4");
  hidden.explicit_long(0x0009, 0x1010, "ZZ", kUndefined);
  hidden.item();
  for (int i = 0; i < 30000; ++i) {
    hidden.implicit(0x0008, 0x1110, kUndefined);
    hidden.item();
  }
  for (int i = 0; i < 30001; ++i) {
    hidden.item_end();
    hidden.sequence_end();
  }
  const auto behind_unknown_vr = dir.path() / "deep-zz.dcm";
  write_part10(behind_unknown_vr, "1.2.840.10008.1.2.1", hidden.out);
  auto unknown = read_instance_info(behind_unknown_vr);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("nest more than 128 levels"), std::string::npos)
      << unknown.error().message;

  // Deflated the same way: inflated and walked before the parse.
  const auto deflated = dir.path() / "deep-deflated.dcm";
  {
    test::DeflatedWriter writer(deflated, kCtImage, "1.2.3.4", 6);
    writer.raw(deep_data_set(30000));
    ASSERT_TRUE(writer.finish());
  }
  auto inflated = read_instance_info(deflated);
  ASSERT_FALSE(inflated.ok());
  EXPECT_NE(inflated.error().message.find("nest more than 128 levels"), std::string::npos)
      << inflated.error().message;
}

// Data the walk cannot follow although DCMTK can: (FFFE,0001) is an ordinary element to
// DCMTK, and ends the walk. The parse itself stops once it has used half the thread's stack.
TEST(NestingScanParse, WhatTheWalkMissesTheParseStopsBeforeTheStackRunsOut) {
  test::TempDir dir("gw-nesting-test");
  Writer w;
  w.explicit_short(0x0008, 0x0016, "UI", std::string(kCtImage) + '\0');
  w.explicit_short(0x0008, 0x0018, "UI", "1.2.3.4");
  w.explicit_long(0xFFFE, 0x0001, "OB", 0);
  auto nested = nested_explicit(200000);
  w.out.insert(w.out.end(), nested.begin(), nested.end());
  MemoryReader reader(w.out);
  ASSERT_TRUE(check_sequence_nesting(reader, DataSetEncoding::kExplicitLittle).ok())
      << "the walk follows this now: find another case it misses";
  const auto path = dir.path() / "hidden.dcm";
  write_part10(path, "1.2.840.10008.1.2.1", w.out);
  auto info = read_instance_info(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message.find("nest too deep to parse"), std::string::npos)
      << info.error().message;
}

TEST(NestingScanParse, NestingWithinTheLimitIsParsed) {
  test::TempDir dir("gw-nesting-test");
  const auto path = dir.path() / "nested.dcm";
  write_part10(path, "1.2.840.10008.1.2.1", deep_data_set(kMaxSequenceNesting));
  auto info = read_instance_info(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->sop_instance_uid, "1.2.3.4");
  EXPECT_EQ(info->patient_id, "ID");  // after the nesting: the parse went through it
}

}  // namespace
}  // namespace gw::dicom
