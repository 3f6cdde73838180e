#include "support/malformed_pdus.h"

#include <gtest/gtest.h>

#include <set>
#include <span>
#include <string>
#include <vector>

#include "dicom/negotiation.h"
#include "dicom/pdu.h"
#include "dicom/state_machine.h"

namespace gw::dicom {
namespace {

enum class Outcome { kAborted, kClosed, kIncomplete };

/// Feeds a byte stream to the PDU parsers and an acceptor state machine the way the gateway's
/// acceptor does (accepting every acceptable A-ASSOCIATE-RQ) and reports how it ends.
Outcome run_acceptor(std::span<const std::uint8_t> stream, std::string& trace) {
  StateMachine sm(Role::kAcceptor);
  sm.on(Event::kEvt5);
  std::size_t pos = 0;
  std::vector<Pdv> pdvs;
  while (true) {
    if (stream.size() - pos < kPduHeaderSize) return Outcome::kIncomplete;
    auto header = parse_pdu_header(
        std::span<const std::uint8_t, kPduHeaderSize>(stream.data() + pos, kPduHeaderSize));
    Event event = Event::kEvt19;
    if (header.ok()) {
      if (header->length > stream.size() - pos - kPduHeaderSize) return Outcome::kIncomplete;
      const auto body = stream.subspan(pos + kPduHeaderSize, header->length);
      pos += kPduHeaderSize + header->length;
      switch (header->type) {
        case PduType::kAssociateRq:
          event = parse_associate_rq(body).ok() ? Event::kEvt6 : Event::kEvt19;
          break;
        case PduType::kAssociateAc:
          event = parse_associate_ac(body).ok() ? Event::kEvt3 : Event::kEvt19;
          break;
        case PduType::kAssociateRj:
          event = parse_associate_rj(body).ok() ? Event::kEvt4 : Event::kEvt19;
          break;
        case PduType::kPDataTf:
          event = parse_p_data_tf(body, pdvs).ok() ? Event::kEvt10 : Event::kEvt19;
          break;
        case PduType::kReleaseRq:
          event = parse_release(body).ok() ? Event::kEvt12 : Event::kEvt19;
          break;
        case PduType::kReleaseRp:
          event = parse_release(body).ok() ? Event::kEvt13 : Event::kEvt19;
          break;
        case PduType::kAbort:
          event = parse_abort(body).ok() ? Event::kEvt16 : Event::kEvt19;
          break;
      }
    }
    const Action action = sm.on(event);
    trace += std::string(name(event)) + "->" + std::string(name(action)) + " ";
    if (action == Action::kAe6) sm.on(Event::kEvt7);  // accept: A-ASSOCIATE-AC
    if (sm.state() == State::kSta13) return Outcome::kAborted;
    if (sm.state() == State::kSta1) return Outcome::kClosed;
    if (!header.ok()) return Outcome::kAborted;
  }
}

TEST(MalformedPdus, CorpusIsNamedAndNonEmpty) {
  const auto corpus = gw::test::malformed_pdu_corpus();
  EXPECT_GE(corpus.size(), 25u);
  std::set<std::string> names;
  for (const auto& [n, bytes] : corpus) {
    EXPECT_FALSE(bytes.empty()) << n;
    EXPECT_TRUE(names.insert(n).second) << "duplicate name " << n;
  }
}

TEST(MalformedPdus, AcceptorRefusesEveryEntry) {
  for (const auto& [n, bytes] : gw::test::malformed_pdu_corpus()) {
    std::string trace;
    const Outcome outcome = run_acceptor(bytes, trace);
    // Incomplete streams are ended by ARTIM or the PDU size limit, not by the parser.
    EXPECT_NE(outcome, Outcome::kClosed) << n << ": " << trace;
    if (outcome == Outcome::kAborted) {
      EXPECT_NE(trace.find("AA-"), std::string::npos) << n << ": " << trace;
    }
  }
}

TEST(MalformedPdus, ToleratedEntriesParseWithoutTheBrokenPart) {
  std::size_t seen = 0;
  for (const auto& [n, bytes] : gw::test::malformed_pdu_corpus()) {
    if (!gw::test::tolerated_malformed_pdus().contains(n)) continue;
    ++seen;
    auto rq = parse_associate_rq(std::span(bytes).subspan(kPduHeaderSize));
    ASSERT_TRUE(rq.ok()) << n << ": " << rq.error().message;
    EXPECT_FALSE(rq->user_info.user_identity_rq.has_value()) << n;
    EXPECT_TRUE(rq->user_info.role_selections.empty()) << n;
    const auto results = negotiate(rq->contexts, {});
    ASSERT_EQ(results.size(), rq->contexts.size()) << n;
    ASSERT_EQ(results.size(), 1u) << n;
    if (n == "rq_no_abstract_syntax") {
      EXPECT_EQ(results.at(0).result, PcResult::kNoReason);
    } else if (n == "rq_no_transfer_syntax") {
      EXPECT_EQ(results.at(0).result, PcResult::kTransferSyntaxesNotSupported);
    } else {
      EXPECT_EQ(rq->user_info.skipped_sub_items.size(), 1u) << n;
      EXPECT_EQ(results.at(0).result, PcResult::kAcceptance) << n;  // Verification goes ahead
    }
  }
  EXPECT_EQ(seen, gw::test::tolerated_malformed_pdus().size());
}

TEST(MalformedPdus, StructuralEntriesFailToParse) {
  // Entries whose first PDU is complete but malformed must be rejected by the parser itself,
  // not only by the state machine.
  for (const auto& [n, bytes] : gw::test::malformed_pdu_corpus()) {
    if (n.rfind("rq_", 0) != 0 || bytes.size() < kPduHeaderSize) continue;
    if (gw::test::tolerated_malformed_pdus().contains(n)) continue;
    auto header = parse_pdu_header(std::span<const std::uint8_t, kPduHeaderSize>(bytes.data(), 6));
    ASSERT_TRUE(header.ok()) << n;
    if (header->length != bytes.size() - kPduHeaderSize) continue;  // incomplete by design
    EXPECT_FALSE(parse_associate_rq(std::span(bytes).subspan(kPduHeaderSize)).ok()) << n;
  }
}

}  // namespace
}  // namespace gw::dicom
