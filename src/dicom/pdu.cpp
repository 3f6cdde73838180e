#include "dicom/pdu.h"

#include <string>

namespace gw::dicom {
namespace {

std::string_view reject_reason_name(RejectSource source, std::uint8_t reason) {
  switch (source) {
    case RejectSource::kServiceUser:
      switch (reason) {
        case 1:
          return "no-reason-given";
        case 2:
          return "application-context-name-not-supported";
        case 3:
          return "calling-AE-title-not-recognized";
        case 7:
          return "called-AE-title-not-recognized";
        default:
          return {};
      }
    case RejectSource::kServiceProviderAcse:
      switch (reason) {
        case 1:
          return "no-reason-given";
        case 2:
          return "protocol-version-not-supported";
        default:
          return {};
      }
    case RejectSource::kServiceProviderPresentation:
      switch (reason) {
        case 1:
          return "temporary-congestion";
        case 2:
          return "local-limit-exceeded";
        default:
          return {};
      }
  }
  return {};
}

}  // namespace

std::string_view name(PduType type) {
  switch (type) {
    case PduType::kAssociateRq:
      return "A-ASSOCIATE-RQ";
    case PduType::kAssociateAc:
      return "A-ASSOCIATE-AC";
    case PduType::kAssociateRj:
      return "A-ASSOCIATE-RJ";
    case PduType::kPDataTf:
      return "P-DATA-TF";
    case PduType::kReleaseRq:
      return "A-RELEASE-RQ";
    case PduType::kReleaseRp:
      return "A-RELEASE-RP";
    case PduType::kAbort:
      return "A-ABORT";
  }
  return "unknown-PDU";
}

std::string describe(const AssociateRj& rj) {
  std::string out = "A-ASSOCIATE-RJ ";
  switch (rj.result) {
    case RejectResult::kPermanent:
      out += "permanent";
      break;
    case RejectResult::kTransient:
      out += "transient";
      break;
    default:
      out += "result-" + std::to_string(static_cast<int>(rj.result));
      break;
  }
  out += '/';
  switch (rj.source) {
    case RejectSource::kServiceUser:
      out += "service-user";
      break;
    case RejectSource::kServiceProviderAcse:
      out += "service-provider-ACSE";
      break;
    case RejectSource::kServiceProviderPresentation:
      out += "service-provider-presentation";
      break;
    default:
      out += "source-" + std::to_string(static_cast<int>(rj.source));
      break;
  }
  out += '/';
  const std::string_view reason = reject_reason_name(rj.source, rj.reason);
  if (reason.empty()) {
    out += "reason-" + std::to_string(rj.reason);
  } else {
    out += reason;
  }
  return out;
}

std::string describe(const Abort& abort) {
  switch (abort.source) {
    case AbortSource::kServiceUser:
      return "A-ABORT service-user";  // the reason is not significant for this source
    case AbortSource::kServiceProvider:
      break;
    default:
      return "A-ABORT source-" + std::to_string(static_cast<int>(abort.source));
  }
  std::string out = "A-ABORT service-provider/";
  switch (abort.reason) {
    case abort_reason::kNotSpecified:
      return out + "reason-not-specified";
    case abort_reason::kUnrecognizedPdu:
      return out + "unrecognized-PDU";
    case abort_reason::kUnexpectedPdu:
      return out + "unexpected-PDU";
    case abort_reason::kUnrecognizedPduParameter:
      return out + "unrecognized-PDU-parameter";
    case abort_reason::kUnexpectedPduParameter:
      return out + "unexpected-PDU-parameter";
    case abort_reason::kInvalidPduParameterValue:
      return out + "invalid-PDU-parameter-value";
    default:
      return out + "reason-" + std::to_string(abort.reason);
  }
}

}  // namespace gw::dicom
