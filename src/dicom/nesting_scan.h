#pragma once
/// How deep a data set's sequences nest, found by walking its element headers before DCMTK
/// parses it. DCMTK's parse (and its destructors) recurse once per level with no limit: about
/// 20,000 levels, 700 KB sent, overflow a thread's 8 MiB stack and kill the process. Real data
/// nests a few levels (an SR content tree a few dozen at most).

#include <cstdint>
#include <span>
#include <string_view>

#include "core/result.h"

namespace gw::dicom {

inline constexpr int kMaxSequenceNesting = 128;

/// The data set's bytes in order (after any inflation).
class SequentialReader {
 public:
  virtual ~SequentialReader() = default;
  /// Exactly out.size() bytes, or false (end of data or an error).
  virtual bool read(std::span<std::uint8_t> out) = 0;
  /// Passes over `n` bytes, or false.
  virtual bool skip(std::uint64_t n) = 0;
};

enum class DataSetEncoding { kExplicitLittle, kImplicitLittle, kExplicitBig };

/// The encoding of a data set in `transfer_syntax_uid` (deflated: after inflation).
DataSetEncoding encoding_of(std::string_view transfer_syntax_uid);

/// kInvalidArgument when sequences nest deeper than `max_depth`. Malformed or truncated data
/// ends the walk without an error: whether it can be parsed is DCMTK's to say, only the depth
/// is checked here. Sequences are recognised generously (an SQ, any undefined length but
/// encapsulated pixel data, a value that starts with an item tag), so nothing DCMTK may parse
/// as a sequence is missed. Bounded: every step consumes data or closes a level.
core::Status check_sequence_nesting(SequentialReader& in, DataSetEncoding encoding,
                                    int max_depth = kMaxSequenceNesting);

}  // namespace gw::dicom
