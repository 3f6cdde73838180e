// libFuzzer target for the DICOM Upper Layer PDU parsers (network input, untrusted).
//
// The input is a PDU stream: the 6-byte header is parsed, then the body (the declared length,
// or what is left if less) goes to the parser for the header's type. Parsed associate PDUs are
// re-encoded and parsed again, which must give the same value (encoder/parser agreement).

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/check.h"
#include "dicom/pdu.h"

namespace {

using gw::dicom::kPduHeaderSize;

/// Re-encoding adds mandatory sub-items a hostile peer may have left out, so an item near the
/// 64 KiB item limit could legitimately not fit again; only smaller bodies are round-tripped.
constexpr std::size_t kRoundTripLimit = 60000;

/// What an encoding carries: optional user information sub-items the parser skipped as
/// malformed (UserInformation::skipped_sub_items, a note for the log) are not encoded again.
template <class Parsed>
Parsed encodable(Parsed parsed) {
  if constexpr (requires { parsed.user_info.skipped_sub_items; }) {
    parsed.user_info.skipped_sub_items.clear();
  }
  return parsed;
}

template <class Parsed, class Parse, class Encode>
void round_trip(const Parsed& parsed, Parse parse, Encode encode) {
  const Parsed expected = encodable(parsed);
  const std::vector<std::uint8_t> pdu = encode(expected);
  GW_CHECK(pdu.size() >= kPduHeaderSize);
  auto again = parse(std::span<const std::uint8_t>(pdu).subspan(kPduHeaderSize));
  GW_CHECK(again.ok());
  GW_CHECK(*again == expected);
}

void parse_body(gw::dicom::PduType type, std::span<const std::uint8_t> body) {
  using namespace gw::dicom;  // NOLINT(google-build-using-namespace)
  const bool small = body.size() < kRoundTripLimit;
  switch (type) {
    case PduType::kAssociateRq: {
      auto rq = parse_associate_rq(body);
      if (rq.ok() && small) round_trip(*rq, parse_associate_rq, encode_associate_rq);
      break;
    }
    case PduType::kAssociateAc: {
      auto ac = parse_associate_ac(body);
      if (ac.ok() && small) round_trip(*ac, parse_associate_ac, encode_associate_ac);
      break;
    }
    case PduType::kAssociateRj: {
      auto rj = parse_associate_rj(body);
      if (rj.ok()) {
        round_trip(*rj, parse_associate_rj, encode_associate_rj);
        (void)describe(*rj);
      }
      break;
    }
    case PduType::kPDataTf: {
      std::vector<Pdv> pdvs;
      if (parse_p_data_tf(body, pdvs).ok()) {
        std::size_t total = 0;
        for (const Pdv& pdv : pdvs) {
          GW_CHECK(pdv.data.data() >= body.data() &&
                   pdv.data.data() + pdv.data.size() <= body.data() + body.size());
          total += pdv.data.size() + kPdvHeaderSize;
        }
        GW_CHECK(total == body.size());
      }
      break;
    }
    case PduType::kReleaseRq:
    case PduType::kReleaseRp:
      (void)parse_release(body);
      break;
    case PduType::kAbort: {
      auto abort = parse_abort(body);
      if (abort.ok()) {
        round_trip(*abort, parse_abort, encode_abort);
        (void)describe(*abort);
      }
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  if (input.size() < kPduHeaderSize) return 0;
  auto header = gw::dicom::parse_pdu_header(input.first<kPduHeaderSize>());
  if (!header.ok()) return 0;
  std::span<const std::uint8_t> body = input.subspan(kPduHeaderSize);
  if (header->length < body.size()) body = body.first(header->length);
  parse_body(header->type, body);
  return 0;
}
