#include "dicom/part10.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dicom/uids.h"
#include "support/temp_dir.h"

namespace gw::dicom {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

class Part10Test : public ::testing::Test {
 protected:
  test::TempDir tmp_{"gw-part10-test"};
  const fs::path& dir_ = tmp_.path();
};

FileMeta sample_meta() {
  FileMeta meta;
  meta.media_storage_sop_class_uid = UID_CTImageStorage;            // 25 chars: odd
  meta.media_storage_sop_instance_uid = "1.2.826.0.1.3680043.2.1";  // 23 chars: odd
  meta.transfer_syntax_uid = std::string(kExplicitVrLittleEndian);  // 19 chars: odd
  meta.implementation_class_uid = std::string(kImplementationClassUid);
  meta.implementation_version_name = std::string(kImplementationVersionName);
  meta.source_application_entity_title = "MODALITY";
  return meta;
}

void fill_data_set(DcmDataset& ds) {
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage).good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.2").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_Modality, "CT").good());
  ASSERT_TRUE(ds.putAndInsertUint16(DCM_Rows, 2).good());
  ASSERT_TRUE(ds.putAndInsertUint16(DCM_Columns, 2).good());
  const Uint16 pixels[4] = {1, 2, 3, 4};
  ASSERT_TRUE(ds.putAndInsertUint16Array(DCM_PixelData, pixels, 4).good());
}

TEST_F(Part10Test, EncodeParseRoundTrip) {
  const FileMeta meta = sample_meta();
  std::vector<std::uint8_t> bytes = encode_file_meta(meta);
  ASSERT_GT(bytes.size(), 132u);
  EXPECT_EQ(std::string(bytes.begin() + 128, bytes.begin() + 132), "DICM");
  EXPECT_EQ(bytes.size() % 2, 0u);
  const std::size_t meta_end = bytes.size();
  // (0002,0000) value = bytes after the group length element.
  const std::uint32_t group_length =
      bytes[140] | (bytes[141] << 8) | (bytes[142] << 16) | (std::uint32_t{bytes[143]} << 24);
  EXPECT_EQ(group_length, meta_end - 144);

  // A data set follows: (0008,0016) in Explicit VR LE.
  const std::vector<std::uint8_t> data = {0x08, 0x00, 0x16, 0x00, 'U', 'I', 0x02, 0x00, '1', 0};
  bytes.insert(bytes.end(), data.begin(), data.end());

  auto header = parse_part10_header(bytes);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->data_set_offset, meta_end);
  EXPECT_EQ(header->meta.media_storage_sop_class_uid, meta.media_storage_sop_class_uid);
  EXPECT_EQ(header->meta.media_storage_sop_instance_uid, meta.media_storage_sop_instance_uid);
  EXPECT_EQ(header->meta.transfer_syntax_uid, meta.transfer_syntax_uid);
  EXPECT_EQ(header->meta.implementation_class_uid, meta.implementation_class_uid);
  EXPECT_EQ(header->meta.implementation_version_name, meta.implementation_version_name);
  EXPECT_EQ(header->meta.source_application_entity_title, meta.source_application_entity_title);
}

TEST_F(Part10Test, OptionalElementsOmitted) {
  FileMeta meta = sample_meta();
  meta.implementation_version_name.clear();
  meta.source_application_entity_title.clear();
  std::vector<std::uint8_t> bytes = encode_file_meta(meta);
  const std::size_t meta_end = bytes.size();
  const fs::path path = dir_ / "meta_only.dcm";
  write_all(path, bytes);

  // The whole file is just the meta group: an empty data set at the end of the file.
  auto header = read_part10_header(path);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->data_set_offset, meta_end);
  EXPECT_TRUE(header->meta.implementation_version_name.empty());
  EXPECT_TRUE(header->meta.source_application_entity_title.empty());

  // From a buffer alone we cannot tell "file ends here" from "read more".
  auto partial = parse_part10_header(bytes);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(Part10Test, WrongGroupLengthIsNotTrusted) {
  std::vector<std::uint8_t> bytes = encode_file_meta(sample_meta());
  const std::size_t meta_end = bytes.size();
  bytes[140] = static_cast<std::uint8_t>(bytes[140] - 10);  // declared length too short
  const std::vector<std::uint8_t> data = {0x08, 0x00, 0x16, 0x00, 'U', 'I', 0x02, 0x00, '1', 0};
  bytes.insert(bytes.end(), data.begin(), data.end());
  auto header = parse_part10_header(bytes);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->data_set_offset, meta_end);
  EXPECT_EQ(header->meta.source_application_entity_title, "MODALITY");
}

TEST_F(Part10Test, LargeFileReadsOnlyTheHead) {
  std::vector<std::uint8_t> bytes = encode_file_meta(sample_meta());
  const std::size_t meta_end = bytes.size();
  const std::vector<std::uint8_t> data = {0x08, 0x00, 0x16, 0x00, 'U', 'I', 0x02, 0x00, '1', 0};
  bytes.insert(bytes.end(), data.begin(), data.end());
  bytes.resize(bytes.size() + 200 * 1024, 0xAB);
  const fs::path path = dir_ / "large.dcm";
  write_all(path, bytes);
  auto header = read_part10_header(path);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->data_set_offset, meta_end);
}

TEST_F(Part10Test, ImplicitVrMetaGroupIsTolerated) {
  // Old writers: preamble, DICM, then group 0002 in Implicit VR Little Endian.
  std::vector<std::uint8_t> bytes(128, 0);
  for (char c : std::string("DICM")) bytes.push_back(static_cast<std::uint8_t>(c));
  const std::string ts = "1.2.840.10008.1.2.1";  // 19 chars + NUL
  const std::vector<std::uint8_t> element = {0x02, 0x00, 0x10, 0x00, 20, 0x00, 0x00, 0x00};
  bytes.insert(bytes.end(), element.begin(), element.end());
  bytes.insert(bytes.end(), ts.begin(), ts.end());
  bytes.push_back(0);
  const std::size_t meta_end = bytes.size();
  const std::vector<std::uint8_t> data = {0x08, 0x00, 0x16, 0x00, 'U', 'I', 0x02, 0x00, '1', 0};
  bytes.insert(bytes.end(), data.begin(), data.end());
  auto header = parse_part10_header(bytes);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->meta.transfer_syntax_uid, ts);
  EXPECT_EQ(header->data_set_offset, meta_end);
}

TEST_F(Part10Test, DcmtkWrittenFiles) {
  const std::pair<E_TransferSyntax, std::string> cases[] = {
      {EXS_LittleEndianExplicit, UID_LittleEndianExplicitTransferSyntax},
      {EXS_LittleEndianImplicit, UID_LittleEndianImplicitTransferSyntax},
      {EXS_BigEndianExplicit, UID_BigEndianExplicitTransferSyntax},
  };
  for (const auto& [xfer, uid] : cases) {
    SCOPED_TRACE(uid);
    DcmFileFormat file;
    fill_data_set(*file.getDataset());
    const fs::path path = dir_ / "file.dcm";
    ASSERT_TRUE(file.saveFile(path.c_str(), xfer).good());
    const fs::path data_only = dir_ / "data_set.bin";
    ASSERT_TRUE(file.getDataset()->saveFile(data_only.c_str(), xfer).good());

    auto header = read_part10_header(path);
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header->meta.transfer_syntax_uid, uid);
    EXPECT_EQ(header->meta.media_storage_sop_class_uid, UID_CTImageStorage);
    EXPECT_EQ(header->meta.media_storage_sop_instance_uid, "1.2.826.0.1.3680043.2.1");
    EXPECT_EQ(header->meta.implementation_class_uid, OFFIS_IMPLEMENTATION_CLASS_UID);

    const auto file_bytes = read_all(path);
    const auto expected = read_all(data_only);
    ASSERT_LE(header->data_set_offset, file_bytes.size());
    const std::vector<std::uint8_t> data_set(
        file_bytes.begin() + static_cast<std::ptrdiff_t>(header->data_set_offset),
        file_bytes.end());
    EXPECT_EQ(data_set, expected);
  }
}

TEST_F(Part10Test, DcmtkWrittenDeflatedFile) {
  DcmFileFormat file;
  fill_data_set(*file.getDataset());
  const fs::path path = dir_ / "deflated.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_DeflatedLittleEndianExplicit).good());
  auto header = read_part10_header(path);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->meta.transfer_syntax_uid, kDeflatedExplicitVrLittleEndian);

  // The meta group (uncompressed) ends where DCMTK's group length says it does.
  const auto bytes = read_all(path);
  const std::uint32_t group_length =
      bytes[140] | (bytes[141] << 8) | (bytes[142] << 16) | (std::uint32_t{bytes[143]} << 24);
  EXPECT_EQ(header->data_set_offset, 144u + group_length);
}

TEST_F(Part10Test, TruncatedHeaderIsError) {
  const std::vector<std::uint8_t> bytes = encode_file_meta(sample_meta());
  for (std::size_t n : {std::size_t{0}, std::size_t{100}, std::size_t{131}, std::size_t{132},
                        std::size_t{140}, std::size_t{150}, bytes.size() - 1}) {
    auto header = parse_part10_header(std::span(bytes.data(), n));
    ASSERT_FALSE(header.ok()) << "n=" << n;
    EXPECT_EQ(header.error().code, core::ErrorCode::kInvalidArgument);
  }
  // A file cut inside the meta group.
  const fs::path path = dir_ / "cut.dcm";
  write_all(path, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 150));
  auto header = read_part10_header(path);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(Part10Test, NoDicmIsError) {
  std::vector<std::uint8_t> bytes = encode_file_meta(sample_meta());
  bytes[128] = 'X';
  auto header = parse_part10_header(bytes);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code, core::ErrorCode::kInvalidArgument);

  const fs::path path = dir_ / "not_dicom.txt";
  write_all(path, std::vector<std::uint8_t>(1000, 'a'));
  auto from_file = read_part10_header(path);
  ASSERT_FALSE(from_file.ok());
  EXPECT_EQ(from_file.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(Part10Test, HugeElementLengthIsErrorNotOverread) {
  std::vector<std::uint8_t> bytes = encode_file_meta(sample_meta());
  // (0002,0001) OB length (4 bytes at offset 144 + 8) set to 0x7FFFFFF0.
  bytes[152] = 0xF0;
  bytes[153] = 0xFF;
  bytes[154] = 0xFF;
  bytes[155] = 0x7F;
  auto header = parse_part10_header(bytes);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(Part10Test, MissingTransferSyntaxIsError) {
  FileMeta meta = sample_meta();
  meta.transfer_syntax_uid.clear();
  std::vector<std::uint8_t> bytes = encode_file_meta(meta);
  const std::vector<std::uint8_t> data = {0x08, 0x00, 0x16, 0x00, 'U', 'I', 0x02, 0x00, '1', 0};
  bytes.insert(bytes.end(), data.begin(), data.end());
  auto header = parse_part10_header(bytes);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(Part10Test, MissingFileIsNotFound) {
  auto header = read_part10_header(dir_ / "does_not_exist.dcm");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code, core::ErrorCode::kNotFound);
}

}  // namespace
}  // namespace gw::dicom
