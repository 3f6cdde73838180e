#pragma once
/// The tags the index needs from a received instance, read with DCMTK's dcmdata from the stored
/// Part 10 file without loading large values (pixel data stays on disk).

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "core/result.h"
#include "dicom/byte_source.h"

namespace gw::dicom {

struct InstanceInfo {
  std::string sop_class_uid;        ///< (0008,0016)
  std::string sop_instance_uid;     ///< (0008,0018)
  std::string study_instance_uid;   ///< (0020,000D)
  std::string series_instance_uid;  ///< (0020,000E)
  std::string patient_id;           ///< (0010,0020)
  std::string patient_name;         ///< (0010,0010)
  std::string patient_birth_date;   ///< (0010,0030)
  std::string patient_sex;          ///< (0010,0040)
  std::string study_date;           ///< (0008,0020)
  std::string study_time;           ///< (0008,0030)
  std::string study_description;    ///< (0008,1030)
  std::string accession_number;     ///< (0008,0050)
  std::string study_id;             ///< (0020,0010)
  std::string referring_physician;  ///< (0008,0090)
  std::string modality;             ///< (0008,0060)
  std::string series_description;   ///< (0008,103E)
  std::string series_number;        ///< (0020,0011)
  std::string instance_number;      ///< (0020,0013)
  std::string body_part_examined;   ///< (0018,0015)
  std::string station_name;         ///< (0008,1010)
  std::string institution_name;     ///< (0008,0080)
  /// The requested extra tags that are present at the top level of the data set, keyed by
  /// (group << 16 | element): DCMTK's string of all values (backslash-separated), trailing
  /// spaces and NULs trimmed; "" when present but empty. Binary and sequence elements map to ""
  /// (their bytes are never loaded).
  std::map<std::uint32_t, std::string> extra_tags;
};

/// Parses a Part 10 file (any supported transfer syntax, deflate included). A file DCMTK cannot
/// parse is kInvalidArgument with DCMTK's reason. Missing tags are empty strings; a missing SOP
/// Instance UID or SOP Class UID is kInvalidArgument. `extra_tags` (e.g. what the routing rules
/// need) fill InstanceInfo::extra_tags; asking for none costs nothing extra.
core::Result<InstanceInfo> read_instance_info(const std::filesystem::path& part10_file,
                                              std::span<const std::uint32_t> extra_tags = {});
/// The same from a byte source (e.g. an encrypted spool file). `source` must outlive the call
/// only. A read error of the source (kDataLoss, kIo) is returned as it is.
core::Result<InstanceInfo> read_instance_info(ByteSource& source,
                                              std::span<const std::uint32_t> extra_tags = {});

}  // namespace gw::dicom
