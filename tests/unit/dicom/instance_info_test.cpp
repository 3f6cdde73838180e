#include "dicom/instance_info.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "support/temp_dir.h"

namespace gw::dicom {
namespace {

namespace fs = std::filesystem;

class InstanceInfoTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"gw-instance-info-test"};
  const fs::path& dir_ = tmp_.path();
};

// Synthetic values only (no patient data anywhere in tests).
void fill(DcmDataset& ds, bool with_instance_uid = true) {
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage).good());
  if (with_instance_uid) {
    ASSERT_TRUE(ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1.3").good());
  }
  ASSERT_TRUE(ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1.1").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1.2").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientID, "TEST-0001").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientName, "Test^Synthetic^^Dr").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientBirthDate, "19700101").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientSex, "O").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_StudyDate, "20240102").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_StudyTime, "101112").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_StudyDescription, "Phantom study").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_AccessionNumber, "ACC42").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_StudyID, "S1").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_ReferringPhysicianName, "Ref^Doc").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_Modality, "CT").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_SeriesDescription, "Axial").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_SeriesNumber, "3").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_InstanceNumber, "17").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_BodyPartExamined, "HEAD").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_StationName, "STATION1").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_InstitutionName, "Test Hospital").good());
  ASSERT_TRUE(ds.putAndInsertUint16(DCM_Rows, 64).good());
  ASSERT_TRUE(ds.putAndInsertUint16(DCM_Columns, 64).good());
  ASSERT_TRUE(ds.putAndInsertUint16(DCM_BitsAllocated, 16).good());
  // Larger than the 4 KiB load limit: stays on disk.
  const std::vector<Uint16> pixels(64 * 64, 0x1234);
  ASSERT_TRUE(ds.putAndInsertUint16Array(DCM_PixelData, pixels.data(), pixels.size()).good());
}

void expect_fields(const InstanceInfo& info) {
  EXPECT_EQ(info.sop_class_uid, UID_CTImageStorage);
  EXPECT_EQ(info.sop_instance_uid, "1.2.826.0.1.3680043.2.1.3");
  EXPECT_EQ(info.study_instance_uid, "1.2.826.0.1.3680043.2.1.1");
  EXPECT_EQ(info.series_instance_uid, "1.2.826.0.1.3680043.2.1.2");
  EXPECT_EQ(info.patient_id, "TEST-0001");
  EXPECT_EQ(info.patient_name, "Test^Synthetic^^Dr");
  EXPECT_EQ(info.patient_birth_date, "19700101");
  EXPECT_EQ(info.patient_sex, "O");
  EXPECT_EQ(info.study_date, "20240102");
  EXPECT_EQ(info.study_time, "101112");
  EXPECT_EQ(info.study_description, "Phantom study");
  EXPECT_EQ(info.accession_number, "ACC42");
  EXPECT_EQ(info.study_id, "S1");
  EXPECT_EQ(info.referring_physician, "Ref^Doc");
  EXPECT_EQ(info.modality, "CT");
  EXPECT_EQ(info.series_description, "Axial");
  EXPECT_EQ(info.series_number, "3");
  EXPECT_EQ(info.instance_number, "17");
  EXPECT_EQ(info.body_part_examined, "HEAD");
  EXPECT_EQ(info.station_name, "STATION1");
  EXPECT_EQ(info.institution_name, "Test Hospital");
}

TEST_F(InstanceInfoTest, ReadsFieldsInEveryTransferSyntax) {
  const std::pair<E_TransferSyntax, const char*> cases[] = {
      {EXS_LittleEndianExplicit, UID_LittleEndianExplicitTransferSyntax},
      {EXS_LittleEndianImplicit, UID_LittleEndianImplicitTransferSyntax},
      {EXS_BigEndianExplicit, UID_BigEndianExplicitTransferSyntax},
      {EXS_DeflatedLittleEndianExplicit, UID_DeflatedExplicitVRLittleEndianTransferSyntax},
  };
  for (const auto& [xfer, uid] : cases) {
    SCOPED_TRACE(uid);
    DcmFileFormat file;
    fill(*file.getDataset());
    const fs::path path = dir_ / (std::string(uid) + ".dcm");
    ASSERT_TRUE(file.saveFile(path.c_str(), xfer).good());

    // The file really is in that transfer syntax.
    auto header = read_part10_header(path);
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header->meta.transfer_syntax_uid, uid);

    auto info = read_instance_info(path);
    ASSERT_TRUE(info.ok()) << info.error().message;
    expect_fields(*info);
  }
}

TEST_F(InstanceInfoTest, MissingTagsAreEmpty) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage).good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.3").good());
  const fs::path path = dir_ / "minimal.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  auto info = read_instance_info(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->sop_instance_uid, "1.2.3");
  EXPECT_TRUE(info->patient_name.empty());
  EXPECT_TRUE(info->study_instance_uid.empty());
}

TEST_F(InstanceInfoTest, MissingSopInstanceUidIsError) {
  DcmFileFormat file;
  fill(*file.getDataset(), /*with_instance_uid=*/false);
  const fs::path path = dir_ / "no_instance_uid.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  auto info = read_instance_info(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);
}

std::uint32_t key(const DcmTagKey& tag) {
  return static_cast<std::uint32_t>(tag.getGroup()) << 16 | tag.getElement();
}

TEST_F(InstanceInfoTest, ExtraTagsPresentAtTheTopLevel) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  fill(ds);
  ASSERT_TRUE(ds.putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_OperatorsName, "").good());  // present, empty
  ASSERT_TRUE(ds.putAndInsertString(DCM_Manufacturer, "ACME  ").good());
  // (0008,1030) inside a sequence item only: not a top-level element.
  auto* item = new DcmItem();
  ASSERT_TRUE(item->putAndInsertString(DCM_ProtocolName, "NESTED").good());
  ASSERT_TRUE(ds.insertSequenceItem(DCM_ReferencedStudySequence, item).good());
  const fs::path path = dir_ / "extra.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());

  const std::uint32_t wanted[] = {
      key(DCM_StationName),
      key(DCM_ImageType),
      key(DCM_OperatorsName),
      key(DCM_Manufacturer),
      key(DCM_ProtocolName),
      key(DCM_Rows),
      key(DCM_PixelData),
      key(DCM_ReferencedStudySequence),
      key(DCM_PerformedStationName),
  };
  auto info = read_instance_info(path, wanted);
  ASSERT_TRUE(info.ok()) << info.error().message;
  expect_fields(*info);
  const std::map<std::uint32_t, std::string> expected = {
      {key(DCM_StationName), "STATION1"},
      {key(DCM_ImageType), "ORIGINAL\\PRIMARY\\AXIAL"},
      {key(DCM_OperatorsName), ""},
      {key(DCM_Manufacturer), "ACME"},
      {key(DCM_Rows), "64"},
      {key(DCM_PixelData), ""},                // binary: present, bytes not loaded
      {key(DCM_ReferencedStudySequence), ""},  // a sequence: present
  };
  EXPECT_EQ(info->extra_tags, expected);
}

TEST_F(InstanceInfoTest, NoExtraTagsAskedNoneReturned) {
  DcmFileFormat file;
  fill(*file.getDataset());
  const fs::path path = dir_ / "plain.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianImplicit).good());
  auto info = read_instance_info(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_TRUE(info->extra_tags.empty());
}

TEST_F(InstanceInfoTest, GarbageFileIsError) {
  const fs::path path = dir_ / "garbage.dcm";
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937 rng(42);
    for (int i = 0; i < 5000; ++i) out.put(static_cast<char>(rng() & 0xFF));
  }
  auto info = read_instance_info(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);

  auto missing = read_instance_info(dir_ / "missing.dcm");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace gw::dicom
