#pragma once
/// Presentation context negotiation for the acceptor: which abstract syntaxes we serve and which
/// transfer syntax we pick for each proposed context.

#include <string>
#include <vector>

#include "dicom/pdu.h"

namespace gw::dicom {

struct NegotiationPolicy {
  bool accept_verification = true;
  bool accept_storage = true;  ///< every Storage SOP class (uids.h)
};

/// One result per proposed context, in the same order. Rules:
///  - abstract syntax not served           -> kAbstractSyntaxNotSupported
///  - no proposed transfer syntax supported -> kTransferSyntaxesNotSupported
///  - otherwise accepted with the *first transfer syntax the SCU listed* that we support, so
///    compressed data arrives exactly as it was sent.
///  - a context with an even or duplicate id is answered kNoReason (provider rejection).
std::vector<PresentationContextAc> negotiate(const std::vector<PresentationContextRq>& proposed,
                                             const NegotiationPolicy& policy);

}  // namespace gw::dicom
