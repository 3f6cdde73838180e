/// gen_dicom: writes synthetic DICOM Part 10 files for tests and benchmarks.
///
/// No real patient data: patients are TEST^PATIENT^0007 / GWTEST0007, UIDs live under a
/// 2.25.<random> root derived from --seed (same seed, same files). Run `gen_dicom --help`.
///
/// Pixel data is a gradient with a few bits of noise, so compressed transfer syntaxes get
/// plausible (not extreme) ratios. Compression uses DCMTK's own encoders; "JPEG 2000" is an
/// encapsulated data set whose fragments are opaque bytes (the gateway never decodes pixels).

#include <dcmtk/config/osconfig.h>  // must come first
// clang-format off
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcvrlo.h>
#include <dcmtk/dcmimage/diregist.h>  // colour support for DicomImage (lossy colour JPEG)
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmdata/dcrlerp.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#include <dcmtk/dcmjpeg/djrploss.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/dcmjpls/djrparam.h>
#include <dcmtk/oflog/oflog.h>
// clang-format on

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace gw::test::gen {
namespace {

enum class Pixels { kNone, kMono8, kMono16, kRgb8 };
enum class Payload { kImage, kStructuredReport, kPdf };

/// One kind of object we can make. rows/cols/frames are the natural size (no --size-kib).
struct Kind {
  const char* name;
  const char* sop_class;
  const char* modality;
  Payload payload;
  Pixels pixels;
  int bits_stored;
  int rows;
  int cols;
  int frames;
  bool multi_frame;  ///< the IOD has NumberOfFrames
  bool frame_of_reference;
};

constexpr Kind kKinds[] = {
    {"ct", "1.2.840.10008.5.1.4.1.1.2", "CT", Payload::kImage, Pixels::kMono16, 12, 512, 512, 1,
     false, true},
    {"mr", "1.2.840.10008.5.1.4.1.1.4", "MR", Payload::kImage, Pixels::kMono16, 12, 256, 256, 1,
     false, true},
    {"cr", "1.2.840.10008.5.1.4.1.1.1", "CR", Payload::kImage, Pixels::kMono16, 12, 768, 640, 1,
     false, false},
    {"dx", "1.2.840.10008.5.1.4.1.1.1.1", "DX", Payload::kImage, Pixels::kMono16, 12, 768, 768, 1,
     false, false},
    {"mg", "1.2.840.10008.5.1.4.1.1.1.2", "MG", Payload::kImage, Pixels::kMono16, 12, 1024, 768, 1,
     false, false},
    {"us", "1.2.840.10008.5.1.4.1.1.6.1", "US", Payload::kImage, Pixels::kRgb8, 8, 480, 640, 1,
     false, false},
    {"usmf", "1.2.840.10008.5.1.4.1.1.3.1", "US", Payload::kImage, Pixels::kRgb8, 8, 240, 320, 8,
     true, false},
    {"sc", "1.2.840.10008.5.1.4.1.1.7", "OT", Payload::kImage, Pixels::kMono8, 8, 512, 512, 1,
     false, false},
    {"es", "1.2.840.10008.5.1.4.1.1.77.1.1", "ES", Payload::kImage, Pixels::kRgb8, 8, 480, 640, 1,
     false, false},
    {"xa", "1.2.840.10008.5.1.4.1.1.12.1", "XA", Payload::kImage, Pixels::kMono8, 8, 512, 512, 4,
     true, false},
    {"nm", "1.2.840.10008.5.1.4.1.1.20", "NM", Payload::kImage, Pixels::kMono16, 16, 128, 128, 16,
     true, true},
    {"pt", "1.2.840.10008.5.1.4.1.1.128", "PT", Payload::kImage, Pixels::kMono16, 16, 128, 128, 1,
     false, true},
    {"rtdose", "1.2.840.10008.5.1.4.1.1.481.2", "RTDOSE", Payload::kImage, Pixels::kMono16, 16, 64,
     64, 20, true, true},
    {"sr", "1.2.840.10008.5.1.4.1.1.88.11", "SR", Payload::kStructuredReport, Pixels::kNone, 0, 0,
     0, 0, false, false},
    {"pdf", "1.2.840.10008.5.1.4.1.1.104.1", "DOC", Payload::kPdf, Pixels::kNone, 0, 0, 0, 0, false,
     false},
};

enum class Codec { kNative, kJpegBaseline, kJpegExtended, kJpegLossless, kJpegLs, kRle, kOpaque };

struct Syntax {
  const char* name;
  E_TransferSyntax xfer;
  Codec codec;
};

constexpr Syntax kSyntaxes[] = {
    {"ile", EXS_LittleEndianImplicit, Codec::kNative},
    {"ele", EXS_LittleEndianExplicit, Codec::kNative},
    {"ebe", EXS_BigEndianExplicit, Codec::kNative},
    {"deflate", EXS_DeflatedLittleEndianExplicit, Codec::kNative},
    {"jpeg-baseline", EXS_JPEGProcess1, Codec::kJpegBaseline},
    {"jpeg-extended", EXS_JPEGProcess2_4, Codec::kJpegExtended},
    {"jpeg-lossless", EXS_JPEGProcess14SV1, Codec::kJpegLossless},
    {"jpegls", EXS_JPEGLSLossless, Codec::kJpegLs},
    {"rle", EXS_RLELossless, Codec::kRle},
    {"j2k", EXS_JPEG2000LosslessOnly, Codec::kOpaque},
};
constexpr std::size_t kNativeSyntaxCount = 4;  // the first four

const Syntax& syntax_named(std::string_view name) {
  for (const auto& s : kSyntaxes) {
    if (name == s.name) return s;
  }
  std::abort();
}

/// The transfer syntax actually written for `kind`: objects without pixel data get a native
/// one (`native_pick` chooses which); JPEG lossy needs ≤ 12 bits (baseline: 8).
const Syntax& effective_syntax(const Kind& kind, const Syntax& wanted, std::size_t native_pick) {
  if (kind.pixels == Pixels::kNone && wanted.codec != Codec::kNative) {
    return kSyntaxes[native_pick % kNativeSyntaxCount];
  }
  if (kind.pixels == Pixels::kMono16 &&
      (wanted.codec == Codec::kJpegBaseline || wanted.codec == Codec::kJpegExtended)) {
    return syntax_named(kind.bits_stored <= 12 ? "jpeg-extended" : "jpeg-lossless");
  }
  return wanted;
}

struct Options {
  std::filesystem::path out;
  long count = -1;
  std::optional<long> size_kib;
  long studies = 1;
  long series_per_study = 1;
  bool mix = false;
  const Kind* kind = nullptr;      // null: ct, or cycled with --mix
  const Syntax* syntax = nullptr;  // null: ele, or cycled with --mix
  std::optional<std::uint64_t> seed;
  bool verbose = false;
};

/// Deterministic 64-bit mixer (splitmix64): same input, same output, on every platform.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Everything that identifies one file.
struct Plan {
  long index = 0;
  long study = 0;
  long series = 0;
  std::size_t kind_index = 0;
  const Kind* kind = nullptr;
  const Syntax* syntax = nullptr;
  std::string uid_root;
  std::uint64_t seed = 0;
  bool explicit_size = false;
  std::size_t budget = 0;  ///< bytes of pixel data (or document/text) to aim for
};

struct Geometry {
  int rows;
  int cols;
  int frames;
};

int samples_per_pixel(const Kind& k) { return k.pixels == Pixels::kRgb8 ? 3 : 1; }
int bits_allocated(const Kind& k) { return k.pixels == Pixels::kMono16 ? 16 : 8; }
std::size_t bytes_per_pixel(const Kind& k) {
  return static_cast<std::size_t>(samples_per_pixel(k) * bits_allocated(k) / 8);
}

/// Rows × columns × frames holding about `budget` bytes: multi-frame objects keep their matrix
/// and add frames; single-frame ones scale the matrix (aspect ratio kept, capped at 30000).
Geometry geometry_for(const Kind& k, std::size_t budget) {
  const double pixels = static_cast<double>(budget) / static_cast<double>(bytes_per_pixel(k));
  const double natural = static_cast<double>(k.rows) * k.cols;
  if (k.multi_frame && pixels >= natural) {
    const int frames = std::max(1, static_cast<int>(std::lround(pixels / natural)));
    return {k.rows, k.cols, frames};
  }
  const double scale = std::sqrt(pixels / natural);
  auto side = [&](int n) {
    const long v = std::lround(n * scale);
    return static_cast<int>(std::clamp<long>(v + (v & 1), 8, 30000));  // even, for chroma
  };
  return {side(k.rows), side(k.cols), 1};
}

Geometry natural_geometry(const Kind& k) { return {k.rows, k.cols, k.frames}; }

// ---- attributes -----------------------------------------------------------------------------

void put(DcmItem& item, const DcmTagKey& tag, const std::string& value) {
  const OFCondition c = item.putAndInsertString(tag, value.c_str());
  if (c.bad()) {
    std::cerr << "gen_dicom: cannot set " << DcmTag(tag).getTagName() << ": " << c.text() << "\n";
    std::exit(1);
  }
}

void put_u16(DcmItem& item, const DcmTagKey& tag, int value) {
  item.putAndInsertUint16(tag, static_cast<Uint16>(value));
}

std::string num(long v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*ld", width, v);
  return buf;
}

DcmItem* new_item(DcmItem& parent, const DcmTagKey& sequence) {
  DcmItem* item = nullptr;
  if (parent.findOrCreateSequenceItem(sequence, item, -2).bad() || item == nullptr) {
    std::cerr << "gen_dicom: cannot create sequence item\n";
    std::exit(1);
  }
  return item;
}

void put_code(DcmItem& parent, const DcmTagKey& sequence, const char* value, const char* scheme,
              const char* meaning) {
  DcmItem* code = new_item(parent, sequence);
  put(*code, DCM_CodeValue, value);
  put(*code, DCM_CodingSchemeDesignator, scheme);
  put(*code, DCM_CodeMeaning, meaning);
}

void put_patient_study_series(DcmItem& ds, const Plan& p) {
  const Kind& k = *p.kind;
  put(ds, DCM_SOPClassUID, k.sop_class);
  put(ds, DCM_SOPInstanceUID, p.uid_root + ".3." + std::to_string(p.index));
  // Patient: one per study, obviously synthetic.
  put(ds, DCM_PatientName, "TEST^PATIENT^" + num(p.study, 4));
  put(ds, DCM_PatientID, "GWTEST" + num(p.study, 4));
  put(ds, DCM_PatientBirthDate, std::to_string(1950 + p.study % 50) + "0101");
  put(ds, DCM_PatientSex, p.study % 3 == 0 ? "O" : (p.study % 3 == 1 ? "F" : "M"));
  // Study.
  put(ds, DCM_StudyInstanceUID, p.uid_root + ".1." + std::to_string(p.study));
  const std::string date = "2024" + num(1 + p.study % 12, 2) + num(1 + p.study % 28, 2);
  put(ds, DCM_StudyDate, date);
  put(ds, DCM_StudyTime, "120000");
  put(ds, DCM_AccessionNumber, "GWACC" + num(p.study, 6));
  put(ds, DCM_ReferringPhysicianName, "");
  put(ds, DCM_StudyID, std::to_string(p.study + 1));
  put(ds, DCM_StudyDescription, "GW SYNTHETIC STUDY");
  // Series: with --mix each kind gets its own series, so a series has one modality.
  put(ds, DCM_SeriesInstanceUID,
      p.uid_root + ".2." + std::to_string(p.study) + "." + std::to_string(p.series) + "." +
          std::to_string(p.kind_index));
  put(ds, DCM_SeriesNumber, std::to_string(p.series + 1 + 100 * static_cast<long>(p.kind_index)));
  put(ds, DCM_SeriesDescription, std::string("GW SYNTHETIC ") + k.modality + " SERIES");
  put(ds, DCM_Modality, k.modality);
  put(ds, DCM_Manufacturer, "dicom-gw gen_dicom");
  put(ds, DCM_InstanceNumber, std::to_string(p.index + 1));
  put(ds, DCM_ContentDate, date);
  put(ds, DCM_ContentTime, "120000." + num(p.index % 1000000, 6));
  if (k.frame_of_reference) {
    put(ds, DCM_FrameOfReferenceUID, p.uid_root + ".4." + std::to_string(p.study));
    put(ds, DCM_PositionReferenceIndicator, "");
  }
  // A private block, as real modalities write: parsers must carry it through untouched.
  put(ds, DcmTagKey(0x0009, 0x0010), "DICOM-GW TEST");
  auto* private_value = new DcmLongString(DcmTag(0x0009, 0x1001, EVR_LO));
  private_value->putString(("synthetic " + std::to_string(p.index)).c_str());
  ds.insert(private_value, true);
}

void put_image_modules(DcmItem& ds, const Plan& p, const Geometry& g) {
  const Kind& k = *p.kind;
  const bool color = k.pixels == Pixels::kRgb8;
  put(ds, DCM_ImageType, k.frame_of_reference ? "ORIGINAL\\PRIMARY\\AXIAL" : "ORIGINAL\\PRIMARY");
  put(ds, DCM_AcquisitionNumber, "1");
  put(ds, DCM_PatientOrientation, "");
  if (std::string_view(k.modality) == "OT") put(ds, DCM_ConversionType, "WSD");
  if (k.frame_of_reference) {
    put(ds, DCM_ImagePositionPatient, "0\\0\\" + std::to_string(p.index));
    put(ds, DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    put(ds, DCM_PixelSpacing, "0.5\\0.5");
    put(ds, DCM_SliceThickness, "1");
  }
  const std::string_view modality = k.modality;
  if (modality == "CT") {
    put(ds, DCM_KVP, "120");
    put(ds, DCM_RescaleIntercept, "-1024");
    put(ds, DCM_RescaleSlope, "1");
    put(ds, DCM_WindowCenter, "40");
    put(ds, DCM_WindowWidth, "400");
  } else if (modality == "MR") {
    put(ds, DCM_ScanningSequence, "SE");
    put(ds, DCM_SequenceVariant, "NONE");
    put(ds, DCM_ScanOptions, "");
    put(ds, DCM_MRAcquisitionType, "2D");
    put(ds, DCM_EchoTime, "20");
    put(ds, DCM_RepetitionTime, "500");
    put(ds, DCM_MagneticFieldStrength, "1.5");
  } else if (modality == "PT") {
    put(ds, DCM_Units, "BQML");
    put(ds, DCM_RescaleIntercept, "0");
    put(ds, DCM_RescaleSlope, "0.25");
  } else if (modality == "RTDOSE") {
    put(ds, DCM_DoseUnits, "GY");
    put(ds, DCM_DoseType, "PHYSICAL");
    put(ds, DCM_DoseSummationType, "PLAN");
    put(ds, DCM_DoseGridScaling, "0.0001");
  }
  if (k.multi_frame) {
    put(ds, DCM_NumberOfFrames, std::to_string(g.frames));
    if (modality == "NM") {
      ds.putAndInsertTagKey(DCM_FrameIncrementPointer, DCM_SliceVector);
      std::vector<Uint16> slices(static_cast<std::size_t>(g.frames));
      for (std::size_t i = 0; i < slices.size(); ++i) slices[i] = static_cast<Uint16>(i + 1);
      ds.putAndInsertUint16Array(DCM_SliceVector, slices.data(), slices.size());
      put_u16(ds, DCM_NumberOfSlices, std::min(g.frames, 65535));
    } else if (modality == "RTDOSE") {
      ds.putAndInsertTagKey(DCM_FrameIncrementPointer, DCM_GridFrameOffsetVector);
      std::string offsets;
      for (int f = 0; f < g.frames; ++f) offsets += (f ? "\\" : "") + std::to_string(f * 2);
      put(ds, DCM_GridFrameOffsetVector, offsets);
    } else {
      ds.putAndInsertTagKey(DCM_FrameIncrementPointer, DCM_FrameTime);
      put(ds, DCM_FrameTime, "33.3");
    }
  }
  put_u16(ds, DCM_SamplesPerPixel, samples_per_pixel(k));
  put(ds, DCM_PhotometricInterpretation, color ? "RGB" : "MONOCHROME2");
  if (color) put_u16(ds, DCM_PlanarConfiguration, 0);
  put_u16(ds, DCM_Rows, g.rows);
  put_u16(ds, DCM_Columns, g.cols);
  put_u16(ds, DCM_BitsAllocated, bits_allocated(k));
  put_u16(ds, DCM_BitsStored, k.bits_stored);
  put_u16(ds, DCM_HighBit, k.bits_stored - 1);
  put_u16(ds, DCM_PixelRepresentation, 0);
  if (std::string_view(k.modality) == "US" || std::string_view(k.modality) == "ES") {
    put(ds, DCM_BurnedInAnnotation, "NO");
  }
}

/// A gradient with a few bits of noise, different per file and per frame.
template <class T>
std::vector<T> make_pixels(const Plan& p, const Geometry& g) {
  const Kind& k = *p.kind;
  const int spp = samples_per_pixel(k);
  const unsigned max_value = (1u << k.bits_stored) - 1;
  const unsigned noise_bits = k.bits_stored > 8 ? 4 : 3;
  const std::size_t frame_len = static_cast<std::size_t>(g.rows) * g.cols * spp;
  std::vector<T> out(frame_len * static_cast<std::size_t>(g.frames));
  std::size_t i = 0;
  for (int f = 0; f < g.frames; ++f) {
    std::uint64_t state = mix64(p.seed ^ mix64(static_cast<std::uint64_t>(p.index) << 20 | f));
    std::uint64_t bits = 0;
    int bits_left = 0;
    const unsigned offset = static_cast<unsigned>((f * 37 + p.index * 11) % (max_value / 8 + 1));
    for (int y = 0; y < g.rows; ++y) {
      for (int x = 0; x < g.cols; ++x) {
        for (int s = 0; s < spp; ++s) {
          if (bits_left < static_cast<int>(noise_bits)) {
            state = mix64(state);
            bits = state;
            bits_left = 64;
          }
          const unsigned noise = static_cast<unsigned>(bits & ((1u << noise_bits) - 1));
          bits >>= noise_bits;
          bits_left -= static_cast<int>(noise_bits);
          const unsigned gx = static_cast<unsigned>((static_cast<std::uint64_t>(x) * max_value) /
                                                    static_cast<unsigned>(g.cols));
          const unsigned gy = static_cast<unsigned>((static_cast<std::uint64_t>(y) * max_value) /
                                                    static_cast<unsigned>(g.rows));
          const unsigned base = s == 0 ? (gx + gy) / 2 : (s == 1 ? gy : max_value - gx);
          const unsigned v = std::min(max_value, base / 2 + offset + noise);
          out[i++] = static_cast<T>(v);
        }
      }
    }
  }
  return out;
}

/// Opaque "JPEG 2000" fragments: SOC+SIZ markers, noise, EOC. One frame per fragment below
/// 256 KiB, several fragments per frame above; the Basic Offset Table points at each frame.
void put_opaque_j2k(DcmDataset& ds, const Plan& p, const Geometry& g, std::size_t total_bytes) {
  const std::size_t frames = static_cast<std::size_t>(g.frames);
  std::size_t per_frame = std::max<std::size_t>(64, total_bytes / frames);
  per_frame += per_frame & 1;
  constexpr std::size_t kMaxFragment = 256 * 1024;

  auto* sequence = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
  auto* offset_table = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
  sequence->insert(offset_table);
  std::vector<Uint8> table;
  std::uint32_t offset = 0;
  std::uint64_t state = mix64(p.seed ^ static_cast<std::uint64_t>(p.index));
  for (std::size_t f = 0; f < frames; ++f) {
    for (int b = 0; b < 4; ++b) table.push_back(static_cast<Uint8>(offset >> (8 * b)));
    std::vector<Uint8> frame(per_frame);
    for (auto& byte : frame) {
      state = mix64(state);
      byte = static_cast<Uint8>(state);
    }
    const Uint8 head[] = {0xFF, 0x4F, 0xFF, 0x51};  // SOC, SIZ
    std::copy(std::begin(head), std::end(head), frame.begin());
    frame[per_frame - 2] = 0xFF;  // EOC
    frame[per_frame - 1] = 0xD9;
    for (std::size_t at = 0; at < per_frame; at += kMaxFragment) {
      const std::size_t len = std::min(kMaxFragment, per_frame - at);
      auto* fragment = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
      fragment->putUint8Array(frame.data() + at, static_cast<unsigned long>(len));
      sequence->insert(fragment);
      offset += static_cast<std::uint32_t>(8 + len);
    }
  }
  if (frames > 1)
    offset_table->putUint8Array(table.data(), static_cast<unsigned long>(table.size()));
  auto* pixel_data = new DcmPixelData(DCM_PixelData);
  pixel_data->putOriginalRepresentation(p.syntax->xfer, nullptr, sequence);
  ds.insert(pixel_data, true);
  if (samples_per_pixel(*p.kind) == 3) put(ds, DCM_PhotometricInterpretation, "YBR_RCT");
  put(ds, DCM_LossyImageCompression, "00");
}

void put_structured_report(DcmItem& ds, const Plan& p) {
  put(ds, DCM_ValueType, "CONTAINER");
  put_code(ds, DCM_ConceptNameCodeSequence, "18748-4", "LN", "Diagnostic Imaging Report");
  put(ds, DCM_ContinuityOfContent, "SEPARATE");
  put(ds, DCM_CompletionFlag, "COMPLETE");
  put(ds, DCM_VerificationFlag, "UNVERIFIED");
  ds.insertEmptyElement(DCM_ReferencedPerformedProcedureStepSequence);
  ds.insertEmptyElement(DCM_PerformedProcedureCodeSequence);
  // Without --size-kib: three findings; with it, 4 KiB findings up to the budget.
  const std::size_t text_len = p.explicit_size ? 4096 : 64;
  const std::size_t items = p.explicit_size ? std::max<std::size_t>(1, p.budget / text_len) : 3;
  for (std::size_t i = 0; i < items; ++i) {
    DcmItem* item = new_item(ds, DCM_ContentSequence);
    put(*item, DCM_RelationshipType, "CONTAINS");
    put(*item, DCM_ValueType, "TEXT");
    put_code(*item, DCM_ConceptNameCodeSequence, "121071", "DCM", "Finding");
    std::string text = "Synthetic finding " + std::to_string(i) + " of test object " +
                       std::to_string(p.index) + ".";
    while (text.size() < text_len) text += " Nothing to report.";
    text.resize(text_len);
    put(*item, DCM_TextValue, text);
  }
}

/// A small valid PDF (one page of text), padded with comment lines to `size` bytes.
std::string make_pdf(const Plan& p, std::size_t size) {
  std::string content = "BT /F1 12 Tf 72 720 Td (dicom-gw synthetic test document " +
                        std::to_string(p.index) + ") Tj ET\n";
  const std::string pad = "% padding padding padding padding padding padding padding\n";
  while (content.size() + 600 < size) content += pad;
  std::vector<std::string> objects = {
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
      "/Resources << /Font << /F1 5 0 R >> >> >>",
      "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "endstream",
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  };
  std::string pdf = "%PDF-1.4\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const std::size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (std::size_t o : offsets) pdf += num(static_cast<long>(o), 10) + " 00000 n \n";
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) +
         " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

void put_pdf(DcmItem& ds, const Plan& p) {
  put(ds, DCM_ConversionType, "WSD");
  put(ds, DCM_BurnedInAnnotation, "YES");
  put(ds, DCM_DocumentTitle, "GW SYNTHETIC DOCUMENT " + std::to_string(p.index));
  ds.insertEmptyElement(DCM_ConceptNameCodeSequence);
  put(ds, DCM_AcquisitionDateTime, "");
  put(ds, DCM_MIMETypeOfEncapsulatedDocument, "application/pdf");
  const std::string pdf = make_pdf(p, p.explicit_size ? p.budget : 2048);
  ds.putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(pdf.size()));
  std::vector<Uint8> bytes(pdf.begin(), pdf.end());
  if (bytes.size() % 2 != 0) bytes.push_back(0);  // OB values have even length
  ds.putAndInsertUint8Array(DCM_EncapsulatedDocument, bytes.data(),
                            static_cast<unsigned long>(bytes.size()));
}

/// Builds the data set and writes it; returns the file size, or nullopt after printing why not.
std::optional<std::uintmax_t> write_file(const Plan& p, const Geometry& g,
                                         const std::filesystem::path& path) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  put_patient_study_series(ds, p);
  const Kind& k = *p.kind;
  if (k.payload == Payload::kStructuredReport) put_structured_report(ds, p);
  if (k.payload == Payload::kPdf) put_pdf(ds, p);
  if (k.payload == Payload::kImage) {
    put_image_modules(ds, p, g);
    if (p.syntax->codec == Codec::kOpaque) {
      const std::size_t raw =
          static_cast<std::size_t>(g.rows) * g.cols * g.frames * bytes_per_pixel(k);
      put_opaque_j2k(ds, p, g, p.explicit_size ? p.budget : raw / 2);
    } else if (k.pixels == Pixels::kMono16) {
      const auto px = make_pixels<Uint16>(p, g);
      ds.putAndInsertUint16Array(DCM_PixelData, px.data(), static_cast<unsigned long>(px.size()));
    } else {
      const auto px = make_pixels<Uint8>(p, g);
      ds.putAndInsertUint8Array(DCM_PixelData, px.data(), static_cast<unsigned long>(px.size()));
    }
  }

  const E_TransferSyntax xfer = p.syntax->xfer;
  std::unique_ptr<DcmRepresentationParameter> parameter;
  switch (p.syntax->codec) {
    case Codec::kJpegBaseline:
    case Codec::kJpegExtended:
      parameter = std::make_unique<DJ_RPLossy>(90);
      break;
    case Codec::kJpegLossless:
      parameter = std::make_unique<DJ_RPLossless>(1, 0);
      break;
    case Codec::kJpegLs:
      parameter = std::make_unique<DJLSRepresentationParameter>(0, OFTrue);
      break;
    case Codec::kRle:
      parameter = std::make_unique<DcmRLERepresentationParameter>();
      break;
    case Codec::kNative:
    case Codec::kOpaque:
      break;
  }
  if (parameter) {
    const OFCondition c = ds.chooseRepresentation(xfer, parameter.get());
    if (c.bad() || !ds.canWriteXfer(xfer)) {
      std::cerr << "gen_dicom: " << p.kind->name << " cannot be encoded as " << p.syntax->name
                << ": " << c.text() << "\n";
      return std::nullopt;
    }
  }
  // Every other file uses undefined-length sequences and items, so both encodings occur.
  const E_EncodingType encoding = p.index % 2 == 0 ? EET_ExplicitLength : EET_UndefinedLength;
  const OFCondition c = file.saveFile(path.c_str(), xfer, encoding, EGL_recalcGL, EPD_noChange, 0,
                                      0, EWM_createNewMeta);
  if (c.bad()) {
    std::cerr << "gen_dicom: writing " << path << ": " << c.text() << "\n";
    return std::nullopt;
  }
  return std::filesystem::file_size(path);
}

void usage(std::ostream& out) {
  out << R"(usage: gen_dicom --out DIR --count N [options]

Writes N synthetic DICOM Part 10 files DIR/0.dcm .. DIR/<N-1>.dcm (no patient data).

  --out DIR                 output directory (created)
  --count N                 number of files
  --size-kib K              aim for files of about K KiB (default: each kind's natural size).
                            Multi-frame kinds add frames, others grow the matrix; compressed
                            syntaxes are re-encoded once to correct for the codec's ratio
                            (at most 6x, so very compressible lossy files come out smaller).
  --studies S               spread files over S studies, one patient each (default 1)
  --series-per-study R      R series per study (default 1); files go round-robin
  --mix                     cycle through every SOP class x transfer syntax pair (a fixed
                            --sop-class or --transfer-syntax is kept, the other cycles)
  --sop-class NAME          default ct; see --list
  --transfer-syntax NAME    default ele; see --list
  --seed N                  UIDs and pixel noise derive from N (default: random, printed)
  --verbose                 one line per file: index, kind, transfer syntax, bytes
  --list                    print SOP classes and transfer syntaxes, then exit

Objects without pixel data (sr, pdf) get a native syntax instead of a compressed one; JPEG
baseline/extended on >8-bit data become extended (12 bits) or lossless (16 bits).
)";
}

void list(std::ostream& out) {
  out << "sop classes:";
  for (const auto& k : kKinds) out << " " << k.name;
  out << "\ntransfer syntaxes:";
  for (const auto& s : kSyntaxes) out << " " << s.name;
  out << "\n--mix cycle length: " << std::size(kKinds) * std::size(kSyntaxes) << "\n";
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  auto number = [](const std::string& flag, const char* text, long min) -> std::optional<long> {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min) {
      std::cerr << "gen_dicom: " << flag << " needs an integer >= " << min << "\n";
      return std::nullopt;
    }
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(std::cout);
      std::exit(0);
    }
    if (a == "--list") {
      list(std::cout);
      std::exit(0);
    }
    if (a == "--mix") {
      o.mix = true;
      continue;
    }
    if (a == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "gen_dicom: " << a << " needs a value (or is unknown)\n";
      return std::nullopt;
    }
    const char* v = argv[++i];
    std::optional<long> n;
    if (a == "--out") {
      o.out = v;
    } else if (a == "--count") {
      if (!(n = number(a, v, 0))) return std::nullopt;
      o.count = *n;
    } else if (a == "--size-kib") {
      if (!(n = number(a, v, 1))) return std::nullopt;
      o.size_kib = *n;
    } else if (a == "--studies") {
      if (!(n = number(a, v, 1))) return std::nullopt;
      o.studies = *n;
    } else if (a == "--series-per-study") {
      if (!(n = number(a, v, 1))) return std::nullopt;
      o.series_per_study = *n;
    } else if (a == "--seed") {
      char* end = nullptr;
      const unsigned long long s = std::strtoull(v, &end, 10);
      if (end == v || *end != '\0') {
        std::cerr << "gen_dicom: --seed needs an unsigned integer\n";
        return std::nullopt;
      }
      o.seed = s;
    } else if (a == "--sop-class") {
      for (const auto& k : kKinds) {
        if (std::string_view(v) == k.name) o.kind = &k;
      }
      if (o.kind == nullptr) {
        std::cerr << "gen_dicom: unknown --sop-class " << v << " (see --list)\n";
        return std::nullopt;
      }
    } else if (a == "--transfer-syntax") {
      for (const auto& s : kSyntaxes) {
        if (std::string_view(v) == s.name) o.syntax = &s;
      }
      if (o.syntax == nullptr) {
        std::cerr << "gen_dicom: unknown --transfer-syntax " << v << " (see --list)\n";
        return std::nullopt;
      }
    } else {
      std::cerr << "gen_dicom: unknown option " << a << "\n";
      return std::nullopt;
    }
  }
  if (o.out.empty() || o.count < 0) {
    std::cerr << "gen_dicom: --out and --count are required\n";
    return std::nullopt;
  }
  return o;
}

int run(const Options& o) {
  OFLog::configure(OFLogger::WARN_LOG_LEVEL);  // the encoders chat at INFO level
  // Lossy JPEG must not mint new SOP Instance UIDs (ours are deterministic); 4:4:4 sampling.
  DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never, OFFalse, 0, 0, 0, OFTrue,
                                        ESS_444, OFFalse);
  DJLSEncoderRegistration::registerCodecs(0, 0, 0, 0, OFTrue, 0, OFTrue, EJLSUC_never);
  DcmRLEEncoderRegistration::registerCodecs();

  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) {
    std::cerr << "gen_dicom: cannot create " << o.out << ": " << ec.message() << "\n";
    return 1;
  }
  const std::uint64_t seed =
      o.seed ? *o.seed : (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}());
  const std::string uid_root = "2.25." + std::to_string(mix64(seed) >> 1);

  constexpr std::size_t kKindCount = std::size(kKinds);
  constexpr std::size_t kSyntaxCount = std::size(kSyntaxes);
  const long series_total = o.studies * o.series_per_study;
  int failures = 0;
  std::uintmax_t total_bytes = 0;
  for (long i = 0; i < o.count; ++i) {
    Plan p;
    p.index = i;
    p.seed = seed;
    p.uid_root = uid_root;
    const long slot = i % series_total;  // round-robin over all series
    p.study = slot / o.series_per_study;
    p.series = slot % o.series_per_study;
    // --mix: combination c ↦ (kind c % K, syntax (c / K + c % K) % T) visits every pair once
    // per K×T files while neighbouring files differ in both.
    const auto c = static_cast<std::size_t>(i) % (kKindCount * kSyntaxCount);
    const std::size_t mixed_kind = c % kKindCount;
    const std::size_t mixed_syntax = (c / kKindCount + c % kKindCount) % kSyntaxCount;
    if (o.kind != nullptr) {
      p.kind_index = static_cast<std::size_t>(o.kind - kKinds);
    } else {
      p.kind_index = o.mix ? mixed_kind : 0;
    }
    p.kind = &kKinds[p.kind_index];
    const Syntax* wanted = o.syntax;
    if (wanted == nullptr) {
      wanted = o.mix ? &kSyntaxes[o.kind != nullptr ? c % kSyntaxCount : mixed_syntax]
                     : &syntax_named("ele");
    }
    p.syntax = &effective_syntax(*p.kind, *wanted, o.mix ? c / kKindCount : 1);

    constexpr std::size_t kOverhead = 2048;  // attributes + meta header, roughly
    p.explicit_size = o.size_kib.has_value();
    if (p.explicit_size) {
      const std::size_t target = static_cast<std::size_t>(*o.size_kib) * 1024;
      p.budget = target > 2 * kOverhead ? target - kOverhead : target / 2;
    }
    const std::filesystem::path path = o.out / (std::to_string(i) + ".dcm");
    Geometry g = p.explicit_size ? geometry_for(*p.kind, p.budget) : natural_geometry(*p.kind);
    std::optional<std::uintmax_t> size = write_file(p, g, path);
    const Codec codec = p.syntax->codec;
    const bool compresses = (codec != Codec::kNative && codec != Codec::kOpaque) ||
                            p.syntax->xfer == EXS_DeflatedLittleEndianExplicit;
    if (size && p.explicit_size && p.kind->pixels != Pixels::kNone && compresses) {
      // One correction pass: grow the matrix by the codec's compression ratio, at most 6×
      // (DCMTK holds raw and compressed copies: memory is a few times the raw size).
      const double written = static_cast<double>(*size > kOverhead ? *size - kOverhead : 1);
      const double ratio = std::clamp(static_cast<double>(p.budget) / written, 1.0, 6.0);
      if (ratio > 1.1) {
        g = geometry_for(*p.kind, static_cast<std::size_t>(static_cast<double>(p.budget) * ratio));
        size = write_file(p, g, path);
      }
    }
    if (!size) {
      ++failures;
      continue;
    }
    total_bytes += *size;
    if (o.verbose) {
      std::cout << i << " " << p.kind->name << " " << p.syntax->name << " ";
      if (p.kind->pixels == Pixels::kNone) {
        std::cout << "-";
      } else {
        std::cout << g.rows << "x" << g.cols << "x" << g.frames;
      }
      std::cout << " " << *size << "\n";
    }
  }
  DJEncoderRegistration::cleanup();
  DJLSEncoderRegistration::cleanup();
  DcmRLEEncoderRegistration::cleanup();
  std::cout << "gen_dicom: wrote " << (o.count - failures) << " files (" << total_bytes
            << " bytes) to " << o.out.string() << " seed=" << seed << " uid_root=" << uid_root
            << "\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace gw::test::gen

int main(int argc, char** argv) {
  const auto options = gw::test::gen::parse(argc, argv);
  if (!options) {
    gw::test::gen::usage(std::cerr);
    return 2;
  }
  return gw::test::gen::run(*options);
}
