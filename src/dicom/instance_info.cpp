#include "dicom/instance_info.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include "dicom/binary_vr.h"

namespace gw::dicom {
namespace {

/// Values longer than this stay on disk (DCMTK reads them lazily on access): pixel data is never
/// loaded just to index an instance.
constexpr Uint32 kMaxLoadedValueLength = 4096;

std::string get(DcmDataset& ds, const DcmTagKey& tag) {
  OFString value;
  // All values, backslashes included: a PN stays the raw string as received.
  if (ds.findAndGetOFStringArray(tag, value).bad()) return {};
  return std::string(value.c_str(), value.length());
}

void read_extra_tags(DcmDataset& ds, std::span<const std::uint32_t> tags,
                     std::map<std::uint32_t, std::string>& out) {
  for (const std::uint32_t tag : tags) {
    const DcmTagKey key(static_cast<Uint16>(tag >> 16), static_cast<Uint16>(tag & 0xFFFF));
    DcmElement* element = nullptr;
    if (ds.findAndGetElement(key, element, /*searchIntoSub=*/OFFalse).bad() || element == nullptr) {
      continue;
    }
    std::string& text = out[tag];
    OFString value;
    if ((element->getVR() == EVR_UN || is_binary_vr(element->getVR())) ||
        element->getOFStringArray(value).bad())
      continue;
    text.assign(value.c_str(), value.length());
    while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  }
}

}  // namespace

core::Result<InstanceInfo> read_instance_info(const std::filesystem::path& part10_file,
                                              std::span<const std::uint32_t> extra_tags) {
  DcmFileFormat file;
  const OFCondition loaded = file.loadFile(OFFilename(part10_file.c_str()), EXS_Unknown,
                                           EGL_noChange, kMaxLoadedValueLength, ERM_autoDetect);
  if (loaded.bad()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            std::string("DICOM file not readable: ") + loaded.text());
  }
  DcmDataset* ds = file.getDataset();
  if (ds == nullptr) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "DICOM file has no data set");
  }

  InstanceInfo info;
  info.sop_class_uid = get(*ds, DCM_SOPClassUID);
  info.sop_instance_uid = get(*ds, DCM_SOPInstanceUID);
  if (info.sop_class_uid.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "DICOM file has no SOP Class UID (0008,0016)");
  }
  if (info.sop_instance_uid.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "DICOM file has no SOP Instance UID (0008,0018)");
  }
  info.study_instance_uid = get(*ds, DCM_StudyInstanceUID);
  info.series_instance_uid = get(*ds, DCM_SeriesInstanceUID);
  info.patient_id = get(*ds, DCM_PatientID);
  info.patient_name = get(*ds, DCM_PatientName);
  info.patient_birth_date = get(*ds, DCM_PatientBirthDate);
  info.patient_sex = get(*ds, DCM_PatientSex);
  info.study_date = get(*ds, DCM_StudyDate);
  info.study_time = get(*ds, DCM_StudyTime);
  info.study_description = get(*ds, DCM_StudyDescription);
  info.accession_number = get(*ds, DCM_AccessionNumber);
  info.study_id = get(*ds, DCM_StudyID);
  info.referring_physician = get(*ds, DCM_ReferringPhysicianName);
  info.modality = get(*ds, DCM_Modality);
  info.series_description = get(*ds, DCM_SeriesDescription);
  info.series_number = get(*ds, DCM_SeriesNumber);
  info.instance_number = get(*ds, DCM_InstanceNumber);
  info.body_part_examined = get(*ds, DCM_BodyPartExamined);
  info.station_name = get(*ds, DCM_StationName);
  info.institution_name = get(*ds, DCM_InstitutionName);
  if (!extra_tags.empty()) read_extra_tags(*ds, extra_tags, info.extra_tags);
  return info;
}

}  // namespace gw::dicom
