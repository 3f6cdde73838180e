#pragma once
/// Internal to the PDU codec (pdu_parse.cpp, pdu_encode.cpp): the wire sizes and item type
/// codes that parsing and encoding share. Not a public header: include dicom/pdu.h.

#include <cstddef>
#include <cstdint>

namespace gw::dicom {

inline constexpr std::size_t kAeTitleSize = 16;
inline constexpr std::size_t kItemHeaderSize = 4;  // type, reserved, u16 length

// Item types (PS3.8 9.3.2 / 9.3.3).
inline constexpr std::uint8_t kItemApplicationContext = 0x10;
inline constexpr std::uint8_t kItemPresentationContextRq = 0x20;
inline constexpr std::uint8_t kItemPresentationContextAc = 0x21;
inline constexpr std::uint8_t kItemAbstractSyntax = 0x30;
inline constexpr std::uint8_t kItemTransferSyntax = 0x40;
inline constexpr std::uint8_t kItemUserInformation = 0x50;
// User information sub-items (PS3.8 annex D, PS3.7 annex D).
inline constexpr std::uint8_t kSubMaxLength = 0x51;
inline constexpr std::uint8_t kSubImplementationClassUid = 0x52;
inline constexpr std::uint8_t kSubAsyncOpsWindow = 0x53;
inline constexpr std::uint8_t kSubRoleSelection = 0x54;
inline constexpr std::uint8_t kSubImplementationVersionName = 0x55;
inline constexpr std::uint8_t kSubExtendedNegotiation = 0x56;
inline constexpr std::uint8_t kSubUserIdentityRq = 0x58;
inline constexpr std::uint8_t kSubUserIdentityAc = 0x59;

}  // namespace gw::dicom
