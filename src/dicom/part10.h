#pragma once
/// DICOM Part 10 files (PS3.10 section 7): 128-byte preamble, "DICM", the File Meta Information
/// group (0002) in Explicit VR Little Endian, then the data set in its transfer syntax.
///
/// The gateway stores what it receives as: generated meta group + the data set bytes exactly as
/// received. To send a file it finds where the data set starts and streams the bytes from there.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "dicom/byte_source.h"

namespace gw::dicom {

using core::Result;

struct FileMeta {
  std::string media_storage_sop_class_uid;      ///< (0002,0002)
  std::string media_storage_sop_instance_uid;   ///< (0002,0003)
  std::string transfer_syntax_uid;              ///< (0002,0010)
  std::string implementation_class_uid;         ///< (0002,0012)
  std::string implementation_version_name;      ///< (0002,0013)
  std::string source_application_entity_title;  ///< (0002,0016), empty = omitted
};

/// Preamble + "DICM" + group 0002 with (0002,0000) group length and (0002,0001) version 00\01.
std::vector<std::uint8_t> encode_file_meta(const FileMeta& meta);

struct Part10Header {
  FileMeta meta;
  std::uint64_t data_set_offset = 0;  ///< where the data set starts in the file
};

/// Parses preamble, magic and the meta group from the first bytes of a file. `head` must hold at
/// least the whole meta group (the function says kInvalidArgument "need more bytes" otherwise;
/// 64 KiB is always enough for real files). Files without preamble/"DICM" are kInvalidArgument.
Result<Part10Header> parse_part10_header(std::span<const std::uint8_t> head);

/// Reads the head of `path` and parses it.
Result<Part10Header> read_part10_header(const std::filesystem::path& path);
/// Reads the head of `source` and parses it.
Result<Part10Header> read_part10_header(ByteSource& source);

}  // namespace gw::dicom
