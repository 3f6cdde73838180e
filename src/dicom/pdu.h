#pragma once
/// DICOM Upper Layer PDUs (PS3.8 section 9.3): the seven PDU types, their items and the user
/// information sub-items, parsed from untrusted bytes and encoded for the wire.
///
/// Parsing takes the PDU *body* (the bytes after the 6-byte header); every length inside is
/// checked against what remains, so no input can make the parser read out of bounds or allocate
/// more than the body's size. Encoding returns a complete PDU (header included).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gw::dicom {

using core::Result;
using core::Status;

inline constexpr std::string_view kApplicationContextName = "1.2.840.10008.3.1.1.1";
inline constexpr std::size_t kPduHeaderSize = 6;
/// PDV item header inside P-DATA-TF: item length (4) + context id (1) + control header (1).
inline constexpr std::size_t kPdvHeaderSize = 6;

enum class PduType : std::uint8_t {
  kAssociateRq = 0x01,
  kAssociateAc = 0x02,
  kAssociateRj = 0x03,
  kPDataTf = 0x04,
  kReleaseRq = 0x05,
  kReleaseRp = 0x06,
  kAbort = 0x07,
};

struct PduHeader {
  PduType type;
  std::uint32_t length;  ///< body length, as sent by the peer (not yet checked against limits)
};

/// "A-ASSOCIATE-RQ", "P-DATA-TF", … (for logs).
std::string_view name(PduType type);

/// Parses the fixed 6-byte PDU header. An unknown PDU type is a kProtocol error.
Result<PduHeader> parse_pdu_header(std::span<const std::uint8_t, kPduHeaderSize> bytes);

// ---- Items -----------------------------------------------------------------------------------

/// Result/Reason of an A-ASSOCIATE-AC presentation context item (PS3.8 9.3.3.2).
enum class PcResult : std::uint8_t {
  kAcceptance = 0,
  kUserRejection = 1,
  kNoReason = 2,
  kAbstractSyntaxNotSupported = 3,
  kTransferSyntaxesNotSupported = 4,
};

struct PresentationContextRq {
  std::uint8_t id = 0;  ///< odd, 1..255
  std::string abstract_syntax;
  /// A parsed item with no abstract syntax or more than one leaves abstract_syntax empty (the
  /// negotiation answers it kNoReason); one with no transfer syntax leaves transfer_syntaxes
  /// empty (answered kTransferSyntaxesNotSupported). Either way the other contexts go ahead.
  std::vector<std::string> transfer_syntaxes;

  friend bool operator==(const PresentationContextRq&, const PresentationContextRq&) = default;
};

struct PresentationContextAc {
  std::uint8_t id = 0;
  PcResult result = PcResult::kAcceptance;
  std::string transfer_syntax;  ///< meaningful only when accepted

  friend bool operator==(const PresentationContextAc&, const PresentationContextAc&) = default;
};

struct AsyncOpsWindow {  // sub-item 0x53
  std::uint16_t max_invoked = 1;
  std::uint16_t max_performed = 1;

  friend bool operator==(const AsyncOpsWindow&, const AsyncOpsWindow&) = default;
};

struct RoleSelection {  // sub-item 0x54
  std::string sop_class_uid;
  bool scu_role = false;
  bool scp_role = false;

  friend bool operator==(const RoleSelection&, const RoleSelection&) = default;
};

struct ExtendedNegotiation {  // sub-item 0x56
  std::string sop_class_uid;
  std::vector<std::uint8_t> info;

  friend bool operator==(const ExtendedNegotiation&, const ExtendedNegotiation&) = default;
};

struct UserIdentityRq {   // sub-item 0x58
  std::uint8_t type = 1;  ///< 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT
  bool positive_response_requested = false;
  std::vector<std::uint8_t> primary_field;
  std::vector<std::uint8_t> secondary_field;

  friend bool operator==(const UserIdentityRq&, const UserIdentityRq&) = default;
};

struct UserIdentityAc {  // sub-item 0x59
  std::vector<std::uint8_t> server_response;

  friend bool operator==(const UserIdentityAc&, const UserIdentityAc&) = default;
};

/// A sub-item we do not interpret (e.g. 0x57 SOP class common extended negotiation), kept raw.
struct RawItem {
  std::uint8_t type = 0;
  std::vector<std::uint8_t> value;

  friend bool operator==(const RawItem&, const RawItem&) = default;
};

struct UserInformation {                    // item 0x50
  std::uint32_t max_pdu_length = 0;         ///< sub-item 0x51; 0 means "no limit"
  std::string implementation_class_uid;     ///< 0x52
  std::string implementation_version_name;  ///< 0x55 (optional, empty = absent)
  std::optional<AsyncOpsWindow> async_ops_window;
  std::vector<RoleSelection> role_selections;
  std::vector<ExtendedNegotiation> extended_negotiations;
  std::optional<UserIdentityRq> user_identity_rq;
  std::optional<UserIdentityAc> user_identity_ac;
  std::vector<RawItem> other_items;
  /// Set by the parser (never encoded): types of optional sub-items (0x54, 0x56, 0x58, 0x59)
  /// whose fields did not fit their sub-item, skipped (the gateway does not act on them).
  std::vector<std::uint8_t> skipped_sub_items;

  friend bool operator==(const UserInformation&, const UserInformation&) = default;
};

// ---- PDUs ------------------------------------------------------------------------------------

struct AssociateRq {
  std::uint16_t protocol_version = 1;
  std::string called_ae;   ///< leading/trailing spaces removed
  std::string calling_ae;  ///< leading/trailing spaces removed
  std::string application_context{kApplicationContextName};
  std::vector<PresentationContextRq> contexts;
  UserInformation user_info;

  friend bool operator==(const AssociateRq&, const AssociateRq&) = default;
};

struct AssociateAc {
  std::uint16_t protocol_version = 1;
  std::string called_ae;  ///< echoed from the RQ (PS3.8 says not tested, but we echo it)
  std::string calling_ae;
  std::string application_context{kApplicationContextName};
  std::vector<PresentationContextAc> contexts;
  UserInformation user_info;

  friend bool operator==(const AssociateAc&, const AssociateAc&) = default;
};

enum class RejectResult : std::uint8_t { kPermanent = 1, kTransient = 2 };
enum class RejectSource : std::uint8_t {
  kServiceUser = 1,
  kServiceProviderAcse = 2,
  kServiceProviderPresentation = 3,
};
/// Reason values; their meaning depends on the source (PS3.8 table 9-21).
namespace reject_reason {
inline constexpr std::uint8_t kNoReason = 1;                        // source 1 or 2
inline constexpr std::uint8_t kApplicationContextNotSupported = 2;  // source 1
inline constexpr std::uint8_t kCallingAeNotRecognized = 3;          // source 1
inline constexpr std::uint8_t kCalledAeNotRecognized = 7;           // source 1
inline constexpr std::uint8_t kProtocolVersionNotSupported = 2;     // source 2
inline constexpr std::uint8_t kTemporaryCongestion = 1;             // source 3
inline constexpr std::uint8_t kLocalLimitExceeded = 2;              // source 3
}  // namespace reject_reason

struct AssociateRj {
  RejectResult result = RejectResult::kPermanent;
  RejectSource source = RejectSource::kServiceUser;
  std::uint8_t reason = reject_reason::kNoReason;

  friend bool operator==(const AssociateRj&, const AssociateRj&) = default;
};

enum class AbortSource : std::uint8_t { kServiceUser = 0, kServiceProvider = 2 };
namespace abort_reason {
inline constexpr std::uint8_t kNotSpecified = 0;
inline constexpr std::uint8_t kUnrecognizedPdu = 1;
inline constexpr std::uint8_t kUnexpectedPdu = 2;
inline constexpr std::uint8_t kUnrecognizedPduParameter = 4;
inline constexpr std::uint8_t kUnexpectedPduParameter = 5;
inline constexpr std::uint8_t kInvalidPduParameterValue = 6;
}  // namespace abort_reason

struct Abort {
  AbortSource source = AbortSource::kServiceUser;
  std::uint8_t reason = abort_reason::kNotSpecified;

  friend bool operator==(const Abort&, const Abort&) = default;
};

/// One presentation data value. `data` points into the P-DATA-TF body it was parsed from.
struct Pdv {
  std::uint8_t context_id = 0;
  bool is_command = false;
  bool is_last = false;
  std::span<const std::uint8_t> data;
};

// ---- Parsing (body = the bytes after the 6-byte header) --------------------------------------

Result<AssociateRq> parse_associate_rq(std::span<const std::uint8_t> body);
Result<AssociateAc> parse_associate_ac(std::span<const std::uint8_t> body);
Result<AssociateRj> parse_associate_rj(std::span<const std::uint8_t> body);
/// Appends the PDVs of a P-DATA-TF body to `out` (cleared first). A PDV item length below 2
/// (no room for the message control header) is a kProtocol error; zero-length data is allowed.
/// A body without any PDV item is a kProtocol error too (PS3.8 9.3.5: "one or more").
Status parse_p_data_tf(std::span<const std::uint8_t> body, std::vector<Pdv>& out);
/// A-RELEASE-RQ/RP bodies: 4 reserved bytes.
Status parse_release(std::span<const std::uint8_t> body);
Result<Abort> parse_abort(std::span<const std::uint8_t> body);

// ---- Encoding (complete PDUs, header included) -----------------------------------------------

std::vector<std::uint8_t> encode_associate_rq(const AssociateRq& rq);
std::vector<std::uint8_t> encode_associate_ac(const AssociateAc& ac);
std::vector<std::uint8_t> encode_associate_rj(const AssociateRj& rj);
std::vector<std::uint8_t> encode_release_rq();
std::vector<std::uint8_t> encode_release_rp();
std::vector<std::uint8_t> encode_abort(const Abort& abort);

/// Header bytes of a P-DATA-TF PDU carrying exactly one PDV of `data_length` bytes: the 6-byte
/// PDU header followed by the 6-byte PDV item header. Writing these 12 bytes and then the data
/// (one gathered write) sends the PDU without copying the data.
std::array<std::uint8_t, kPduHeaderSize + kPdvHeaderSize> encode_p_data_header(
    std::uint8_t context_id, bool is_command, bool is_last, std::uint32_t data_length);

/// Human-readable one-liners for logs ("A-ASSOCIATE-RJ permanent/service-user/calling-AE").
std::string describe(const AssociateRj& rj);
std::string describe(const Abort& abort);

}  // namespace gw::dicom
