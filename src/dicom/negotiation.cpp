#include "dicom/negotiation.h"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

#include "dicom/uids.h"

namespace gw::dicom {
namespace {

/// Some peers pad UIDs in items to even length with a NUL (or a space); compare without it.
std::string_view trim_uid(std::string_view uid) {
  while (!uid.empty() && (uid.back() == '\0' || uid.back() == ' ')) uid.remove_suffix(1);
  return uid;
}

bool serves(std::string_view abstract_syntax, const NegotiationPolicy& policy) {
  if (abstract_syntax == kVerificationSopClass) return policy.accept_verification;
  return policy.accept_storage && is_storage_sop_class(abstract_syntax);
}

/// No abstract syntax, or more than one (the parser leaves it empty then: pdu.h).
bool malformed(const PresentationContextRq& pc) { return trim_uid(pc.abstract_syntax).empty(); }

}  // namespace

std::vector<PresentationContextAc> negotiate(const std::vector<PresentationContextRq>& proposed,
                                             const NegotiationPolicy& policy) {
  // A duplicated id would make every later P-DATA on it ambiguous: none of its copies is accepted.
  std::array<int, 256> id_count{};
  for (const auto& pc : proposed) ++id_count[pc.id];

  std::vector<PresentationContextAc> results;
  results.reserve(proposed.size());
  for (const auto& pc : proposed) {
    PresentationContextAc ac;
    ac.id = pc.id;
    if (pc.id % 2 == 0 || id_count[pc.id] > 1 || malformed(pc)) {
      ac.result = PcResult::kNoReason;
    } else if (!serves(trim_uid(pc.abstract_syntax), policy)) {
      ac.result = PcResult::kAbstractSyntaxNotSupported;
    } else {
      ac.result = PcResult::kTransferSyntaxesNotSupported;
      for (const auto& ts : pc.transfer_syntaxes) {
        if (const auto* info = find_transfer_syntax(trim_uid(ts))) {
          ac.result = PcResult::kAcceptance;
          ac.transfer_syntax = std::string(info->uid);
          break;
        }
      }
    }
    results.push_back(std::move(ac));
  }
  return results;
}

std::optional<AsyncOpsWindow> answer_async_window(const std::optional<AsyncOpsWindow>& proposed,
                                                  std::uint32_t ours) {
  if (!proposed || ours <= 1) return std::nullopt;
  return AsyncOpsWindow{async_window_field(granted_async_window(proposed, ours)), 1};
}

std::uint32_t granted_async_window(const std::optional<AsyncOpsWindow>& answered,
                                   std::uint32_t ours) {
  if (!answered || ours <= 1) return 1;
  const std::uint32_t limit = async_window_field(ours);
  return answered->max_invoked == 0 ? limit : std::min<std::uint32_t>(answered->max_invoked, limit);
}

std::uint16_t async_window_field(std::uint32_t count) {
  return static_cast<std::uint16_t>(std::min<std::uint32_t>(count, 0xFFFF));
}

}  // namespace gw::dicom
