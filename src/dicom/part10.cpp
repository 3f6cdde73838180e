#include "dicom/part10.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string_view>
#include <system_error>

#include "core/bytes.h"
#include "core/log.h"
#include "dicom/uids.h"

namespace gw::dicom {
namespace {

constexpr std::size_t kPreambleSize = 128;
constexpr std::string_view kMagic = "DICM";
constexpr std::size_t kMetaStart = kPreambleSize + 4;
/// The preamble and meta group of any real file fit in this; a meta group reaching beyond it is
/// treated as malformed rather than read further.
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::uint16_t kMetaGroup = 0x0002;

constexpr std::uint16_t kTagGroupLength = 0x0000;
constexpr std::uint16_t kTagVersion = 0x0001;
constexpr std::uint16_t kTagMediaStorageSopClassUid = 0x0002;
constexpr std::uint16_t kTagMediaStorageSopInstanceUid = 0x0003;
constexpr std::uint16_t kTagTransferSyntaxUid = 0x0010;
constexpr std::uint16_t kTagImplementationClassUid = 0x0012;
constexpr std::uint16_t kTagImplementationVersionName = 0x0013;
constexpr std::uint16_t kTagSourceApplicationEntityTitle = 0x0016;

constexpr std::uint32_t kUndefinedLength = 0xFFFFFFFF;
constexpr std::size_t kMaxShortLength = 0xFFFE;  // largest even value of a 16-bit length field

/// Explicit VRs whose header is VR + 2 reserved bytes + 32-bit length (PS3.5 7.1.2).
bool has_long_length(char a, char b) {
  static constexpr std::string_view kLongVrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                                  "SV", "UC", "UN", "UR", "UT", "UV"};
  const char vr[2] = {a, b};
  return std::ranges::any_of(kLongVrs,
                             [&](std::string_view v) { return v == std::string_view(vr, 2); });
}

bool is_vr_letter(std::uint8_t c) { return c >= 'A' && c <= 'Z'; }

void put_short_element(core::ByteWriter& w, std::uint16_t element, std::string_view vr,
                       std::string_view value, char padding) {
  value = value.substr(0, kMaxShortLength);
  const bool odd = value.size() % 2 != 0;
  w.u16le(kMetaGroup);
  w.u16le(element);
  w.bytes(vr);
  w.u16le(static_cast<std::uint16_t>(value.size() + (odd ? 1 : 0)));
  w.bytes(value);
  if (odd) w.u8(static_cast<std::uint8_t>(padding));
}

std::string_view trim(std::string_view s, bool leading_spaces) {
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.remove_suffix(1);
  while (leading_spaces && !s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

std::string to_string(std::span<const std::uint8_t> value, bool leading_spaces) {
  return std::string(trim(
      std::string_view(reinterpret_cast<const char*>(value.data()), value.size()), leading_spaces));
}

core::Error invalid(std::string message) {
  return core::make_error(core::ErrorCode::kInvalidArgument, std::move(message));
}

core::Error truncated(bool whole_file, std::size_t offset) {
  if (whole_file) {
    return invalid("Part 10 file truncated inside the meta group at offset " +
                   std::to_string(offset));
  }
  return invalid("need more bytes: the meta group continues past offset " + std::to_string(offset));
}

/// `whole_file`: `head` is the entire file, so ending right after the meta group means an empty
/// data set rather than a short read.
Result<Part10Header> parse_header(std::span<const std::uint8_t> head, bool whole_file) {
  if (head.size() < kMetaStart) {
    if (whole_file) return invalid("not a DICOM Part 10 file: shorter than preamble and prefix");
    return invalid("need more bytes: " + std::to_string(head.size()) +
                   " bytes do not hold the preamble and prefix");
  }
  if (std::string_view(reinterpret_cast<const char*>(head.data()) + kPreambleSize, kMagic.size()) !=
      kMagic) {
    return invalid("not a DICOM Part 10 file: no \"DICM\" prefix after the preamble");
  }

  Part10Header header;
  std::optional<std::uint64_t> declared_end;  // from (0002,0000): a hint, never trusted alone
  core::ByteReader r(head);
  (void)r.skip(kMetaStart);
  while (true) {
    const std::size_t element_start = r.position();
    header.data_set_offset = element_start;
    if (r.remaining() < 2) {
      if (whole_file && r.empty()) break;
      return truncated(whole_file, element_start);
    }
    std::uint16_t group = 0;
    (void)r.u16le(group);
    if (group != kMetaGroup) break;
    // A deflated data set starts right after the meta group, and its first bytes may happen to
    // read as group 0002: there the declared group length decides where the meta group ends.
    if (declared_end && *declared_end == element_start &&
        header.meta.transfer_syntax_uid == kDeflatedExplicitVrLittleEndian) {
      break;
    }

    std::uint16_t element = 0;
    std::span<const std::uint8_t> vr;
    if (!r.u16le(element) || !r.bytes(2, vr)) return truncated(whole_file, element_start);
    std::uint32_t length = 0;
    if (is_vr_letter(vr[0]) && is_vr_letter(vr[1])) {
      if (has_long_length(static_cast<char>(vr[0]), static_cast<char>(vr[1]))) {
        if (!r.skip(2) || !r.u32le(length)) return truncated(whole_file, element_start);
      } else {
        std::uint16_t short_length = 0;
        if (!r.u16le(short_length)) return truncated(whole_file, element_start);
        length = short_length;
      }
    } else {
      // Some old writers put the meta group in Implicit VR: the "VR" is the low half of a
      // 32-bit length.
      std::uint16_t high = 0;
      if (!r.u16le(high)) return truncated(whole_file, element_start);
      length = std::uint32_t{vr[0]} | (std::uint32_t{vr[1]} << 8) | (std::uint32_t{high} << 16);
    }
    if (length == kUndefinedLength) {
      char tag[16];
      std::snprintf(tag, sizeof tag, "(0002,%04X)", element);
      return invalid(std::string("undefined length in meta element ") + tag);
    }
    if (std::uint64_t{r.position()} + length > kMaxHeaderBytes) {
      return invalid("meta group larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
    std::span<const std::uint8_t> value;
    if (!r.bytes(length, value)) return truncated(whole_file, element_start);

    auto& meta = header.meta;
    switch (element) {
      case kTagGroupLength:
        if (length == 4) {
          core::ByteReader value_reader(value);
          std::uint32_t group_length = 0;
          (void)value_reader.u32le(group_length);
          declared_end = std::uint64_t{r.position()} + group_length;
        }
        break;
      case kTagMediaStorageSopClassUid:
        meta.media_storage_sop_class_uid = to_string(value, false);
        break;
      case kTagMediaStorageSopInstanceUid:
        meta.media_storage_sop_instance_uid = to_string(value, false);
        break;
      case kTagTransferSyntaxUid:
        meta.transfer_syntax_uid = to_string(value, false);
        break;
      case kTagImplementationClassUid:
        meta.implementation_class_uid = to_string(value, false);
        break;
      case kTagImplementationVersionName:
        meta.implementation_version_name = to_string(value, true);
        break;
      case kTagSourceApplicationEntityTitle:
        meta.source_application_entity_title = to_string(value, true);
        break;
      default:
        break;  // version, private information, sending/receiving AE titles, …
    }
  }

  if (declared_end && *declared_end != header.data_set_offset) {
    core::logger("dicom")->warn("part10 meta_group_length_mismatch declared_end={} actual_end={}",
                                *declared_end, header.data_set_offset);
  }
  if (header.meta.transfer_syntax_uid.empty()) {
    return invalid("meta group has no Transfer Syntax UID (0002,0010)");
  }
  return header;
}

}  // namespace

std::vector<std::uint8_t> encode_file_meta(const FileMeta& meta) {
  std::vector<std::uint8_t> body;
  core::ByteWriter w(body);
  // (0002,0001) OB 00\01
  w.u16le(kMetaGroup);
  w.u16le(kTagVersion);
  w.bytes(std::string_view("OB\0\0", 4));
  w.u32le(2);
  w.u8(0x00);
  w.u8(0x01);
  put_short_element(w, kTagMediaStorageSopClassUid, "UI", meta.media_storage_sop_class_uid, '\0');
  put_short_element(w, kTagMediaStorageSopInstanceUid, "UI", meta.media_storage_sop_instance_uid,
                    '\0');
  put_short_element(w, kTagTransferSyntaxUid, "UI", meta.transfer_syntax_uid, '\0');
  put_short_element(w, kTagImplementationClassUid, "UI", meta.implementation_class_uid, '\0');
  if (!meta.implementation_version_name.empty()) {
    put_short_element(w, kTagImplementationVersionName, "SH", meta.implementation_version_name,
                      ' ');
  }
  if (!meta.source_application_entity_title.empty()) {
    put_short_element(w, kTagSourceApplicationEntityTitle, "AE",
                      meta.source_application_entity_title, ' ');
  }

  std::vector<std::uint8_t> out;
  out.reserve(kMetaStart + 12 + body.size());
  core::ByteWriter ow(out);
  ow.zeros(kPreambleSize);
  ow.bytes(kMagic);
  ow.u16le(kMetaGroup);
  ow.u16le(kTagGroupLength);
  ow.bytes(std::string_view("UL"));
  ow.u16le(4);
  ow.u32le(static_cast<std::uint32_t>(body.size()));
  ow.bytes(body);
  return out;
}

Result<Part10Header> parse_part10_header(std::span<const std::uint8_t> head) {
  return parse_header(head, /*whole_file=*/false);
}

Result<Part10Header> read_part10_header(const std::filesystem::path& path) {
  auto source = open_file_source(path);
  if (!source.ok()) return std::move(source).error();
  return read_part10_header(**source);
}

Result<Part10Header> read_part10_header(ByteSource& source) {
  const std::uint64_t size = source.size();
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size, kMaxHeaderBytes));
  std::vector<std::uint8_t> head(n);
  auto got = source.read_at(0, head);
  if (!got.ok()) return std::move(got).error();
  if (*got != n) return core::make_error(core::ErrorCode::kIo, "short read of the file header");
  return parse_header(head, /*whole_file=*/size <= kMaxHeaderBytes);
}

}  // namespace gw::dicom
