#include "dicom/nesting_scan.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dctag.h>

#include <array>
#include <limits>
#include <string>
#include <vector>

namespace gw::dicom {
namespace {

constexpr std::uint64_t kUndefined = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t kUndefinedLength = 0xFFFFFFFF;
constexpr std::uint16_t kItemGroup = 0xFFFE;
constexpr std::uint16_t kItemTag = 0xE000;
constexpr std::uint16_t kItemDelimitation = 0xE00D;
constexpr std::uint16_t kSequenceDelimitation = 0xE0DD;

enum class Kind { kDataSet, kSequence, kItem, kFragments };

struct Frame {
  Kind kind;
  std::uint64_t end;  ///< kUndefined: ends at its delimitation item
  bool implicit;      ///< its elements are Implicit VR (Little Endian)
};

bool is_one_of(char a, char b, std::span<const char* const> vrs) {
  for (const char* vr : vrs) {
    if (vr[0] == a && vr[1] == b) return true;
  }
  return false;
}

/// The VRs with a 2-byte length field in Explicit VR (PS3.5 7.1.2). Every other one, a VR
/// DCMTK does not know included, has 2 reserved bytes and a 4-byte length, as DCMTK reads them.
bool has_short_length(char a, char b) {
  static constexpr std::array<const char*, 21> kShort = {"AE", "AS", "AT", "CS", "DA", "DS", "DT",
                                                         "FD", "FL", "IS", "LO", "LT", "PN", "SH",
                                                         "SL", "SS", "ST", "TM", "UI", "UL", "US"};
  return is_one_of(a, b, kShort);
}

/// A VR of the standard; DCMTK reads any other like UN.
bool is_standard(char a, char b) {
  static constexpr std::array<const char*, 13> kLong = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                                        "SV", "UC", "UN", "UR", "UT", "UV"};
  return has_short_length(a, b) || is_one_of(a, b, kLong);
}

class Walker {
 public:
  Walker(SequentialReader& in, bool big_endian, int max_depth)
      : in_(in), big_(big_endian), max_depth_(max_depth) {}

  core::Status run(bool implicit) {
    frames_.push_back({Kind::kDataSet, kUndefined, implicit});
    for (;;) {
      const Frame& top = frames_.back();
      if (top.end != kUndefined && pos_ >= top.end) {
        if (frames_.size() == 1) return core::ok_status();
        close();
        continue;
      }
      std::uint16_t group = 0;
      std::uint16_t element = 0;
      if (!u16(group, top.implicit) || !u16(element, top.implicit)) return core::ok_status();
      if (group == kItemGroup) {
        if (!delimiter(element)) return core::ok_status();
        if (depth_ > max_depth_) return too_deep();
        continue;
      }
      bool ok = true;
      const bool more = data_element(group, element, ok);
      if (!ok) return core::ok_status();
      if (depth_ > max_depth_) return too_deep();
      if (!more) return core::ok_status();
    }
  }

 private:
  core::Status too_deep() const {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "data set refused: its sequences nest more than " +
                                std::to_string(max_depth_) + " levels deep");
  }

  /// An item, item delimitation or sequence delimitation tag has been read. false: stop.
  bool delimiter(std::uint16_t element) {
    const bool implicit = frames_.back().implicit;
    std::uint32_t length = 0;
    if (!u32(length, implicit)) return false;
    const Kind kind = frames_.back().kind;
    if (element == kItemTag) {
      if (kind == Kind::kFragments) return skip(length);
      if (kind != Kind::kSequence) return false;  // not well-formed: DCMTK judges
      frames_.push_back({Kind::kItem, end_of(length), implicit});
      return true;
    }
    if (element == kItemDelimitation) {
      if (kind != Kind::kItem) return false;
      close();
      return true;
    }
    if (element == kSequenceDelimitation) {
      if (kind == Kind::kItem) close();  // an item without its delimitation
      const Kind outer = frames_.back().kind;
      if (outer != Kind::kSequence && outer != Kind::kFragments) return false;
      close();
      return true;
    }
    return false;
  }

  /// A data element's tag has been read: reads its VR and length, opens a sequence or skips
  /// its value. false: stop (`ok` false: the data ended or cannot be followed).
  bool data_element(std::uint16_t group, std::uint16_t element, bool& ok) {
    const bool implicit = frames_.back().implicit;
    std::uint32_t length = 0;
    bool is_sequence = false;
    bool is_unknown = false;
    if (implicit) {
      if (!u32(length, true)) return ok = false;
      is_sequence = DcmTag(group, element).getEVR() == EVR_SQ;
      is_unknown = true;  // a private sequence looks like any value
    } else {
      std::array<std::uint8_t, 2> vr{};
      if (!read(vr)) return ok = false;
      const char a = static_cast<char>(vr[0]);
      const char b = static_cast<char>(vr[1]);
      if (has_short_length(a, b)) {
        std::uint16_t short_length = 0;
        if (!u16(short_length, false)) return ok = false;
        length = short_length;
      } else {
        std::array<std::uint8_t, 2> reserved{};
        if (!read(reserved) || !u32(length, false)) return ok = false;
      }
      is_sequence = a == 'S' && b == 'Q';
      is_unknown = (a == 'U' && b == 'N') || !is_standard(a, b);
    }
    const bool pixel_data = group == 0x7FE0 && element == 0x0010;
    if (length == kUndefinedLength) {
      if (pixel_data && !is_sequence) {
        frames_.push_back({Kind::kFragments, kUndefined, implicit});
        return true;
      }
      // An SQ, or what DCMTK may read as one: another VR of undefined length is UN to it
      // (CP-246), read as a sequence in Implicit VR Little Endian (or refused).
      open_sequence(kUndefined, implicit || !is_sequence);
      return true;
    }
    if (is_sequence) {
      open_sequence(end_of(length), implicit);
      return true;
    }
    if (is_unknown && !pixel_data && length >= 8) {
      // A value that starts with an item tag may be parsed as a sequence (a private SQ the
      // dictionary knows): walked as one.
      std::array<std::uint8_t, 4> head{};
      const std::uint64_t start = pos_;
      if (!read(head)) return ok = false;
      const bool item = head[0] == 0xFE && head[1] == 0xFF && head[2] == 0x00 && head[3] == 0xE0;
      if (item) {
        open_sequence(start + length, true);
        if (!delimiter(kItemTag)) return ok = false;
        return true;
      }
      if (!skip(length - 4)) return ok = false;
      return true;
    }
    if (!skip(length)) return ok = false;
    return true;
  }

  void open_sequence(std::uint64_t end, bool implicit) {
    frames_.push_back({Kind::kSequence, end, implicit});
    ++depth_;
  }

  void close() {
    if (frames_.back().kind == Kind::kSequence) --depth_;
    frames_.pop_back();
  }

  std::uint64_t end_of(std::uint32_t length) const {
    return length == kUndefinedLength ? kUndefined : pos_ + length;
  }

  bool read(std::span<std::uint8_t> out) {
    if (!in_.read(out)) return false;
    pos_ += out.size();
    return true;
  }
  bool skip(std::uint64_t n) {
    if (!in_.skip(n)) return false;
    pos_ += n;
    return true;
  }
  /// Implicit VR is always Little Endian; Explicit VR Big Endian is the one big-endian syntax.
  bool u16(std::uint16_t& out, bool implicit) {
    std::array<std::uint8_t, 2> b{};
    if (!read(b)) return false;
    out = (big_ && !implicit) ? static_cast<std::uint16_t>(b[0] << 8 | b[1])
                              : static_cast<std::uint16_t>(b[1] << 8 | b[0]);
    return true;
  }
  bool u32(std::uint32_t& out, bool implicit) {
    std::array<std::uint8_t, 4> b{};
    if (!read(b)) return false;
    out = (big_ && !implicit) ? (std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 |
                                 std::uint32_t{b[2]} << 8 | b[3])
                              : (std::uint32_t{b[3]} << 24 | std::uint32_t{b[2]} << 16 |
                                 std::uint32_t{b[1]} << 8 | b[0]);
    return true;
  }

  SequentialReader& in_;
  bool big_;
  int max_depth_;
  std::vector<Frame> frames_;
  int depth_ = 0;
  std::uint64_t pos_ = 0;
};

}  // namespace

DataSetEncoding encoding_of(std::string_view transfer_syntax_uid) {
  if (transfer_syntax_uid == "1.2.840.10008.1.2") return DataSetEncoding::kImplicitLittle;
  if (transfer_syntax_uid == "1.2.840.10008.1.2.2") return DataSetEncoding::kExplicitBig;
  return DataSetEncoding::kExplicitLittle;
}

core::Status check_sequence_nesting(SequentialReader& in, DataSetEncoding encoding, int max_depth) {
  Walker walker(in, encoding == DataSetEncoding::kExplicitBig, max_depth);
  return walker.run(encoding == DataSetEncoding::kImplicitLittle);
}

}  // namespace gw::dicom
