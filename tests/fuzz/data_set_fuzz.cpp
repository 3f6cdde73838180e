// libFuzzer target for what the Storage SCP does with a received data set before it is stored:
// dicom::read_instance_info (the sequence-depth walk, then DCMTK's parse within the gateway's
// bounds). The first input byte picks the transfer syntax written in the File Meta group; the
// rest is the data set. It must never crash, hang or overflow the stack (DCMTK's parse recurses
// per sequence level: the walk before it must keep every input within kMaxSequenceNesting).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dicom/instance_info.h"
#include "dicom/nesting_scan.h"
#include "dicom/part10.h"

namespace {

class MemorySource final : public gw::dicom::ByteSource {
 public:
  explicit MemorySource(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  std::uint64_t size() const override { return bytes_.size(); }
  gw::core::Result<std::size_t> read_at(std::uint64_t offset,
                                        std::span<std::uint8_t> out) override {
    if (offset >= bytes_.size()) return std::size_t{0};
    const auto n =
        static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), bytes_.size() - offset));
    std::copy_n(bytes_.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }

 private:
  std::vector<std::uint8_t> bytes_;
};

constexpr std::array<const char*, 4> kSyntaxes = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                                  "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > (1u << 20)) return 0;
  gw::dicom::FileMeta meta;
  meta.media_storage_sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  meta.media_storage_sop_instance_uid = "1.2.3.4";
  meta.transfer_syntax_uid = kSyntaxes[data[0] % kSyntaxes.size()];
  meta.implementation_class_uid = "1.2.826.0.1.3680043.2.1.99";
  auto bytes = gw::dicom::encode_file_meta(meta);
  bytes.insert(bytes.end(), data + 1, data + size);
  MemorySource source(std::move(bytes));
  // Asked for like a routing rule would: a text tag, a binary one, a sequence.
  static constexpr std::uint32_t kExtra[] = {0x00081030, 0x7FE00010, 0x00081110, 0x00091010};
  (void)gw::dicom::read_instance_info(source, kExtra);
  return 0;
}
