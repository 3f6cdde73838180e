// How the index seals patient data (ADR 010): both cipher formats, keyed hashes, plaintext rows.
#include "index/phi_codec.h"

#include <gtest/gtest.h>

namespace gw::index {
namespace {

std::shared_ptr<const crypto::Keyring> ring(const char* current, std::uint32_t version,
                                            const char* previous = nullptr) {
  auto k = std::make_shared<crypto::Keyring>();
  if (current != nullptr) {
    k->current = crypto::MasterKey::from_secret(current).value();
    k->current->version = version;
  }
  if (previous != nullptr) {
    k->previous = crypto::MasterKey::from_secret(previous).value();
    k->previous->version = version - 1;
  }
  return k;
}

constexpr const char* kA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr const char* kB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

PatientPhi patient() {
  PatientPhi p;
  p.patient_id = "PID-1";
  p.patient_name = "Müller^Jürgen";
  p.birth_date = "19700101";
  p.sex = "M";
  return p;
}

class PhiCodecFormats : public ::testing::TestWithParam<CipherFormat> {};

TEST_P(PhiCodecFormats, SealedValuesOpenToTheSameAndShowNothing) {
  PhiCodec codec(GetParam(), ring(kA, 1));
  ASSERT_TRUE(codec.encrypting());
  auto sealed = codec.seal(patient());
  ASSERT_TRUE(sealed.ok()) << sealed.error().message;
  EXPECT_EQ(sealed->key_version, 1u);
  EXPECT_TRUE(sealed->patient_id.clear.starts_with("h1:"));
  EXPECT_TRUE(sealed->patient_name.clear.starts_with("h1:"));
  EXPECT_EQ(sealed->birth_date.clear, "");
  ASSERT_TRUE(sealed->patient_name.sealed);
  const std::string raw(sealed->patient_name.sealed->begin(), sealed->patient_name.sealed->end());
  EXPECT_EQ(raw.find("Müller"), std::string::npos);
  auto opened = codec.open(*sealed);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, patient());
  // Two seals of one value differ (fresh nonce or salt); their hashes do not.
  auto again = codec.seal(patient());
  EXPECT_NE(*again->patient_name.sealed, *sealed->patient_name.sealed);
  EXPECT_EQ(again->patient_name.clear, sealed->patient_name.clear);
}

TEST_P(PhiCodecFormats, EmptyValuesStayEmptyAndUnsealed) {
  PhiCodec codec(GetParam(), ring(kA, 1));
  auto sealed = codec.seal(PatientPhi{});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->patient_id.clear, "");
  EXPECT_FALSE(sealed->patient_id.sealed);
  EXPECT_EQ(*codec.open(*sealed), PatientPhi{});
}

TEST_P(PhiCodecFormats, AnotherKeyCannotOpenAndTamperingIsDetected) {
  PhiCodec a(GetParam(), ring(kA, 1));
  PhiCodec b(GetParam(), ring(kB, 1));
  auto sealed = a.seal(patient());
  ASSERT_TRUE(sealed.ok());
  auto wrong = b.open(*sealed);
  EXPECT_FALSE(wrong.ok());
  auto tampered = *sealed;
  tampered.patient_name.sealed->back() ^= 0x01;
  EXPECT_FALSE(a.open(tampered).ok());
  // A version the keyring does not hold is a clear error.
  auto other_version = *sealed;
  other_version.key_version = 7;
  auto missing = a.open(other_version);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("key version 7"), std::string::npos);
}

TEST_P(PhiCodecFormats, PreviousKeyRowsStillOpenAndMatch) {
  PhiCodec old_codec(GetParam(), ring(kA, 1));
  auto old_row = old_codec.seal(patient());
  PhiCodec codec(GetParam(), ring(kB, 2, kA));
  auto opened = codec.open(*old_row);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, patient());
  const auto values = codec.match_values("PID-1");
  ASSERT_EQ(values.size(), 3u);  // current, previous, plaintext
  EXPECT_EQ(values[1], old_row->patient_id.clear);
  EXPECT_EQ(values[2], "PID-1");
  const auto keys = codec.patient_keys("PID-1", "Müller^Jürgen");
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[1].first, old_row->patient_id.clear);
  EXPECT_EQ(keys[1].second, old_row->patient_name.clear);
}

INSTANTIATE_TEST_SUITE_P(Formats, PhiCodecFormats,
                         ::testing::Values(CipherFormat::kAesGcm, CipherFormat::kOpenPgp),
                         [](const auto& param_info) {
                           return param_info.param == CipherFormat::kAesGcm ? "AesGcm" : "OpenPgp";
                         });

TEST(PhiCodec, WithoutAKeyEverythingIsPlaintextVersionZero) {
  PhiCodec codec(CipherFormat::kAesGcm, nullptr);
  EXPECT_FALSE(codec.encrypting());
  auto sealed = codec.seal(patient());
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->key_version, 0u);
  EXPECT_EQ(sealed->patient_name.clear, "Müller^Jürgen");
  EXPECT_FALSE(sealed->patient_name.sealed);
  EXPECT_EQ(codec.match_values("x"), std::vector<std::string>{"x"});
}

TEST(PhiCodec, AesValuesAreBoundToTheirColumn) {
  PhiCodec codec(CipherFormat::kAesGcm, ring(kA, 1));
  auto sealed = codec.seal(patient());
  ASSERT_TRUE(sealed.ok());
  auto swapped = *sealed;
  swapped.patient_id.sealed = sealed->patient_name.sealed;
  EXPECT_FALSE(codec.open(swapped).ok());
}

TEST(PhiCodec, MergeKeepsWhatANewRecordLeavesEmpty) {
  PatientPhi update;
  update.sex = "O";
  const auto merged = merge(patient(), update);
  EXPECT_EQ(merged.sex, "O");
  EXPECT_EQ(merged.birth_date, "19700101");
  EXPECT_EQ(merged.patient_name, "Müller^Jürgen");
}

}  // namespace
}  // namespace gw::index
