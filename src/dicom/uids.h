#pragma once
/// UIDs the gateway knows: transfer syntaxes (what it can receive and forward unchanged) and
/// SOP class classification (Verification, Storage) backed by DCMTK's UID tables.

#include <span>
#include <string>
#include <string_view>

namespace gw::dicom {

inline constexpr std::string_view kVerificationSopClass = "1.2.840.10008.1.1";
inline constexpr std::string_view kImplicitVrLittleEndian = "1.2.840.10008.1.2";
inline constexpr std::string_view kExplicitVrLittleEndian = "1.2.840.10008.1.2.1";
inline constexpr std::string_view kDeflatedExplicitVrLittleEndian = "1.2.840.10008.1.2.1.99";
inline constexpr std::string_view kExplicitVrBigEndian = "1.2.840.10008.1.2.2";

/// The gateway's implementation class UID (under the DCMTK-free "2.25" UUID arc) and version.
inline constexpr std::string_view kImplementationClassUid =
    "2.25.186474613262730913742310585532931736821";
inline constexpr std::string_view kImplementationVersionName = "DICOMGW_010";

struct TransferSyntaxInfo {
  std::string_view uid;
  std::string_view name;
  bool explicit_vr;
  bool big_endian;
  bool encapsulated;  ///< compressed pixel data (never decoded by the gateway)
  bool deflated;
};

/// Every transfer syntax the gateway accepts as-is: the uncompressed ones, deflate, and the
/// compressed ones (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE, …).
std::span<const TransferSyntaxInfo> supported_transfer_syntaxes();
/// nullptr when the UID is not supported.
const TransferSyntaxInfo* find_transfer_syntax(std::string_view uid);

/// True for any Storage SOP class in DCMTK's tables (all storage classes it knows, including
/// retired ones).
bool is_storage_sop_class(std::string_view uid);

/// A readable name ("CT Image Storage") or the UID itself when unknown.
std::string sop_class_name(std::string_view uid);

/// Syntax check for a received UID: 1-64 chars, digits and dots, no empty component. Leading
/// zeros in a component ("1.2.840.0604.1"), which PS3.5 9.1 forbids, are accepted: legacy
/// modalities send them and refusing them would only refuse real-world data.
bool is_valid_uid(std::string_view uid);

}  // namespace gw::dicom
