#include "dicom/negotiation.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dicom/uids.h"

namespace gw::dicom {
namespace {

constexpr char kCtImageStorage[] = "1.2.840.10008.5.1.4.1.1.2";
constexpr char kJpegLsLossless[] = "1.2.840.10008.1.2.4.80";
constexpr char kJpegBaseline[] = "1.2.840.10008.1.2.4.50";

PresentationContextRq context(std::uint8_t id, std::string abstract_syntax,
                              std::vector<std::string> transfer_syntaxes) {
  return {id, std::move(abstract_syntax), std::move(transfer_syntaxes)};
}

TEST(NegotiationTest, FirstSupportedTransferSyntaxInScuOrder) {
  const auto results = negotiate(
      {context(1, kCtImageStorage, {kJpegLsLossless, std::string(kExplicitVrLittleEndian)}),
       context(3, kCtImageStorage,
               {"1.2.3.4.5.6", std::string(kExplicitVrLittleEndian), kJpegLsLossless})},
      {});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].id, 1);
  EXPECT_EQ(results[0].result, PcResult::kAcceptance);
  EXPECT_EQ(results[0].transfer_syntax, kJpegLsLossless);
  EXPECT_EQ(results[1].id, 3);
  EXPECT_EQ(results[1].result, PcResult::kAcceptance);
  EXPECT_EQ(results[1].transfer_syntax, kExplicitVrLittleEndian);
}

TEST(NegotiationTest, UnsupportedAbstractSyntax) {
  const auto results =
      negotiate({context(1, "1.2.840.10008.5.1.4.1.2.1.1",  // Patient Root Q/R FIND
                         {std::string(kImplicitVrLittleEndian)}),
                 context(3, "1.2.3.999", {std::string(kImplicitVrLittleEndian)})},
                {});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].result, PcResult::kAbstractSyntaxNotSupported);
  EXPECT_EQ(results[1].result, PcResult::kAbstractSyntaxNotSupported);
}

TEST(NegotiationTest, UnsupportedTransferSyntaxes) {
  const auto results =
      negotiate({context(1, kCtImageStorage, {"1.2.840.10008.1.2.4.52", "1.2.840.10008.1.2.6.1"}),
                 context(3, kCtImageStorage, {})},
                {});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].result, PcResult::kTransferSyntaxesNotSupported);
  EXPECT_TRUE(results[0].transfer_syntax.empty());
  EXPECT_EQ(results[1].result, PcResult::kTransferSyntaxesNotSupported);
}

TEST(NegotiationTest, ContextWithoutASingleAbstractSyntaxIsRejectedForNoReason) {
  // The parser leaves the abstract syntax empty when the item had none or two (pdu.h); the
  // other contexts are negotiated as usual.
  const auto results =
      negotiate({context(1, "", {std::string(kImplicitVrLittleEndian)}),
                 context(3, std::string(1, '\0'), {std::string(kImplicitVrLittleEndian)}),
                 context(5, kCtImageStorage, {std::string(kImplicitVrLittleEndian)})},
                {});
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].result, PcResult::kNoReason);
  EXPECT_EQ(results[1].result, PcResult::kNoReason);
  EXPECT_EQ(results[2].result, PcResult::kAcceptance);
  EXPECT_EQ(results[2].transfer_syntax, kImplicitVrLittleEndian);
}

TEST(NegotiationTest, Verification) {
  const std::vector<PresentationContextRq> proposed = {
      context(1, std::string(kVerificationSopClass), {std::string(kImplicitVrLittleEndian)})};
  const auto accepted = negotiate(proposed, {});
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].result, PcResult::kAcceptance);
  EXPECT_EQ(accepted[0].transfer_syntax, kImplicitVrLittleEndian);

  const auto refused = negotiate(proposed, {.accept_verification = false});
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].result, PcResult::kAbstractSyntaxNotSupported);
}

TEST(NegotiationTest, StorageCanBeTurnedOff) {
  const auto results = negotiate({context(1, kCtImageStorage, {kJpegBaseline})},
                                 {.accept_verification = true, .accept_storage = false});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result, PcResult::kAbstractSyntaxNotSupported);
}

TEST(NegotiationTest, EvenAndDuplicateIdsAreRejected) {
  const auto results = negotiate(
      {context(2, kCtImageStorage, {kJpegBaseline}), context(5, kCtImageStorage, {kJpegBaseline}),
       context(7, kCtImageStorage, {kJpegBaseline}), context(5, kCtImageStorage, {kJpegBaseline}),
       context(0, kCtImageStorage, {kJpegBaseline})},
      {});
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[0].id, 2);
  EXPECT_EQ(results[0].result, PcResult::kNoReason);
  EXPECT_EQ(results[1].result, PcResult::kNoReason);
  EXPECT_EQ(results[2].id, 7);
  EXPECT_EQ(results[2].result, PcResult::kAcceptance);
  EXPECT_EQ(results[3].result, PcResult::kNoReason);
  EXPECT_EQ(results[4].result, PcResult::kNoReason);
}

TEST(NegotiationTest, NulPaddedUidsFromPeer) {
  const auto results = negotiate(
      {context(1, std::string(kCtImageStorage) + '\0', {std::string(kJpegBaseline) + '\0'})}, {});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result, PcResult::kAcceptance);
  EXPECT_EQ(results[0].transfer_syntax, kJpegBaseline);
}

TEST(NegotiationTest, EmptyProposal) { EXPECT_TRUE(negotiate({}, {}).empty()); }

TEST(AsyncWindowTest, NoProposalOrALimitOfOneMeansNoItem) {
  EXPECT_EQ(answer_async_window(std::nullopt, 16), std::nullopt);
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{8, 1}, 1), std::nullopt);
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{8, 1}, 0), std::nullopt);
}

TEST(AsyncWindowTest, TheRequestorMayInvokeTheSmallerOfBothAndPerformsOne) {
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{8, 1}, 16), (AsyncOpsWindow{8, 1}));
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{64, 5}, 16), (AsyncOpsWindow{16, 1}));
  // 0 proposes "no limit": ours applies. A requestor that offers to perform any number is still
  // told 1: we invoke nothing on it.
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{0, 0}, 16), (AsyncOpsWindow{16, 1}));
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{1, 1}, 16), (AsyncOpsWindow{1, 1}));
  EXPECT_EQ(answer_async_window(AsyncOpsWindow{0, 1}, 100000), (AsyncOpsWindow{0xFFFF, 1}));
}

TEST(AsyncWindowTest, TheRequestorKeepsWhatWasGrantedAndNeverMoreThanItAskedFor) {
  EXPECT_EQ(granted_async_window(std::nullopt, 16), 1u);            // no item: synchronous
  EXPECT_EQ(granted_async_window(AsyncOpsWindow{8, 1}, 16), 8u);    // fewer than asked
  EXPECT_EQ(granted_async_window(AsyncOpsWindow{0, 1}, 16), 16u);   // "no limit"
  EXPECT_EQ(granted_async_window(AsyncOpsWindow{64, 1}, 16), 16u);  // more than asked
  EXPECT_EQ(granted_async_window(AsyncOpsWindow{8, 1}, 1), 1u);     // we asked for none
}

}  // namespace
}  // namespace gw::dicom
