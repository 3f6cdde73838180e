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
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "dicom/uids.h"
#include "support/deflated_writer.h"
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

/// The file at `path` declares `transfer_syntax_uid` and its index fields are fill()'s.
void expect_file_fields(const fs::path& path, const std::string& transfer_syntax_uid) {
  auto header = read_part10_header(path);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->meta.transfer_syntax_uid, transfer_syntax_uid);
  auto info = read_instance_info(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  expect_fields(*info);
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

    expect_file_fields(path, uid);
  }
}

/// `path` with its File Meta Transfer Syntax UID replaced by `uid` (and the group length fixed):
/// a data set encoded as before, declared in another transfer syntax.
void redeclare_transfer_syntax(const fs::path& path, const std::string& uid) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const std::string tag("\x02\x00\x10\x00UI", 6);
  const auto at = bytes.find(tag);
  ASSERT_NE(at, std::string::npos);
  const auto old_len = static_cast<std::size_t>(static_cast<unsigned char>(bytes[at + 6]) |
                                                (static_cast<unsigned char>(bytes[at + 7]) << 8));
  std::string value = uid;
  if (value.size() % 2 != 0) value.push_back('\0');
  bytes.replace(at + 8, old_len, value);
  bytes[at + 6] = static_cast<char>(value.size() & 0xFF);
  bytes[at + 7] = static_cast<char>(value.size() >> 8);
  // (0002,0000) UL group length: right after the preamble and "DICM", value at offset 140.
  std::uint32_t group = 0;
  std::memcpy(&group, bytes.data() + 140, 4);
  group = group + static_cast<std::uint32_t>(value.size()) - static_cast<std::uint32_t>(old_len);
  std::memcpy(bytes.data() + 140, &group, 4);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Transfer syntaxes we accept as-is that DCMTK 3.6.7 does not know (HTJ2K, encapsulated
// uncompressed): all encode their data sets in Explicit VR Little Endian, and the index fields
// are read from them like any other.
TEST_F(InstanceInfoTest, ReadsFieldsInSyntaxesDcmtkDoesNotKnow) {
  for (const char* uid : {"1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                          "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.1.98"}) {
    SCOPED_TRACE(uid);
    ASSERT_NE(find_transfer_syntax(uid), nullptr) << "not one we accept";
    DcmFileFormat file;
    fill(*file.getDataset());
    const fs::path path = dir_ / (std::string(uid) + ".dcm");
    ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
    redeclare_transfer_syntax(path, uid);
    expect_file_fields(path, uid);
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

using test::DeflatedWriter;
constexpr const char* kTestInstanceUid = "1.2.826.0.1.3680043.2.1.9";

constexpr std::uint32_t kPrivateCreator = 0x00090010;
constexpr std::uint32_t kPrivateBlob = 0x00091010;

/// The process's resident memory in KiB: now, or its peak since reset_peak_memory().
long memory_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
  }
  return -1;
}
bool reset_peak_memory() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.close();
  return clear.good();
}

// DCMTK's own file stream loads every value of a deflated data set into memory. Ours leaves
// long values in the file as it does for the other transfer syntaxes, and inflates again from
// the start of the data set when one is asked for.
TEST_F(InstanceInfoTest, DeflatedLongValuesStayOnDisk) {
  const fs::path path = dir_ / "deflated-large.dcm";
  const std::string comments(6000, 'c');  // (0020,4000) LT: longer than the 4 KiB load limit
  {
    DeflatedWriter writer(path, UID_CTImageStorage, kTestInstanceUid);
    writer.short_element(key(DCM_SOPClassUID), "UI", std::string(UID_CTImageStorage));
    writer.short_element(key(DCM_SOPInstanceUID), "UI", "1.2.826.0.1.3680043.2.1.9 ");
    writer.short_element(kPrivateCreator, "LO", "GW TEST ");
    std::mt19937 rng(7);  // incompressible: well within the inflate cap
    writer.long_element(kPrivateBlob, "OB", 48u << 20, [&](std::vector<char>& b) {
      for (char& c : b) c = static_cast<char>(rng() & 0xFF);
    });
    writer.short_element(key(DCM_PatientID), "LO", "TEST-0001 ");
    writer.short_element(key(DCM_ImageComments), "LT", comments);
    ASSERT_TRUE(writer.finish());
  }
  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  const std::uint32_t wanted[] = {kPrivateBlob, key(DCM_ImageComments)};
  auto info = read_instance_info(path, wanted);
  const long peak = memory_kib("VmHWM:");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->sop_instance_uid, "1.2.826.0.1.3680043.2.1.9");
  EXPECT_EQ(info->patient_id, "TEST-0001");  // parsed past the 48 MiB value
  EXPECT_EQ(info->extra_tags[kPrivateBlob], "");
  EXPECT_EQ(info->extra_tags[key(DCM_ImageComments)], comments);  // read again by inflating
  ASSERT_GT(before, 0);
  EXPECT_LT(peak - before, 16 * 1024) << "KiB held while parsing a 48 MiB deflated value";
}

/// A deflated data set's header (SOP class and instance) as DeflatedWriter writes it.
void write_header(DeflatedWriter& writer) {
  writer.short_element(key(DCM_SOPClassUID), "UI", UID_CTImageStorage);
  writer.short_element(key(DCM_SOPInstanceUID), "UI", kTestInstanceUid);
  writer.short_element(kPrivateCreator, "LO", "GW TEST ");
}

void fill_zeros(std::vector<char>& b) { std::fill(b.begin(), b.end(), '\0'); }

// A value declared 4 GiB long behind 256 MiB of compressed zeros (about 250 KiB): the parse
// skips what there is (it is never loaded) and refuses the data set for its missing bytes.
TEST_F(InstanceInfoTest, DeflatedValueDeclaredGigabytesLongIsRefused) {
  const fs::path path = dir_ / "deflate-declared.dcm";
  {
    DeflatedWriter writer(path, UID_CTImageStorage, kTestInstanceUid, 6);
    write_header(writer);
    writer.long_element(kPrivateBlob, "OB", 0xFFFFFFF0u, fill_zeros, 256u << 20);
    ASSERT_TRUE(writer.finish());
  }
  ASSERT_LT(fs::file_size(path), 1u << 20);
  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  auto info = read_instance_info(path);
  const long peak = memory_kib("VmHWM:");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message.find("not readable"), std::string::npos) << info.error().message;
  ASSERT_GT(before, 0);
  EXPECT_LT(peak - before, 16 * 1024) << "KiB held while refusing a 4 GiB declared value";
}

// The memory bomb of deflate: empty items compress about 1000:1 and cost DCMTK some 260 bytes of
// heap each, so 64 MiB of them (8 million items, about 70 KiB compressed) would cost it 2 GiB.
// The parse stops at its memory bound (64 MiB + 64 times the compressed size), and says so.
TEST_F(InstanceInfoTest, DeflatedEmptyItemsBombIsRefusedInBoundedMemory) {
  const fs::path path = dir_ / "deflate-items.dcm";
  {
    DeflatedWriter writer(path, UID_CTImageStorage, kTestInstanceUid, 9);
    write_header(writer);
    writer.empty_items(0x00091020, 8u << 20);
    ASSERT_TRUE(writer.finish());
  }
  ASSERT_LT(fs::file_size(path), 1u << 20);
  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  auto info = read_instance_info(path);
  const long peak = memory_kib("VmHWM:");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message.find("deflated data set refused"), std::string::npos)
      << info.error().message;
  EXPECT_NE(info.error().message.find("bytes of memory"), std::string::npos)
      << info.error().message;
  ASSERT_GT(before, 0);
  // The bound is 64 MiB of counted memory; DCMTK's real cost per item is a little more.
  EXPECT_LT(peak - before, 160 * 1024) << "KiB held while refusing 8 million empty items";
  RecordProperty("compressed_bytes", std::to_string(fs::file_size(path)));
  RecordProperty("peak_kib", std::to_string(peak - before));
}

// A long text value the index or a routing rule asks for is loaded when asked, and DCMTK
// allocates its declared length first: 200 MiB of one letter (about 200 KiB compressed) is
// refused before that allocation, as beyond the data set's memory bound.
// A text value asked for (by a routing rule) but longer than anything worth indexing or
// routing on is left unread, never allocated: the instance is stored, the value reads as "".
TEST_F(InstanceInfoTest, DeflatedLongTextValueIsNeverAllocated) {
  const fs::path path = dir_ / "deflate-long-text.dcm";
  {
    DeflatedWriter writer(path, UID_CTImageStorage, kTestInstanceUid, 6);
    write_header(writer);
    writer.long_element(kPrivateBlob, "UT", 200u << 20,
                        [](std::vector<char>& b) { std::fill(b.begin(), b.end(), 'A'); });
    ASSERT_TRUE(writer.finish());
  }
  ASSERT_LT(fs::file_size(path), 1u << 20);
  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  const std::uint32_t wanted[] = {kPrivateBlob};
  auto info = read_instance_info(path, wanted);
  const long peak = memory_kib("VmHWM:");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->extra_tags[kPrivateBlob], "");
  ASSERT_GT(before, 0);
  EXPECT_LT(peak - before, 16 * 1024) << "KiB held while skipping a 200 MiB text value";
}

// The same for an index field in an uncompressed data set: a 16 MiB Patient Name costs no
// 16 MiB copies (DCMTK's, the string array's, ours); the field is empty, the instance stored.
TEST_F(InstanceInfoTest, OversizedIndexFieldIsLeftUnread) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  fill(ds);
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientName, std::string(16u << 20, 'N').c_str()).good());
  const fs::path path = dir_ / "long-name.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  auto info = read_instance_info(path);
  const long peak = memory_kib("VmHWM:");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->patient_name, "");
  EXPECT_EQ(info->patient_id, "TEST-0001");
  ASSERT_GT(before, 0);
  EXPECT_LT(peak - before, 8 * 1024) << "KiB held while skipping a 16 MiB value";
}

// Each long value asked for inflates the data set again up to it: those passes count towards
// the one bound on what an instance may inflate (64 MiB + 1032 times its compressed size).
TEST_F(InstanceInfoTest, DeflatedRereadsCountTowardsTheInflateBound) {
  const fs::path path = dir_ / "deflate-rereads.dcm";
  const std::uint32_t texts[] = {0x00091011, 0x00091012, 0x00091013};
  {
    DeflatedWriter writer(path, UID_CTImageStorage, kTestInstanceUid, 6);
    write_header(writer);
    writer.long_element(kPrivateBlob, "OB", 48u << 20, fill_zeros);  // about 50 KiB compressed
    for (const std::uint32_t tag : texts) writer.short_element(tag, "LT", std::string(5000, 't'));
    ASSERT_TRUE(writer.finish());
  }
  // The bound is about 64 MiB + 50 MiB: two passes over the 48 MiB value are within it.
  auto one = read_instance_info(path, std::span(texts, 1));
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->extra_tags[texts[0]], std::string(5000, 't'));
  auto three = read_instance_info(path, texts);  // four passes are not
  ASSERT_FALSE(three.ok());
  EXPECT_EQ(three.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(three.error().message.find("inflates to more than"), std::string::npos)
      << three.error().message;
}

// A blank multi-frame CT (512x512, 16 bits, 600 frames of one value: 300 MiB) deflates about
// 1020:1 with zlib's default level, close to deflate's ceiling of 1032:1: it is parsed, in
// little memory.
TEST_F(InstanceInfoTest, BlankDeflatedMultiFrameIsAccepted) {
  const fs::path path = dir_ / "deflate-blank.dcm";
  constexpr std::uint32_t kFrame = 512 * 512 * 2;
  {
    DeflatedWriter writer(path, UID_CTImageStorage, kTestInstanceUid, 6);
    write_header(writer);
    writer.short_element(key(DCM_PatientID), "LO", "TEST-0001");
    writer.short_element(key(DCM_NumberOfFrames), "IS", "600");
    writer.long_element(key(DCM_PixelData), "OW", 600 * kFrame, [](std::vector<char>& b) {
      for (std::size_t i = 0; i < b.size(); i += 2) {
        b[i] = 0x18;  // 24: air at a rescale intercept of -1024
        b[i + 1] = 0;
      }
    });
    ASSERT_TRUE(writer.finish());
  }
  const auto compressed = fs::file_size(path);
  EXPECT_GT(600.0 * kFrame / static_cast<double>(compressed), 1000.0) << compressed;
  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  auto info = read_instance_info(path);
  const long peak = memory_kib("VmHWM:");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->patient_id, "TEST-0001");
  ASSERT_GT(before, 0);
  EXPECT_LT(peak - before, 16 * 1024) << "KiB held while parsing a 300 MiB blank image";
  RecordProperty("compressed_bytes", std::to_string(compressed));
  RecordProperty("peak_kib", std::to_string(peak - before));
}

// An enhanced multi-frame header is the largest a realistic data set holds in memory: 5,000
// frames of per-frame functional groups (some 100,000 elements and items), written by DCMTK at
// its default level, with blank pixels, is parsed.
TEST_F(InstanceInfoTest, DeflatedEnhancedMultiFrameHeaderIsAccepted) {
  constexpr int kFrames = 5000;
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPClassUID, UID_EnhancedCTImageStorage).good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPInstanceUID, kTestInstanceUid).good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientID, "TEST-0001").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_NumberOfFrames, std::to_string(kFrames).c_str()).good());
  for (int f = 0; f < kFrames; ++f) {
    DcmItem* frame = nullptr;
    ASSERT_TRUE(
        ds.findOrCreateSequenceItem(DCM_PerFrameFunctionalGroupsSequence, frame, -2).good());
    DcmItem* item = nullptr;
    ASSERT_TRUE(frame->findOrCreateSequenceItem(DCM_FrameContentSequence, item, -2).good());
    item->putAndInsertUint32(DCM_DimensionIndexValues, static_cast<Uint32>(f + 1));
    item->putAndInsertString(DCM_FrameAcquisitionDateTime, "20260101120000.000000");
    item->putAndInsertString(DCM_StackID, "1");
    item->putAndInsertUint32(DCM_InStackPositionNumber, static_cast<Uint32>(f + 1));
    ASSERT_TRUE(frame->findOrCreateSequenceItem(DCM_PlanePositionSequence, item, -2).good());
    const std::string z = "-125.0\\-125.0\\" + std::to_string(f * 0.625);
    item->putAndInsertString(DCM_ImagePositionPatient, z.c_str());
    ASSERT_TRUE(frame->findOrCreateSequenceItem(DCM_PlaneOrientationSequence, item, -2).good());
    item->putAndInsertString(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    ASSERT_TRUE(frame->findOrCreateSequenceItem(DCM_FrameVOILUTSequence, item, -2).good());
    item->putAndInsertString(DCM_WindowCenter, "40");
    item->putAndInsertString(DCM_WindowWidth, "400");
    ASSERT_TRUE(
        frame->findOrCreateSequenceItem(DCM_PixelValueTransformationSequence, item, -2).good());
    item->putAndInsertString(DCM_RescaleIntercept, "-1024");
    item->putAndInsertString(DCM_RescaleSlope, "1");
    item->putAndInsertString(DCM_RescaleType, "HU");
  }
  const std::vector<Uint16> pixels(static_cast<std::size_t>(kFrames) * 64 * 64, 24);
  ASSERT_TRUE(ds.putAndInsertUint16Array(DCM_PixelData, pixels.data(), pixels.size()).good());
  const fs::path path = dir_ / "deflate-enhanced.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_DeflatedLittleEndianExplicit).good());
  RecordProperty("compressed_bytes", std::to_string(fs::file_size(path)));

  ASSERT_TRUE(reset_peak_memory());
  const long before = memory_kib("VmRSS:");
  auto info = read_instance_info(path);
  const long peak = memory_kib("VmHWM:");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->patient_id, "TEST-0001");
  RecordProperty("peak_kib", std::to_string(peak - before));
}

/// A file whose text fields are the given bytes, declared in `charset` ("" = no (0008,0005)).
fs::path text_file(const fs::path& dir, const std::string& charset, const std::string& name,
                   const std::string& description) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  EXPECT_TRUE(ds.putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage).good());
  EXPECT_TRUE(ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1.3").good());
  if (!charset.empty()) {
    EXPECT_TRUE(ds.putAndInsertString(DCM_SpecificCharacterSet, charset.c_str()).good());
  }
  EXPECT_TRUE(ds.putAndInsertOFStringArray(DCM_PatientName, OFString(name.c_str())).good());
  EXPECT_TRUE(
      ds.putAndInsertOFStringArray(DCM_StudyDescription, OFString(description.c_str())).good());
  const fs::path path =
      dir /
      ("text-" + std::to_string(std::hash<std::string>{}(charset + name + description)) + ".dcm");
  EXPECT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  return path;
}

// PostgreSQL refuses text that is not UTF-8 and the API speaks JSON: the index gets UTF-8,
// converted from the character set the data set declares.
TEST_F(InstanceInfoTest, TextIsConvertedToUtf8FromTheDeclaredCharacterSet) {
  // ISO 8859-1: "Schädel", "Müller^Jörg".
  auto latin1 = read_instance_info(text_file(dir_, "ISO_IR 100", "M\xFCller^J\xF6rg",
                                             "Sch\xE4"
                                             "del"),
                                   {});
  ASSERT_TRUE(latin1.ok()) << latin1.error().message;
  EXPECT_EQ(latin1->patient_name, "M\xC3\xBCller^J\xC3\xB6rg");
  EXPECT_EQ(latin1->study_description,
            "Sch\xC3\xA4"
            "del");

  // ISO 8859-5 (Cyrillic): 0xB8 0xD2 0xD0 0xDD is "Иван".
  auto cyrillic = read_instance_info(text_file(dir_, "ISO_IR 144", "\xB8\xD2\xD0\xDD", "X"), {});
  ASSERT_TRUE(cyrillic.ok()) << cyrillic.error().message;
  EXPECT_EQ(cyrillic->patient_name, "\xD0\x98\xD0\xB2\xD0\xB0\xD0\xBD");
}

TEST_F(InstanceInfoTest, TextThatCannotBeConvertedStillBecomesUtf8) {
  // Nothing declared: UTF-8 stays as it is, other bytes are read as ISO 8859-1.
  auto utf8 = read_instance_info(text_file(dir_, "",
                                           "Sch\xC3\xA4"
                                           "del",
                                           "plain"),
                                 {});
  ASSERT_TRUE(utf8.ok()) << utf8.error().message;
  EXPECT_EQ(utf8->patient_name,
            "Sch\xC3\xA4"
            "del");
  auto undeclared = read_instance_info(text_file(dir_, "",
                                                 "Sch\xE4"
                                                 "del",
                                                 "plain"),
                                       {});
  ASSERT_TRUE(undeclared.ok()) << undeclared.error().message;
  EXPECT_EQ(undeclared->patient_name,
            "Sch\xC3\xA4"
            "del");

  // UTF-8 declared but a stray byte: replaced, the rest kept.
  auto stray = read_instance_info(text_file(dir_, "ISO_IR 192",
                                            "A\xFF"
                                            "B",
                                            "ok"),
                                  {});
  ASSERT_TRUE(stray.ok()) << stray.error().message;
  EXPECT_EQ(stray->patient_name,
            "A\xEF\xBF\xBD"
            "B");

  // A character set the converter does not know: invalid bytes replaced, never an error.
  auto unknown = read_instance_info(text_file(dir_, "ISO_IR 999", "C\xE4", "ok"), {});
  ASSERT_TRUE(unknown.ok()) << unknown.error().message;
  EXPECT_EQ(unknown->patient_name, "C\xEF\xBF\xBD");
}

}  // namespace
}  // namespace gw::dicom
