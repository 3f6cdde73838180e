// How the index seals patient data (ADR 010): both cipher formats, keyed hashes, plaintext rows.
#include "index/phi_codec.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "index/index.h"

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

TEST_P(PhiCodecFormats, ANewerKeyNotYetLoadedHereIsRetryableAnOlderMissingKeyIsNot) {
  // Node-by-node rollout: another node already seals with key version 2 (key B); this one
  // still runs with key A as version 1 only. The sender must try again (0xA7xx), not give up.
  PhiCodec ahead(GetParam(), ring(kB, 2, kA));
  PhiCodec behind(GetParam(), ring(kA, 1));
  auto newer = ahead.seal(patient());
  ASSERT_TRUE(newer.ok());
  auto early = behind.open(*newer);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, core::ErrorCode::kDatabase);
  EXPECT_EQ(core::dimse_status(early.error().code) & 0xFF00, 0xA700);
  EXPECT_NE(early.error().message.find("not loaded on this node yet"), std::string::npos);
  EXPECT_NE(early.error().message.find("key version 2"), std::string::npos);
  auto study = ahead.seal(StudyPhi{"ACC-1", "Doe^Ref"});
  ASSERT_TRUE(study.ok());
  auto early_study = behind.upsert(std::optional<StoredStudy>(*study), StudyPhi{"ACC-1", ""});
  ASSERT_FALSE(early_study.ok());
  EXPECT_EQ(early_study.error().code, core::ErrorCode::kDatabase);
  // A node without any key yet, while another one turned encryption on: the same window.
  PhiCodec plain(GetParam(), nullptr);
  auto no_key = plain.open(*newer);
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().code, core::ErrorCode::kDatabase);
  // Once reloaded with the new keys, it opens.
  PhiCodec reloaded(GetParam(), ring(kB, 2, kA));
  ASSERT_TRUE(reloaded.open(*newer).ok());
  // An older version nobody gives any more is configuration (a key removed too early): final.
  PhiCodec old_codec(GetParam(), ring(kA, 1));
  auto old_row = old_codec.seal(patient());
  ASSERT_TRUE(old_row.ok());
  PhiCodec dropped(GetParam(), ring(kB, 2));
  auto gone = dropped.open(*old_row);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(gone.error().message.find("not configured"), std::string::npos);
}

// The upsert rule both backends share: what a new record does to a stored row.

TEST_P(PhiCodecFormats, UpsertWithoutAStoredRowSealsTheUpdate) {
  PhiCodec codec(GetParam(), ring(kA, 1));
  auto write = codec.upsert(std::optional<StoredPatient>(), patient());
  ASSERT_TRUE(write.ok()) << write.error().message;
  EXPECT_TRUE(write->changed);
  EXPECT_EQ(write->row.key_version, 1u);
  EXPECT_EQ(*codec.open(write->row), patient());
}

TEST_P(PhiCodecFormats, UpsertNewEmptyValuesKeepTheStoredOnes) {
  PhiCodec codec(GetParam(), ring(kA, 1));
  auto stored = codec.seal(patient());
  ASSERT_TRUE(stored.ok());
  // Nothing new at all, or only what is already stored: the row stays as it is, ciphertext too.
  for (const PatientPhi& update : {PatientPhi{}, patient()}) {
    auto write = codec.upsert(*stored, update);
    ASSERT_TRUE(write.ok()) << write.error().message;
    EXPECT_FALSE(write->changed);
    EXPECT_EQ(write->row.key_version, 1u);
    EXPECT_EQ(write->row.patient_name.sealed, stored->patient_name.sealed);
    EXPECT_EQ(write->row.birth_date.sealed, stored->birth_date.sealed);
  }
}

TEST_P(PhiCodecFormats, UpsertNewValuesReplaceAndAreSealedAnew) {
  PhiCodec codec(GetParam(), ring(kA, 1));
  auto stored = codec.seal(patient());
  ASSERT_TRUE(stored.ok());
  PatientPhi update;
  update.patient_name = "Meier^Anna";
  update.sex = "F";
  auto write = codec.upsert(*stored, update);
  ASSERT_TRUE(write.ok()) << write.error().message;
  EXPECT_TRUE(write->changed);
  EXPECT_EQ(write->row.key_version, 1u);
  PatientPhi want = patient();
  want.patient_name = "Meier^Anna";
  want.sex = "F";
  EXPECT_EQ(*codec.open(write->row), want);
  // The searchable columns carry the keyed hash of the new value, as a fresh seal does.
  auto fresh = codec.seal(want);
  EXPECT_EQ(write->row.patient_name.clear, fresh->patient_name.clear);
  EXPECT_EQ(write->row.patient_id.clear, stored->patient_id.clear);
  EXPECT_EQ(write->row.birth_date.clear, "");
}

TEST_P(PhiCodecFormats, UpsertReSealsRowsFromBeforeEncryptionOrAnOlderKey) {
  PhiCodec plain(GetParam(), nullptr);
  auto plaintext_row = plain.seal(patient());
  PhiCodec old_codec(GetParam(), ring(kA, 1));
  auto old_row = old_codec.seal(patient());
  ASSERT_TRUE(plaintext_row.ok() && old_row.ok());
  PhiCodec codec(GetParam(), ring(kB, 2, kA));
  for (const StoredPatient& stored : {*plaintext_row, *old_row}) {
    // Same values, but not under the current key: written again, sealed with it.
    auto write = codec.upsert(stored, PatientPhi{});
    ASSERT_TRUE(write.ok()) << write.error().message;
    EXPECT_TRUE(write->changed);
    EXPECT_EQ(write->row.key_version, 2u);
    ASSERT_TRUE(write->row.patient_name.sealed);
    EXPECT_TRUE(write->row.patient_name.clear.starts_with("h1:"));
    EXPECT_EQ(*codec.open(write->row), patient());
    // A new value on such a row replaces the stored one; the rest is kept.
    PatientPhi update;
    update.sex = "O";
    auto replaced = codec.upsert(stored, update);
    ASSERT_TRUE(replaced.ok()) << replaced.error().message;
    EXPECT_EQ(replaced->row.key_version, 2u);
    PatientPhi want = patient();
    want.sex = "O";
    EXPECT_EQ(*codec.open(replaced->row), want);
  }
}

TEST_P(PhiCodecFormats, UpsertStudiesFollowTheSameRule) {
  PhiCodec codec(GetParam(), ring(kA, 1));
  StudyPhi study;
  study.accession_number = "ACC-1";
  study.referring_physician = "Doe^John";
  auto stored = codec.seal(study);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->accession_number.clear.starts_with("h1:"));
  EXPECT_EQ(stored->referring_physician.clear, "");  // sealed, not searchable
  auto same = codec.upsert(*stored, StudyPhi{});
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->row.accession_number.sealed, stored->accession_number.sealed);
  StudyPhi update;
  update.referring_physician = "Roe^Jane";
  auto changed = codec.upsert(*stored, update);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed->changed);
  StudyPhi want = study;
  want.referring_physician = "Roe^Jane";
  EXPECT_EQ(*codec.open(changed->row), want);
}

TEST_P(PhiCodecFormats, ResealMovesARowToTheCurrentKey) {
  PhiCodec old_codec(GetParam(), ring(kA, 1));
  auto old_row = old_codec.seal(patient());
  ASSERT_TRUE(old_row.ok());
  PhiCodec codec(GetParam(), ring(kB, 2, kA));
  auto row = codec.reseal(*old_row);
  ASSERT_TRUE(row.ok()) << row.error().message;
  EXPECT_EQ(row->key_version, 2u);
  EXPECT_EQ(row->patient_id.clear, codec.match_values("PID-1").front());
  EXPECT_EQ(*codec.open(*row), patient());
  // Once the previous key is gone, only the re-sealed row still opens.
  PhiCodec current_only(GetParam(), ring(kB, 2));
  EXPECT_TRUE(current_only.open(*row).ok());
  EXPECT_FALSE(current_only.open(*old_row).ok());
}

TEST_P(PhiCodecFormats, SealedFiltersMatchExactValuesAndRefusePrefixes) {
  PhiCodec codec(GetParam(), ring(kB, 2, kA));
  for (const char* none : {"", "*"}) {
    auto values = codec.sealed_filter_values("p.patient_id", none);
    ASSERT_TRUE(values.ok());
    EXPECT_FALSE(values->has_value()) << "'" << none << "' filters nothing";
  }
  auto exact = codec.sealed_filter_values("p.patient_id", "PID-1");
  ASSERT_TRUE(exact.ok());
  ASSERT_TRUE(exact->has_value());
  EXPECT_EQ(**exact, codec.match_values("PID-1"));
  auto prefix = codec.sealed_filter_values("p.patient_name", "Mül*");
  ASSERT_FALSE(prefix.ok());
  EXPECT_EQ(prefix.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(prefix.error().message.starts_with("patient_name: prefix search is not available"))
      << prefix.error().message;
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

TEST(PhiCodec, WithoutAKeyUpsertKeepsPlaintextRows) {
  PhiCodec codec(CipherFormat::kAesGcm, nullptr);
  auto stored = codec.seal(patient());
  ASSERT_TRUE(stored.ok());
  auto same = codec.upsert(*stored, PatientPhi{});
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed);
  PatientPhi update;
  update.birth_date = "19800202";
  auto changed = codec.upsert(*stored, update);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed->changed);
  EXPECT_EQ(changed->row.key_version, 0u);
  EXPECT_EQ(changed->row.birth_date.clear, "19800202");
  EXPECT_EQ(changed->row.patient_name.clear, "Müller^Jürgen");
  EXPECT_FALSE(changed->row.birth_date.sealed);
}

TEST(PhiCodec, TheRecordFieldsThatArePhi) {
  InstanceRecord r;
  r.patient_id = "PID-1";
  r.patient_name = "Müller^Jürgen";
  r.patient_birth_date = "19700101";
  r.patient_sex = "M";
  r.accession_number = "ACC-1";
  r.referring_physician = "Doe^John";
  r.study_description = "not PHI here";
  EXPECT_EQ(patient_phi(r), patient());
  const StudyPhi study = study_phi(r);
  EXPECT_EQ(study.accession_number, "ACC-1");
  EXPECT_EQ(study.referring_physician, "Doe^John");
}

}  // namespace
}  // namespace gw::index
