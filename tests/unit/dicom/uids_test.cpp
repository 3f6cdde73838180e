#include "dicom/uids.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace gw::dicom {
namespace {

TEST(UidsTest, StorageSopClasses) {
  EXPECT_TRUE(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.2"));      // CT Image Storage
  EXPECT_TRUE(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.4"));      // MR Image Storage
  EXPECT_TRUE(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.88.22"));  // Enhanced SR
  EXPECT_FALSE(is_storage_sop_class(kVerificationSopClass));
  EXPECT_FALSE(is_storage_sop_class(kExplicitVrLittleEndian));
  EXPECT_FALSE(is_storage_sop_class("garbage"));
  EXPECT_FALSE(is_storage_sop_class(""));
  EXPECT_FALSE(is_storage_sop_class(std::string("1.2.840.10008.5.1.4.1.1.2\0", 26)));
}

TEST(UidsTest, SopClassName) {
  EXPECT_EQ(sop_class_name("1.2.840.10008.5.1.4.1.1.2"), "CTImageStorage");
  EXPECT_EQ(sop_class_name("1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(sop_class_name(""), "");
}

TEST(UidsTest, TransferSyntaxLookup) {
  const auto* implicit = find_transfer_syntax(kImplicitVrLittleEndian);
  ASSERT_NE(implicit, nullptr);
  EXPECT_FALSE(implicit->explicit_vr);
  EXPECT_FALSE(implicit->encapsulated);

  const auto* big = find_transfer_syntax(kExplicitVrBigEndian);
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(big->big_endian);
  EXPECT_TRUE(big->explicit_vr);

  const auto* deflated = find_transfer_syntax(kDeflatedExplicitVrLittleEndian);
  ASSERT_NE(deflated, nullptr);
  EXPECT_TRUE(deflated->deflated);
  EXPECT_FALSE(deflated->encapsulated);

  for (const char* uid :
       {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
        "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.107",
        "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
        "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.98"}) {
    const auto* ts = find_transfer_syntax(uid);
    ASSERT_NE(ts, nullptr) << uid;
    EXPECT_TRUE(ts->encapsulated) << uid;
    EXPECT_TRUE(ts->explicit_vr) << uid;
    EXPECT_FALSE(ts->big_endian) << uid;
  }

  EXPECT_EQ(find_transfer_syntax("1.2.840.10008.1.2.4.52"), nullptr);  // retired JPEG
  EXPECT_EQ(find_transfer_syntax("1.2.840.10008.1.2.1.99 "), nullptr);
  EXPECT_EQ(find_transfer_syntax(""), nullptr);
  EXPECT_EQ(find_transfer_syntax(kVerificationSopClass), nullptr);
}

TEST(UidsTest, SupportedTransferSyntaxesAreValidAndUnique) {
  std::set<std::string_view> seen;
  for (const auto& ts : supported_transfer_syntaxes()) {
    EXPECT_TRUE(is_valid_uid(ts.uid)) << ts.uid;
    EXPECT_FALSE(ts.name.empty()) << ts.uid;
    EXPECT_TRUE(seen.insert(ts.uid).second) << "duplicate " << ts.uid;
    EXPECT_EQ(find_transfer_syntax(ts.uid), &ts);
  }
  EXPECT_GE(seen.size(), 20u);
}

TEST(UidsTest, IsValidUid) {
  EXPECT_TRUE(is_valid_uid("1.2.840.10008.1.1"));
  EXPECT_TRUE(is_valid_uid("0"));
  EXPECT_TRUE(is_valid_uid("1.0.3"));
  EXPECT_TRUE(is_valid_uid(kImplementationClassUid));
  EXPECT_TRUE(is_valid_uid(std::string(64, '1')));
  // Leading zeros (forbidden by PS3.5 9.1) are sent by legacy modalities and accepted.
  EXPECT_TRUE(is_valid_uid("1.2.840.0604.1"));
  EXPECT_TRUE(is_valid_uid("1.02"));
  EXPECT_TRUE(is_valid_uid("01.2"));
  EXPECT_TRUE(is_valid_uid("1.2.840.10008.5.1.4.1.1.0002"));
  EXPECT_FALSE(is_valid_uid(std::string(65, '1')));
  EXPECT_FALSE(is_valid_uid(""));
  EXPECT_FALSE(is_valid_uid("."));
  EXPECT_FALSE(is_valid_uid("1..2"));
  EXPECT_FALSE(is_valid_uid(".1.2"));
  EXPECT_FALSE(is_valid_uid("1.2."));
  EXPECT_FALSE(is_valid_uid("1.2a"));
  EXPECT_FALSE(is_valid_uid("1.2 "));
  EXPECT_FALSE(is_valid_uid(std::string("1.2\0", 4)));
  EXPECT_FALSE(is_valid_uid("-1.2"));
}

}  // namespace
}  // namespace gw::dicom
