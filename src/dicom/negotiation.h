#pragma once
/// Negotiation: which abstract syntaxes we serve and which transfer syntax we pick for each
/// proposed context (acceptor), and the asynchronous operations window (both roles).

#include <cstdint>
#include <optional>
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
///    (Also a context that proposes no transfer syntax at all: pdu.h.)
///  - a context with an even or duplicate id, or with no abstract syntax or more than one
///    (pdu.h), is answered kNoReason (provider rejection).
std::vector<PresentationContextAc> negotiate(const std::vector<PresentationContextRq>& proposed,
                                             const NegotiationPolicy& policy);

/// Our answer to a proposed asynchronous operations window (PS3.7 D.3.3.3), as the acceptor
/// that performs up to `ours` operations at once: the requestor may invoke min(its proposal,
/// ours) (a proposal of 0 means no limit); we invoke none on it, so it performs 1. nullopt (no
/// item in the A-ASSOCIATE-AC, i.e. synchronous): the peer proposed no window, or `ours` <= 1.
std::optional<AsyncOpsWindow> answer_async_window(const std::optional<AsyncOpsWindow>& proposed,
                                                  std::uint32_t ours);
/// The requestor's outstanding operations allowed by the A-ASSOCIATE-AC's window item, when we
/// asked for up to `ours`: 1 without an item, `ours` for 0 ("no limit"), else the smaller.
std::uint32_t granted_async_window(const std::optional<AsyncOpsWindow>& answered,
                                   std::uint32_t ours);
/// A count as the item's 16-bit field (larger counts are capped).
std::uint16_t async_window_field(std::uint32_t count);

}  // namespace gw::dicom
