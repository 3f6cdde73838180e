#include "dicom/instance_info.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrma.h>
#include <dcmtk/dcmdata/dcspchrs.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

#include "core/utf8.h"
#include "dicom/binary_vr.h"
#include "dicom/nesting_scan.h"
#include "dicom/part10.h"

namespace gw::dicom {
namespace {

/// Values longer than this stay on disk (DCMTK reads them lazily on access): pixel data is never
/// loaded just to index an instance.
constexpr Uint32 kMaxLoadedValueLength = 4096;

/// Bounds on a deflated data set, from its compressed size C (what the peer sent). PS3.5 A.5
/// allows deflate's full ratio: a 258-byte match costs at least 2 bits, so one deflate stream
/// never inflates beyond 1032 times its size, and a blank image comes close (512x512 16-bit
/// frames of one value: 999:1 at 128 frames, 1021:1 at 512, with zlib's default level). So the
/// bound on what one instance may inflate, counting the data set's re-inflation for each long
/// value read later, is that ceiling plus an allowance: no valid stream exceeds it in one pass.
constexpr std::uint64_t kInflateAllowance = 64ull << 20;
constexpr std::uint64_t kMaxInflateRatio = 1032;
/// What the parse keeps in memory is bounded apart, as memory and not bytes inflated: DCMTK
/// holds every element header and short value it reads (not the long ones it skips), and an
/// empty element or item of 8 to 12 bytes costs it about 200 to 260 bytes of heap. So each read
/// counts kReadCost bytes on top of its length, and what a deflated data set may hold is
/// kHeldAllowance plus kMaxHeldRatio times its compressed size. A realistic data set holds a few
/// MiB; 64 MiB allows some 250,000 elements (a multi-frame header of thousands of frames).
constexpr std::uint64_t kHeldAllowance = 64ull << 20;
constexpr std::uint64_t kMaxHeldRatio = 64;
constexpr std::uint64_t kReadCost = 64;

/// What all the streams of one parse share: the first error, and a deflated data set's bounds.
struct ParseContext {
  std::optional<core::Error> error;
  bool deflated = false;
  std::uint64_t compressed = 0;  ///< bytes of the deflated data set in the source
  std::uint64_t inflated = 0;    ///< by every stream of the parse, values skipped included
  std::uint64_t held = 0;        ///< read into memory (kReadCost per read included)
  /// The lowest stack address the parse may reach (0: unchecked); see stack_floor().
  std::uintptr_t stack_floor = 0;
  std::uint64_t inflate_limit() const { return kInflateAllowance + kMaxInflateRatio * compressed; }
  std::uint64_t held_limit() const { return kHeldAllowance + kMaxHeldRatio * compressed; }

  void fail(std::string why) {
    if (!error) error = core::make_error(core::ErrorCode::kInvalidArgument, std::move(why));
  }
  /// False (and the parse refused) once the data set inflated past its bound.
  bool inflate(std::uint64_t bytes) {
    inflated += bytes;
    if (inflated <= inflate_limit()) return true;
    fail("deflated data set refused: it inflates to more than " + std::to_string(inflate_limit()) +
         " bytes (64 MiB + " + std::to_string(kMaxInflateRatio) + " times its " +
         std::to_string(compressed) + " compressed bytes, deflate's own maximum)");
    return false;
  }
  /// False (and the parse refused) once parsing would hold more than its bound in memory.
  bool hold(std::uint64_t bytes) {
    held += bytes;
    if (held <= held_limit()) return true;
    fail("deflated data set refused: parsing it would take more than " +
         std::to_string(held_limit()) + " bytes of memory (64 MiB + " +
         std::to_string(kMaxHeldRatio) + " times its " + std::to_string(compressed) +
         " compressed bytes)");
    return false;
  }
  /// Whether a value left in the source may be loaded: DCMTK allocates its declared length
  /// before it reads, so a value that would take the parse past its memory bound is refused
  /// before the allocation.
  bool may_load(DcmElement& element) {
    if (!deflated || element.valueLoaded()) return true;
    // (getLength() would load a string value to compute it: the declared length, unloaded.)
    const std::uint64_t length = element.getLengthField();
    if (held + length + kReadCost <= held_limit()) return true;
    const DcmTagKey tag = element.getTag();
    char name[16];
    std::snprintf(name, sizeof(name), "(%04X,%04X)", tag.getGroup(), tag.getElement());
    fail("deflated data set refused: its value " + std::string(name) + " of " +
         std::to_string(length) + " bytes would take the parse past " +
         std::to_string(held_limit()) + " bytes of memory (64 MiB + " +
         std::to_string(kMaxHeldRatio) + " times its " + std::to_string(compressed) +
         " compressed bytes)");
    return false;
  }
};

/// The longest value read as text for the index or a routing rule. The longest text VRs
/// (LT 10240, ST 1024 characters) fit; a longer one is not something to index or route on,
/// and loading it would cost several times its size (DCMTK's copy, the string array, ours).
constexpr Uint32 kMaxTextValueLength = 64 * 1024;

/// Whether `element` is read as text: not binary (OB/OW/UN…: their "string" is hex, three
/// characters a byte), at most kMaxTextValueLength declared, and within the parse's memory.
bool readable_as_text(DcmElement& element, ParseContext& ctx) {
  if (element.getVR() == EVR_UN || is_binary_vr(element.getVR())) return false;
  // The declared length: getLength() would load a string value to compute it.
  if (element.getLengthField() > kMaxTextValueLength) return false;
  return ctx.may_load(element);
}

/// The value of `tag` at the top level, "" when absent, unreadable, binary or too large.
std::string get(DcmDataset& ds, const DcmTagKey& tag, ParseContext& ctx) {
  DcmElement* element = nullptr;
  if (ds.findAndGetElement(tag, element, /*searchIntoSub=*/OFFalse).bad() || element == nullptr)
    return {};
  if (!readable_as_text(*element, ctx)) return {};
  OFString value;
  // All values, backslashes included: a PN stays the raw string as received.
  if (element->getOFStringArray(value).bad()) return {};
  return std::string(value.c_str(), value.length());
}

/// Text values as UTF-8 whatever (0008,0005) declares: PostgreSQL refuses anything else and the
/// API speaks JSON. Values in the declared character set are converted (DCMTK, iconv); what
/// cannot be converted is kept when it already is UTF-8, read as ISO 8859-1 when the data set
/// declares nothing (what such devices mean), and otherwise has its invalid bytes replaced by
/// U+FFFD. Never an error: an unusual character set must not cost the instance.
class TextDecoder {
 public:
  TextDecoder(DcmDataset& ds, ParseContext& ctx)
      : charset_(get(ds, DCM_SpecificCharacterSet, ctx)) {}

  /// `delimiters`: where ISO 2022 code extensions reset ("\\^=" for person names).
  std::string operator()(std::string raw, const char* delimiters = "\\") {
    if (core::is_ascii(raw)) return raw;
    if (!selected_) {
      selected_ = true;
      converts_ = !charset_.empty() &&
                  converter_.selectCharacterSet(OFString(charset_.c_str()), "ISO_IR 192").good();
    }
    if (converts_) {
      OFString out;
      if (converter_.convertString(OFString(raw.data(), raw.size()), out, delimiters).good()) {
        std::string text(out.c_str(), out.length());
        if (core::is_utf8(text)) return text;
      }
    }
    if (core::is_utf8(raw)) return raw;
    if (charset_.empty()) return core::latin1_to_utf8(raw);
    return core::utf8_replacing_invalid(raw);
  }

 private:
  const std::string charset_;
  DcmSpecificCharacterSet converter_;
  bool selected_ = false;
  bool converts_ = false;
};

void read_extra_tags(DcmDataset& ds, std::span<const std::uint32_t> tags,
                     std::map<std::uint32_t, std::string>& out, ParseContext& ctx) {
  for (const std::uint32_t tag : tags) {
    const DcmTagKey key(static_cast<Uint16>(tag >> 16), static_cast<Uint16>(tag & 0xFFFF));
    DcmElement* element = nullptr;
    if (ds.findAndGetElement(key, element, /*searchIntoSub=*/OFFalse).bad() || element == nullptr) {
      continue;
    }
    std::string& text = out[tag];
    OFString value;
    if (!readable_as_text(*element, ctx) || element->getOFStringArray(value).bad()) continue;
    text.assign(value.c_str(), value.length());
    while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  }
}

/// DCMTK reads element headers a few bytes at a time: the producer reads ahead this much.
constexpr std::size_t kReadAhead = 64 * 1024;

/// DCMTK's view of a ByteSource from `start` on, with a read-ahead buffer. A read error stops
/// the stream and is kept for the caller (DCMTK only knows "stream error").
class SourceProducer final : public DcmProducer {
 public:
  SourceProducer(ByteSource& source, std::uint64_t start, ParseContext* ctx)
      : source_(source), size_(source.size()), pos_(std::min(start, size_)), ctx_(ctx) {}

  OFBool good() const override { return status_.good(); }
  OFCondition status() const override { return status_; }
  OFBool eos() override { return !good() || pos_ >= size_; }
  offile_off_t avail() override { return good() ? static_cast<offile_off_t>(size_ - pos_) : 0; }

  offile_off_t read(void* buf, offile_off_t buflen) override {
    if (!good() || buflen <= 0 || pos_ >= size_) return 0;
    auto* out = static_cast<std::uint8_t*>(buf);
    const auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>(static_cast<std::uint64_t>(buflen), size_ - pos_));
    std::size_t done = 0;
    while (done < want) {
      if (pos_ >= buffer_start_ && pos_ < buffer_start_ + buffer_.size()) {
        const auto within = static_cast<std::size_t>(pos_ - buffer_start_);
        const std::size_t take = std::min(want - done, buffer_.size() - within);
        std::copy_n(buffer_.data() + within, take, out + done);
        done += take;
        pos_ += take;
        continue;
      }
      if (want - done >= kReadAhead) {  // large values: straight into DCMTK's buffer
        auto n = source_.read_at(pos_, std::span(out + done, want - done));
        if (!fail_on(n)) return static_cast<offile_off_t>(done);
        done += *n;
        pos_ += *n;
        if (*n == 0) break;
        continue;
      }
      buffer_.resize(kReadAhead);
      auto n = source_.read_at(pos_, buffer_);
      if (!fail_on(n)) {
        buffer_.clear();
        return static_cast<offile_off_t>(done);
      }
      buffer_.resize(*n);
      buffer_start_ = pos_;
      if (*n == 0) break;
    }
    return static_cast<offile_off_t>(done);
  }

  offile_off_t skip(offile_off_t skiplen) override {
    if (!good() || skiplen <= 0) return 0;
    const auto n = std::min<std::uint64_t>(static_cast<std::uint64_t>(skiplen), size_ - pos_);
    pos_ += n;
    return static_cast<offile_off_t>(n);
  }

  void putback(offile_off_t num) override {
    if (num < 0 || static_cast<std::uint64_t>(num) > pos_) {
      status_ = EC_PutbackFailed;
      return;
    }
    pos_ -= static_cast<std::uint64_t>(num);
  }

  /// The offset in the source of the next byte DCMTK will get.
  std::uint64_t position() const { return pos_; }
  std::uint64_t size() const { return size_; }

 private:
  /// False (and the stream stopped) when `n` is an error.
  bool fail_on(const core::Result<std::size_t>& n) {
    if (n.ok()) return true;
    if (!ctx_->error) ctx_->error = n.error();
    status_ = EC_InvalidStream;
    return false;
  }

  ByteSource& source_;
  const std::uint64_t size_;
  std::uint64_t pos_;
  ParseContext* ctx_;
  OFCondition status_ = EC_Normal;
  std::vector<std::uint8_t> buffer_;
  std::uint64_t buffer_start_ = 0;
};

/// Values are skipped (inflated and dropped) this much at a time, checking the bound in between.
constexpr offile_off_t kSkipStep = 1 << 20;

/// Where a deflated data set starts (compressed, in the source) and what a stream must skip
/// of its inflated bytes to reach a value.
struct DeflatedAt {
  std::uint64_t compressed_start = 0;
  std::uint64_t inflated_offset = 0;
};

/// A DcmInputStream over a ByteSource. Values longer than the read limit are skipped and
/// left to a factory (newFactory), as DCMTK does for files: never read unless asked for. In a
/// deflated data set too, where DCMTK's own file stream would load every value into memory:
/// there the factory inflates again from the start of the data set. What a deflated data set
/// inflates and what its parse reads into memory count against the ParseContext's bounds.
class SourceStream final : public DcmInputStream {
 public:
  SourceStream(ByteSource& source, std::uint64_t start, ParseContext* ctx)
      : DcmInputStream(&producer_),
        producer_(source, start, ctx),
        source_(source),
        start_(start),
        ctx_(ctx) {}

  /// A stream at `at.inflated_offset` of the deflated data set that starts at
  /// `at.compressed_start`.
  SourceStream(ByteSource& source, const DeflatedAt& at, ParseContext* ctx)
      : SourceStream(source, at.compressed_start, ctx) {
    if (installCompressionFilter(ESC_zlib).good())
      skip(static_cast<offile_off_t>(at.inflated_offset));
  }

  OFCondition installCompressionFilter(E_StreamCompression filterType) override {
    compressed_start_ = producer_.position();
    inflated_base_ = static_cast<std::uint64_t>(tell());
    ctx_->deflated = true;
    ctx_->compressed = producer_.size() - producer_.position();
    return DcmInputStream::installCompressionFilter(filterType);
  }

  OFBool good() const override { return !over_limit_ && DcmInputStream::good(); }
  OFCondition status() const override {
    return over_limit_ ? EC_InvalidStream : DcmInputStream::status();
  }
  OFBool eos() override { return over_limit_ || DcmInputStream::eos(); }
  offile_off_t avail() override { return over_limit_ ? 0 : DcmInputStream::avail(); }

  offile_off_t read(void* buf, offile_off_t buflen) override {
    if (over_limit_) return 0;
    // DCMTK reads every element and item header through here, at the depth of the sequence
    // it is in: a parse that has used half the thread's stack stops here, whatever encoding
    // trick brought it there (the nesting walk before the parse catches the plain ones).
    if (ctx_->stack_floor != 0 &&
        reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) < ctx_->stack_floor) {
      ctx_->fail(
          "data set refused: its sequences nest too deep to parse (half the thread's stack "
          "used)");
      over_limit_ = true;
      return 0;
    }
    const offile_off_t n = DcmInputStream::read(buf, buflen);
    if (compressed_start_ &&
        !ctx_->hold(static_cast<std::uint64_t>(std::max<offile_off_t>(n, 0)) + kReadCost)) {
      over_limit_ = true;
    }
    check_inflated();
    return n;
  }

  /// Skips in steps, so that a deflated value declared 4 GiB long stops at the bound.
  offile_off_t skip(offile_off_t skiplen) override {
    offile_off_t done = 0;
    while (done < skiplen && !over_limit_) {
      const offile_off_t step = std::min<offile_off_t>(skiplen - done, kSkipStep);
      const offile_off_t n = DcmInputStream::skip(step);
      done += n;
      check_inflated();
      if (n < step) break;
    }
    return done;
  }

  DcmInputStreamFactory* newFactory() const override;

 private:
  /// Counts what this stream inflated since the last check; stops it past the bound.
  void check_inflated() {
    if (!compressed_start_ || over_limit_) return;
    const auto inflated = static_cast<std::uint64_t>(tell()) - inflated_base_;
    // (A putback moves tell() back: bytes read again count again.)
    const std::uint64_t added = inflated > counted_ ? inflated - counted_ : 0;
    counted_ = inflated;
    if (!ctx_->inflate(added)) over_limit_ = true;
  }

  SourceProducer producer_;
  ByteSource& source_;
  std::uint64_t start_;
  ParseContext* ctx_;
  /// Set once DCMTK installs the inflate filter; tell() then counts inflated bytes from
  /// inflated_base_.
  std::optional<std::uint64_t> compressed_start_;
  std::uint64_t inflated_base_ = 0;
  std::uint64_t counted_ = 0;  ///< inflated bytes already added to the context
  bool over_limit_ = false;
};

/// Creates streams at a value's position, plain or deflated.
class SourceStreamFactory final : public DcmInputStreamFactory {
 public:
  SourceStreamFactory(ByteSource& source, std::uint64_t offset, ParseContext* ctx)
      : source_(source), offset_(offset), ctx_(ctx) {}
  SourceStreamFactory(ByteSource& source, const DeflatedAt& at, ParseContext* ctx)
      : source_(source), deflated_(at), ctx_(ctx) {}
  DcmInputStream* create() const override {
    if (deflated_) return new SourceStream(source_, *deflated_, ctx_);
    return new SourceStream(source_, offset_, ctx_);
  }
  DcmInputStreamFactory* clone() const override { return new SourceStreamFactory(*this); }
  DcmInputStreamFactoryType ident() const override { return DFT_DcmInputFileStreamFactory; }

 private:
  ByteSource& source_;
  std::uint64_t offset_ = 0;
  std::optional<DeflatedAt> deflated_;
  ParseContext* ctx_;
};

DcmInputStreamFactory* SourceStream::newFactory() const {
  if (currentProducer() == &producer_) {
    return new SourceStreamFactory(source_, start_ + static_cast<std::uint64_t>(tell()), ctx_);
  }
  if (!compressed_start_) return nullptr;
  // Inflated positions are not file offsets: a value is reached by inflating up to it again.
  DeflatedAt at;
  at.compressed_start = *compressed_start_;
  at.inflated_offset = static_cast<std::uint64_t>(tell()) - inflated_base_;
  return new SourceStreamFactory(source_, at, ctx_);
}

core::Result<InstanceInfo> info_from(DcmFileFormat& file, std::span<const std::uint32_t> extra_tags,
                                     ParseContext& ctx);

/// Half way down from this frame to the end of this thread's stack: how deep DCMTK's
/// recursive parse below may go (its destructors recurse as deep, later, with the same room).
/// 0 when the stack's bounds are unknown.
std::uintptr_t stack_floor() {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return 0;
  void* low = nullptr;
  std::size_t size = 0;
  const bool known = pthread_attr_getstack(&attr, &low, &size) == 0;
  pthread_attr_destroy(&attr);
  const auto bottom = reinterpret_cast<std::uintptr_t>(low);
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (!known || here <= bottom) return 0;
  return bottom + (here - bottom) / 2;
}

/// A data set in a DcmInputStream, as check_sequence_nesting reads it.
class StreamReader final : public SequentialReader {
 public:
  explicit StreamReader(DcmInputStream& stream) : stream_(stream) {}

  bool read(std::span<std::uint8_t> out) override {
    for (std::size_t got = 0; got < out.size();) {
      const offile_off_t n =
          stream_.read(out.data() + got, static_cast<offile_off_t>(out.size() - got));
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool skip(std::uint64_t n) override {
    while (n > 0) {
      const auto step = static_cast<offile_off_t>(std::min<std::uint64_t>(n, 1u << 30));
      const offile_off_t done = stream_.skip(step);
      if (done <= 0) return false;
      n -= static_cast<std::uint64_t>(done);
    }
    return true;
  }

 private:
  DcmInputStream& stream_;
};

/// Refuses a data set whose sequences nest deeper than DCMTK's recursive parse can take
/// (dicom/nesting_scan.h), before DCMTK parses it. One more pass over the element headers
/// (values are skipped; a deflated data set is inflated once more, within its own bounds).
core::Status check_nesting(ByteSource& source) {
  auto header = read_part10_header(source);
  if (!header.ok()) return core::ok_status();  // not a Part 10 file: DCMTK says what is wrong
  ParseContext ctx;
  SourceStream stream(source, header->data_set_offset, &ctx);
  const std::string& ts = header->meta.transfer_syntax_uid;
  if (ts == UID_DeflatedExplicitVRLittleEndianTransferSyntax &&
      stream.installCompressionFilter(ESC_zlib).bad()) {
    return core::ok_status();
  }
  StreamReader reader(stream);
  GW_RETURN_IF_ERROR(check_sequence_nesting(reader, encoding_of(ts)));
  // A deflated data set past its bounds during the walk: the parse would refuse it too.
  if (ctx.error) return std::move(*ctx.error);
  return core::ok_status();
}

}  // namespace

core::Result<InstanceInfo> read_instance_info(const std::filesystem::path& part10_file,
                                              std::span<const std::uint32_t> extra_tags) {
  auto source = open_file_source(part10_file);
  if (!source.ok()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "DICOM file not readable: " + source.error().message);
  }
  return read_instance_info(**source, extra_tags);
}

core::Result<InstanceInfo> read_instance_info(ByteSource& source,
                                              std::span<const std::uint32_t> extra_tags) {
  GW_RETURN_IF_ERROR(check_nesting(source));
  ParseContext ctx;
  ctx.stack_floor = stack_floor();
  DcmFileFormat file;
  OFCondition loaded = EC_Normal;
  {
    SourceStream stream(source, 0, &ctx);
    file.transferInit();
    loaded = file.read(stream, EXS_Unknown, EGL_noChange, kMaxLoadedValueLength);
    file.transferEnd();
  }
  if (ctx.error) return std::move(*ctx.error);
  if (loaded == EC_MemoryExhausted) {
    return core::make_error(core::ErrorCode::kResourceExhausted,
                            "not enough memory to read the data set");
  }
  if (loaded.bad()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            std::string("DICOM file not readable: ") + loaded.text());
  }
  auto info = info_from(file, extra_tags, ctx);
  // Values over the load limit are read now, through the factories: their errors too.
  if (ctx.error) return std::move(*ctx.error);
  return info;
}

namespace {

core::Result<InstanceInfo> info_from(DcmFileFormat& file, std::span<const std::uint32_t> extra_tags,
                                     ParseContext& ctx) {
  DcmDataset* ds = file.getDataset();
  if (ds == nullptr) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "DICOM file has no data set");
  }

  InstanceInfo info;
  info.sop_class_uid = get(*ds, DCM_SOPClassUID, ctx);
  info.sop_instance_uid = get(*ds, DCM_SOPInstanceUID, ctx);
  if (info.sop_class_uid.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "DICOM file has no SOP Class UID (0008,0016)");
  }
  if (info.sop_instance_uid.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "DICOM file has no SOP Instance UID (0008,0018)");
  }
  info.study_instance_uid = get(*ds, DCM_StudyInstanceUID, ctx);
  info.series_instance_uid = get(*ds, DCM_SeriesInstanceUID, ctx);
  info.patient_id = get(*ds, DCM_PatientID, ctx);
  info.patient_name = get(*ds, DCM_PatientName, ctx);
  info.patient_birth_date = get(*ds, DCM_PatientBirthDate, ctx);
  info.patient_sex = get(*ds, DCM_PatientSex, ctx);
  info.study_date = get(*ds, DCM_StudyDate, ctx);
  info.study_time = get(*ds, DCM_StudyTime, ctx);
  info.study_description = get(*ds, DCM_StudyDescription, ctx);
  info.accession_number = get(*ds, DCM_AccessionNumber, ctx);
  info.study_id = get(*ds, DCM_StudyID, ctx);
  info.referring_physician = get(*ds, DCM_ReferringPhysicianName, ctx);
  info.modality = get(*ds, DCM_Modality, ctx);
  info.series_description = get(*ds, DCM_SeriesDescription, ctx);
  info.series_number = get(*ds, DCM_SeriesNumber, ctx);
  info.instance_number = get(*ds, DCM_InstanceNumber, ctx);
  info.body_part_examined = get(*ds, DCM_BodyPartExamined, ctx);
  info.station_name = get(*ds, DCM_StationName, ctx);
  info.institution_name = get(*ds, DCM_InstitutionName, ctx);
  if (!extra_tags.empty()) read_extra_tags(*ds, extra_tags, info.extra_tags, ctx);

  // (The SOP Class/Instance UIDs are checked against the command's, which must be valid UIDs.)
  TextDecoder utf8(*ds, ctx);
  constexpr const char* kPersonName = "\\^=";
  info.patient_name = utf8(std::move(info.patient_name), kPersonName);
  info.referring_physician = utf8(std::move(info.referring_physician), kPersonName);
  for (std::string* text :
       {&info.study_instance_uid, &info.series_instance_uid, &info.patient_id,
        &info.patient_birth_date, &info.patient_sex, &info.study_date, &info.study_time,
        &info.study_description, &info.accession_number, &info.study_id, &info.modality,
        &info.series_description, &info.series_number, &info.instance_number,
        &info.body_part_examined, &info.station_name, &info.institution_name}) {
    *text = utf8(std::move(*text));
  }
  for (auto& [tag, text] : info.extra_tags) text = utf8(std::move(text));
  return info;
}

}  // namespace

}  // namespace gw::dicom
