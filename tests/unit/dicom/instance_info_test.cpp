#include "dicom/instance_info.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "dicom/uids.h"
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

/// Writes a Deflated Explicit VR Little Endian file by hand, streaming: its large values are
/// never in memory, so the test measures only what the parser holds.
class DeflatedWriter {
 public:
  explicit DeflatedWriter(const fs::path& path) : out_(path, std::ios::binary) {
    FileMeta meta;
    meta.media_storage_sop_class_uid = UID_CTImageStorage;
    meta.media_storage_sop_instance_uid = "1.2.826.0.1.3680043.2.1.9";
    meta.transfer_syntax_uid = std::string(kDeflatedExplicitVrLittleEndian);
    meta.implementation_class_uid = "1.2.826.0.1.3680043.2.1.99";
    const auto head = encode_file_meta(meta);
    out_.write(reinterpret_cast<const char*>(head.data()),
               static_cast<std::streamsize>(head.size()));
    z_.zalloc = Z_NULL;
    z_.zfree = Z_NULL;
    z_.opaque = Z_NULL;
    ok_ = deflateInit2(&z_, 1, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }

  /// A value with a 2-byte length (UI, LO, LT...).
  void short_element(std::uint32_t tag, const char* vr, const std::string& value) {
    header(tag, vr);
    le(static_cast<std::uint16_t>(value.size()), 2);
    put(value.data(), value.size());
  }

  /// An OB value declared `length` bytes long, of which the first `written` (all by default)
  /// are written, `chunk(buffer)` filling each piece.
  void long_element(std::uint32_t tag, std::uint32_t length,
                    const std::function<void(std::vector<char>&)>& chunk,
                    std::uint32_t written = UINT32_MAX) {
    header(tag, "OB");
    le(0, 2);
    le(length, 4);
    std::vector<char> buffer;
    written = std::min(written, length);
    for (std::uint32_t done = 0; done < written;) {
      buffer.resize(std::min<std::uint32_t>(written - done, 1 << 20));
      chunk(buffer);
      put(buffer.data(), buffer.size());
      done += static_cast<std::uint32_t>(buffer.size());
    }
  }

  bool finish() {
    deflate_some(nullptr, 0, Z_FINISH);
    deflateEnd(&z_);
    out_.close();
    return ok_ && out_.good();
  }

 private:
  void header(std::uint32_t tag, const char* vr) {
    le(tag >> 16, 2);
    le(tag & 0xFFFF, 2);
    put(vr, 2);
  }
  void le(std::uint32_t value, int bytes) {
    char b[4];
    for (int i = 0; i < bytes; ++i) b[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
    put(b, static_cast<std::size_t>(bytes));
  }
  void put(const char* data, std::size_t size) { deflate_some(data, size, Z_NO_FLUSH); }
  void deflate_some(const char* data, std::size_t size, int flush) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z_.avail_in = static_cast<uInt>(size);
    for (int rounds = 0; rounds < 1'000'000; ++rounds) {
      char out[64 * 1024];
      z_.next_out = reinterpret_cast<Bytef*>(out);
      z_.avail_out = sizeof(out);
      const int rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) ok_ = false;
      out_.write(out, static_cast<std::streamsize>(sizeof(out) - z_.avail_out));
      if (flush == Z_FINISH ? rc == Z_STREAM_END : z_.avail_out != 0) return;
    }
    ok_ = false;
  }

  std::ofstream out_;
  z_stream z_{};
  bool ok_ = false;
};

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
    DeflatedWriter writer(path);
    writer.short_element(key(DCM_SOPClassUID), "UI", std::string(UID_CTImageStorage));
    writer.short_element(key(DCM_SOPInstanceUID), "UI", "1.2.826.0.1.3680043.2.1.9 ");
    writer.short_element(kPrivateCreator, "LO", "GW TEST ");
    std::mt19937 rng(7);  // incompressible: well within the inflate cap
    writer.long_element(kPrivateBlob, 48u << 20, [&](std::vector<char>& b) {
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

// A few KiB of compressed zeros can declare gigabytes: the parse stops at 16 MiB plus 32 times
// the compressed size, and says so.
TEST_F(InstanceInfoTest, DeflateBombIsRefused) {
  const fs::path path = dir_ / "deflate-bomb.dcm";
  {
    DeflatedWriter writer(path);
    writer.short_element(key(DCM_SOPClassUID), "UI", std::string(UID_CTImageStorage));
    writer.short_element(key(DCM_SOPInstanceUID), "UI", "1.2.826.0.1.3680043.2.1.9 ");
    writer.short_element(kPrivateCreator, "LO", "GW TEST ");
    // Declared 4 GiB; 256 MiB of zeros (about 1 MiB compressed) is already over the cap.
    writer.long_element(
        kPrivateBlob, 0xFFFFFFF0u,
        [](std::vector<char>& b) { std::fill(b.begin(), b.end(), '\0'); }, 256u << 20);
    ASSERT_TRUE(writer.finish());
  }
  ASSERT_LT(fs::file_size(path), 4u << 20);
  auto info = read_instance_info(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message.find("inflates to more than"), std::string::npos)
      << info.error().message;
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
