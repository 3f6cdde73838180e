#include "dicom/instance_info.h"

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrma.h>
#include <dcmtk/dcmdata/dcspchrs.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "core/utf8.h"
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

/// Text values as UTF-8 whatever (0008,0005) declares: PostgreSQL refuses anything else and the
/// API speaks JSON. Values in the declared character set are converted (DCMTK, iconv); what
/// cannot be converted is kept when it already is UTF-8, read as ISO 8859-1 when the data set
/// declares nothing (what such devices mean), and otherwise has its invalid bytes replaced by
/// U+FFFD. Never an error: an unusual character set must not cost the instance.
class TextDecoder {
 public:
  explicit TextDecoder(DcmDataset& ds) : charset_(get_raw(ds, DCM_SpecificCharacterSet)) {}

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
  static std::string get_raw(DcmDataset& ds, const DcmTagKey& tag) {
    OFString value;
    if (ds.findAndGetOFStringArray(tag, value).bad()) return {};
    return std::string(value.c_str(), value.length());
  }

  const std::string charset_;
  DcmSpecificCharacterSet converter_;
  bool selected_ = false;
  bool converts_ = false;
};

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

/// DCMTK reads element headers a few bytes at a time: the producer reads ahead this much.
constexpr std::size_t kReadAhead = 64 * 1024;

/// DCMTK's view of a ByteSource from `start` on, with a read-ahead buffer. A read error stops
/// the stream and is kept for the caller (DCMTK only knows "stream error").
class SourceProducer final : public DcmProducer {
 public:
  SourceProducer(ByteSource& source, std::uint64_t start, std::optional<core::Error>* error)
      : source_(source), size_(source.size()), pos_(std::min(start, size_)), error_(error) {}

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
    if (!error_->has_value()) *error_ = n.error();
    status_ = EC_InvalidStream;
    return false;
  }

  ByteSource& source_;
  const std::uint64_t size_;
  std::uint64_t pos_;
  std::optional<core::Error>* error_;
  OFCondition status_ = EC_Normal;
  std::vector<std::uint8_t> buffer_;
  std::uint64_t buffer_start_ = 0;
};

/// A deflated data set may inflate to at most this many bytes plus kMaxInflateRatio times its
/// compressed size. Without a cap a small "deflate bomb" from an allowed peer would cost
/// minutes of CPU, and DCMTK keeps every element it parses in memory.
constexpr std::uint64_t kInflateAllowance = 16ull << 20;
constexpr std::uint64_t kMaxInflateRatio = 32;
/// Values are skipped (inflated and dropped) this much at a time, checking the cap in between.
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
/// there the factory inflates again from the start of the data set.
class SourceStream final : public DcmInputStream {
 public:
  SourceStream(ByteSource& source, std::uint64_t start, std::optional<core::Error>* error)
      : DcmInputStream(&producer_),
        producer_(source, start, error),
        source_(source),
        start_(start),
        error_(error) {}

  /// A stream at `at.inflated_offset` of the deflated data set that starts at
  /// `at.compressed_start`.
  SourceStream(ByteSource& source, const DeflatedAt& at, std::optional<core::Error>* error)
      : SourceStream(source, at.compressed_start, error) {
    if (installCompressionFilter(ESC_zlib).good())
      skip(static_cast<offile_off_t>(at.inflated_offset));
  }

  OFCondition installCompressionFilter(E_StreamCompression filterType) override {
    compressed_start_ = producer_.position();
    inflated_base_ = static_cast<std::uint64_t>(tell());
    const std::uint64_t compressed = producer_.size() - producer_.position();
    inflate_limit_ = kInflateAllowance + kMaxInflateRatio * compressed;
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
    const offile_off_t n = DcmInputStream::read(buf, buflen);
    check_inflated();
    return n;
  }

  /// Skips in steps, so that a deflated value declared 4 GiB long stops at the cap.
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
  /// Stops the stream once a deflated data set has inflated beyond its cap.
  void check_inflated() {
    if (!compressed_start_ || over_limit_) return;
    const auto inflated = static_cast<std::uint64_t>(tell()) - inflated_base_;
    if (inflated <= inflate_limit_) return;
    over_limit_ = true;
    if (!error_->has_value()) {
      *error_ = core::make_error(core::ErrorCode::kInvalidArgument,
                                 "deflated data set inflates to more than " +
                                     std::to_string(inflate_limit_) + " bytes (16 MiB + " +
                                     std::to_string(kMaxInflateRatio) +
                                     " times its compressed size): refused");
    }
  }

  SourceProducer producer_;
  ByteSource& source_;
  std::uint64_t start_;
  std::optional<core::Error>* error_;
  /// Set once DCMTK installs the inflate filter; tell() then counts inflated bytes from
  /// inflated_base_.
  std::optional<std::uint64_t> compressed_start_;
  std::uint64_t inflated_base_ = 0;
  std::uint64_t inflate_limit_ = 0;
  bool over_limit_ = false;
};

/// Creates streams at a value's position, plain or deflated.
class SourceStreamFactory final : public DcmInputStreamFactory {
 public:
  SourceStreamFactory(ByteSource& source, std::uint64_t offset, std::optional<core::Error>* error)
      : source_(source), offset_(offset), error_(error) {}
  SourceStreamFactory(ByteSource& source, const DeflatedAt& at, std::optional<core::Error>* error)
      : source_(source), deflated_(at), error_(error) {}
  DcmInputStream* create() const override {
    if (deflated_) return new SourceStream(source_, *deflated_, error_);
    return new SourceStream(source_, offset_, error_);
  }
  DcmInputStreamFactory* clone() const override { return new SourceStreamFactory(*this); }
  DcmInputStreamFactoryType ident() const override { return DFT_DcmInputFileStreamFactory; }

 private:
  ByteSource& source_;
  std::uint64_t offset_ = 0;
  std::optional<DeflatedAt> deflated_;
  std::optional<core::Error>* error_;
};

DcmInputStreamFactory* SourceStream::newFactory() const {
  if (currentProducer() == &producer_) {
    return new SourceStreamFactory(source_, start_ + static_cast<std::uint64_t>(tell()), error_);
  }
  if (!compressed_start_) return nullptr;
  // Inflated positions are not file offsets: a value is reached by inflating up to it again.
  DeflatedAt at;
  at.compressed_start = *compressed_start_;
  at.inflated_offset = static_cast<std::uint64_t>(tell()) - inflated_base_;
  return new SourceStreamFactory(source_, at, error_);
}

core::Result<InstanceInfo> info_from(DcmFileFormat& file,
                                     std::span<const std::uint32_t> extra_tags);

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
  std::optional<core::Error> source_error;
  DcmFileFormat file;
  OFCondition loaded = EC_Normal;
  {
    SourceStream stream(source, 0, &source_error);
    file.transferInit();
    loaded = file.read(stream, EXS_Unknown, EGL_noChange, kMaxLoadedValueLength);
    file.transferEnd();
  }
  if (source_error) return std::move(*source_error);
  if (loaded == EC_MemoryExhausted) {
    return core::make_error(core::ErrorCode::kResourceExhausted,
                            "not enough memory to read the data set");
  }
  if (loaded.bad()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            std::string("DICOM file not readable: ") + loaded.text());
  }
  auto info = info_from(file, extra_tags);
  // Values over the load limit are read now, through the factories: their errors too.
  if (source_error) return std::move(*source_error);
  return info;
}

namespace {

core::Result<InstanceInfo> info_from(DcmFileFormat& file,
                                     std::span<const std::uint32_t> extra_tags) {
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

  // (The SOP Class/Instance UIDs are checked against the command's, which must be valid UIDs.)
  TextDecoder utf8(*ds);
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
