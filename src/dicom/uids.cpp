#include "dicom/uids.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcuid.h>

#include <array>

namespace gw::dicom {
namespace {

constexpr TransferSyntaxInfo native(std::string_view uid, std::string_view name, bool explicit_vr,
                                    bool big_endian = false) {
  return {uid, name, explicit_vr, big_endian, /*encapsulated=*/false, /*deflated=*/false};
}

constexpr TransferSyntaxInfo encapsulated(std::string_view uid, std::string_view name) {
  return {uid,
          name,
          /*explicit_vr=*/true,
          /*big_endian=*/false,
          /*encapsulated=*/true,
          /*deflated=*/false};
}

// UIDs checked against PS3.6 table A-1 (as mirrored by DCMTK 3.6.7's dcuid.h; the HTJ2K and
// Encapsulated Uncompressed syntaxes are newer than that DCMTK release).
constexpr std::array kTransferSyntaxes = {
    native(kImplicitVrLittleEndian, "Implicit VR Little Endian", false),
    native(kExplicitVrLittleEndian, "Explicit VR Little Endian", true),
    encapsulated("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian"),
    TransferSyntaxInfo{kDeflatedExplicitVrLittleEndian, "Deflated Explicit VR Little Endian",
                       /*explicit_vr=*/true, /*big_endian=*/false, /*encapsulated=*/false,
                       /*deflated=*/true},
    native(kExplicitVrBigEndian, "Explicit VR Big Endian (Retired)", true, /*big_endian=*/true),
    encapsulated("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"),
    encapsulated("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"),
    encapsulated("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)"),
    encapsulated("1.2.840.10008.1.2.4.70",
                 "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)"),
    encapsulated("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression"),
    encapsulated("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression"),
    encapsulated("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)"),
    encapsulated("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression"),
    encapsulated("1.2.840.10008.1.2.4.92",
                 "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)"),
    encapsulated("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component Image Compression"),
    encapsulated("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
    encapsulated("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level"),
    encapsulated("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
    encapsulated("1.2.840.10008.1.2.4.103",
                 "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1"),
    encapsulated("1.2.840.10008.1.2.4.104",
                 "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video"),
    encapsulated("1.2.840.10008.1.2.4.105",
                 "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video"),
    encapsulated("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2"),
    encapsulated("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1"),
    encapsulated("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1"),
    encapsulated("1.2.840.10008.1.2.4.201",
                 "High-Throughput JPEG 2000 Image Compression (Lossless Only)"),
    encapsulated("1.2.840.10008.1.2.4.202",
                 "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)"),
    encapsulated("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression"),
    encapsulated("1.2.840.10008.1.2.5", "RLE Lossless"),
};

/// DCMTK's lookups take C strings: a UID with an embedded NUL is never a known one.
bool to_c_string(std::string_view uid, std::string& out) {
  if (uid.empty() || uid.find('\0') != std::string_view::npos) return false;
  out.assign(uid);
  return true;
}

}  // namespace

std::span<const TransferSyntaxInfo> supported_transfer_syntaxes() { return kTransferSyntaxes; }

const TransferSyntaxInfo* find_transfer_syntax(std::string_view uid) {
  for (const auto& ts : kTransferSyntaxes) {
    if (ts.uid == uid) return &ts;
  }
  return nullptr;
}

bool is_storage_sop_class(std::string_view uid) {
  std::string c;
  if (!to_c_string(uid, c)) return false;
  return dcmIsaStorageSOPClassUID(c.c_str(), ESSC_All);
}

std::string sop_class_name(std::string_view uid) {
  std::string c;
  if (!to_c_string(uid, c)) return std::string(uid);
  const char* name = dcmFindNameOfUID(c.c_str(), nullptr);
  return name != nullptr ? std::string(name) : c;
}

bool is_valid_uid(std::string_view uid) {
  constexpr std::size_t kMaxUidLength = 64;
  if (uid.empty() || uid.size() > kMaxUidLength) return false;
  std::size_t component_start = 0;
  for (std::size_t i = 0; i <= uid.size(); ++i) {
    if (i == uid.size() || uid[i] == '.') {
      const std::size_t len = i - component_start;
      // A leading zero ("1.2.840.0604.1") breaks PS3.5 9.1 but legacy modalities send such
      // UIDs and other toolkits accept them; an empty component is refused (the REST API
      // could not look such an instance up).
      if (len == 0) return false;
      component_start = i + 1;
    } else if (uid[i] < '0' || uid[i] > '9') {
      return false;
    }
  }
  return true;
}

}  // namespace gw::dicom
