#include "queue/retry_policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "dicom/uids.h"

namespace gw::queue {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr std::int64_t kHour = 3600 * 1000;

config::Retry retry(std::uint32_t max_attempts = 10, std::chrono::seconds max_age = 72h,
                    std::chrono::seconds initial = 5s, std::chrono::seconds cap = 600s) {
  config::Retry r;
  r.max_attempts = max_attempts;
  r.max_age = max_age;
  r.initial_backoff = initial;
  r.max_backoff = cap;
  return r;
}

Random fixed(double value) {
  return [value]() { return value; };
}

index::OutboxItem item(int attempts, std::int64_t created_at_ms = 0) {
  index::OutboxItem i;
  i.id = 7;
  i.attempts = attempts;
  i.created_at_ms = created_at_ms;
  return i;
}

// ---- classification ----------------------------------------------------------------------------

struct StatusCase {
  std::uint16_t status;
  Outcome outcome;
};

class RetryStatusTable : public ::testing::TestWithParam<StatusCase> {};

TEST_P(RetryStatusTable, Classifies) {
  const auto c = classify_status(GetParam().status);
  EXPECT_EQ(c.outcome, GetParam().outcome) << std::hex << GetParam().status;
  EXPECT_EQ(c.status, GetParam().status);
  EXPECT_FALSE(c.opens_breaker);
  EXPECT_EQ(c.counts_for_breaker, GetParam().outcome == Outcome::kTransient);
}

INSTANTIATE_TEST_SUITE_P(
    Dimse, RetryStatusTable,
    ::testing::Values(
        StatusCase{0x0000, Outcome::kDelivered}, StatusCase{0x0001, Outcome::kDeliveredWithWarning},
        StatusCase{0xB000, Outcome::kDeliveredWithWarning},
        StatusCase{0xB007, Outcome::kDeliveredWithWarning},
        // At-least-once delivery resends after a crash: "already have it" is fine.
        StatusCase{0x0111, Outcome::kDeliveredWithWarning}, StatusCase{0xA700, Outcome::kTransient},
        StatusCase{0xA7FF, Outcome::kTransient}, StatusCase{0xA900, Outcome::kPermanent},
        StatusCase{0xA9FF, Outcome::kPermanent}, StatusCase{0xC000, Outcome::kPermanent},
        StatusCase{0xCFFF, Outcome::kPermanent}, StatusCase{0x0122, Outcome::kPermanent},
        StatusCase{0x0124, Outcome::kPermanent}, StatusCase{0x0110, Outcome::kPermanent},
        StatusCase{0xFE00, Outcome::kPermanent}),
    [](const ::testing::TestParamInfo<StatusCase>& param) {
      char name[16];
      std::snprintf(name, sizeof name, "x%04X", param.param.status);
      return std::string(name);
    });

TEST(RetryClassify, StatusReasonNamesStatusAndComment) {
  const auto c = classify_status(0xA700, "disk full");
  EXPECT_EQ(c.reason, "status 0xA700 (refused: out of resources): disk full");
  EXPECT_EQ(classify_status(0x0122).reason, "status 0x0122 (SOP class not supported)");
}

TEST(RetryClassify, ConnectionFailuresAreTransientAndCountForTheBreaker) {
  for (auto code :
       {core::ErrorCode::kIo, core::ErrorCode::kTimeout, core::ErrorCode::kTls,
        core::ErrorCode::kProtocol, core::ErrorCode::kConfig, core::ErrorCode::kRejected}) {
    const auto c = classify_association_failure(core::make_error(code, "connect: refused"));
    EXPECT_EQ(c.outcome, Outcome::kTransient);
    EXPECT_EQ(c.status, -1);
    EXPECT_EQ(c.reason, "connect: refused");
    EXPECT_TRUE(c.counts_for_breaker);
    EXPECT_FALSE(c.opens_breaker);
  }
}

TEST(RetryClassify, TlsHandshakeFailureWaitsForAConfigFix) {
  const auto c = classify_association_failure(core::make_error(
      core::ErrorCode::kTls,
      "TLS handshake with pacs:2762 failed: certificate verify failed (unknown CA)"));
  EXPECT_EQ(c.outcome, Outcome::kTransient);
  EXPECT_NE(c.reason.find("unknown CA"), std::string::npos);
}

TEST(RetryClassify, TransientRejectionRetries) {
  const dicom::AssociateRj rj{dicom::RejectResult::kTransient,
                              dicom::RejectSource::kServiceProviderPresentation,
                              dicom::reject_reason::kLocalLimitExceeded};
  const auto c = classify_association_failure(
      core::make_error(core::ErrorCode::kRejected, "association rejected: A-ASSOCIATE-RJ"), rj);
  EXPECT_EQ(c.outcome, Outcome::kTransient);
  EXPECT_TRUE(c.counts_for_breaker);
  EXPECT_FALSE(c.opens_breaker);
}

TEST(RetryClassify, PermanentRejectionWaitsButOpensTheBreakerAtOnce) {
  const dicom::AssociateRj rj{dicom::RejectResult::kPermanent, dicom::RejectSource::kServiceUser,
                              dicom::reject_reason::kCallingAeNotRecognized};
  const auto c = classify_association_failure(
      core::make_error(core::ErrorCode::kRejected, "association rejected: A-ASSOCIATE-RJ"), rj);
  EXPECT_EQ(c.outcome, Outcome::kTransient);
  EXPECT_TRUE(c.opens_breaker);
}

TEST(RetryClassify, NotAcceptedNamesSopClassAndTransferSyntax) {
  const auto c = not_accepted("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.90");
  EXPECT_EQ(c.outcome, Outcome::kPermanent);
  EXPECT_EQ(c.reason, "destination did not accept " +
                          dicom::sop_class_name("1.2.840.10008.5.1.4.1.1.2") +
                          " in JPEG 2000 Image Compression (Lossless Only); no transcoding");
}

TEST(RetryClassify, RowsLeftWhenPausedWaitWhateverTheLastResponseSaid) {
  // The response that opened the breaker: its reason is the rows' reason.
  const auto busy = classify_status(0xA700);
  const auto kept = paused_destination(busy, "connection refused");
  EXPECT_EQ(kept.outcome, Outcome::kTransient);
  EXPECT_EQ(kept.reason, busy.reason);
  // Another worker's failures paused it, and this response refused one instance permanently
  // (or delivered it), or there was no response yet: the other rows are not dead, they wait.
  for (const auto& last :
       {std::optional(classify_status(0x0122)), std::optional(classify_status(0xA900)),
        std::optional(classify_status(0)), std::optional<Classification>()}) {
    const auto c = paused_destination(last, "connection refused");
    EXPECT_EQ(c.outcome, Outcome::kTransient);
    EXPECT_EQ(c.status, -1);
    EXPECT_EQ(c.reason, "destination paused: connection refused");
    EXPECT_FALSE(c.counts_for_breaker);
  }
}

TEST(RetryClassify, UnreadableFileIsPermanent) {
  const auto c = unreadable_file("storage/ab/cd: No such file or directory");
  EXPECT_EQ(c.outcome, Outcome::kPermanent);
  EXPECT_EQ(c.reason, "stored file unreadable: storage/ab/cd: No such file or directory");
}

// ---- back-off ----------------------------------------------------------------------------------

TEST(RetryClassify, CorruptStoredFileIsPermanentAMissingKeyWaits) {
  const auto corrupt = unreadable_file(
      core::make_error(core::ErrorCode::kDataLoss,
                       "stored file is corrupt or was altered: segment 1 failed authentication"));
  EXPECT_EQ(corrupt.outcome, Outcome::kPermanent);
  EXPECT_NE(corrupt.reason.find("corrupt"), std::string::npos);
  EXPECT_FALSE(corrupt.counts_for_breaker);
  const auto no_key = unreadable_file(core::make_error(
      core::ErrorCode::kConfig, "stored file is encrypted with key version 1, but ..."));
  EXPECT_EQ(no_key.outcome, Outcome::kTransient);
  EXPECT_FALSE(no_key.counts_for_breaker);
  // Out of file descriptors (EMFILE) is the machine's state, not the file's: it waits.
  const auto no_fds = unreadable_file(
      core::make_error(core::ErrorCode::kResourceExhausted,
                       "out of resources: open storage/ab/cd: Too many open files"));
  EXPECT_EQ(no_fds.outcome, Outcome::kTransient);
  EXPECT_FALSE(corrupt.file_missing);
  EXPECT_FALSE(no_key.file_missing);
}

TEST(RetryClassify, AMissingFileIsPermanentAndFlaggedForTheOverwriteCheck) {
  const auto missing = unreadable_file(
      core::make_error(core::ErrorCode::kNotFound, "cannot open storage/ab/cd: no such file"));
  EXPECT_EQ(missing.outcome, Outcome::kPermanent);
  EXPECT_TRUE(missing.file_missing);
  EXPECT_NE(missing.reason.find("stored file unreadable"), std::string::npos);
}

TEST(RetryClassify, ASupersededRowIsDoneARowWithoutANewerOneIsDueNow) {
  const auto done = superseded(42);
  EXPECT_EQ(done.action, Decision::Action::kComplete);
  EXPECT_EQ(done.result.status, -1);
  EXPECT_FALSE(done.result.warning);
  EXPECT_EQ(done.result.comment.rfind("superseded: ", 0), 0u) << done.result.comment;
  EXPECT_NE(done.result.comment.find("outbox row 42"), std::string::npos);
  const auto again = replaced_meanwhile(5000);
  EXPECT_EQ(again.action, Decision::Action::kReschedule);
  EXPECT_EQ(again.next_attempt_at_ms, 5000);
  EXPECT_EQ(again.result.status, -1);
}

TEST(RetryBackoff, DoublesPerAttemptWithinEqualJitterBounds) {
  const auto r = retry(10, 72h, 5s, 600s);
  // attempts n -> base 5s * 2^(n-1); the wait lies in [base/2, base].
  EXPECT_EQ(backoff(r, 1, fixed(0.0)), 2500ms);
  EXPECT_EQ(backoff(r, 1, fixed(1.0)), 5000ms);
  EXPECT_EQ(backoff(r, 2, fixed(0.0)), 5000ms);
  EXPECT_EQ(backoff(r, 2, fixed(1.0)), 10000ms);
  EXPECT_EQ(backoff(r, 3, fixed(0.5)), 15000ms);
  EXPECT_EQ(backoff(r, 4, fixed(1.0)), 40000ms);
}

TEST(RetryBackoff, IsCappedAtMaxBackoff) {
  const auto r = retry(100, 72h, 5s, 600s);
  EXPECT_EQ(backoff(r, 8, fixed(1.0)), 600000ms);  // 5s * 128 = 640s -> 600s
  EXPECT_EQ(backoff(r, 8, fixed(0.0)), 300000ms);
  EXPECT_EQ(backoff(r, 90, fixed(1.0)), 600000ms);  // no overflow
  EXPECT_EQ(backoff(r, 1000, fixed(0.0)), 300000ms);
}

TEST(RetryBackoff, JitterStaysWithinBoundsAndGrowsMonotonically) {
  const auto r = retry(100, 72h, 1s, 60s);
  std::uint64_t state = 42;
  Random lcg = [&state]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
  };
  for (int run = 0; run < 200; ++run) {
    milliseconds previous{0};
    for (int attempts = 1; attempts <= 12; ++attempts) {
      const auto base = std::min<milliseconds>(60s, milliseconds(1000LL << (attempts - 1)));
      const auto wait = backoff(r, attempts, lcg);
      EXPECT_GE(wait, base / 2);
      EXPECT_LE(wait, base);
      // Equal jitter: each wait is at least the previous one (until the cap).
      if (base < 60s) {
        EXPECT_GE(wait, previous);
      }
      previous = wait;
    }
  }
}

// ---- decisions ---------------------------------------------------------------------------------

TEST(RetryDecide, DeliveredCompletesAndWarningIsFlagged) {
  const auto r = retry();
  auto d = decide(classify_status(0x0000), item(1), r, 1000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kComplete);
  EXPECT_FALSE(d.result.warning);
  EXPECT_EQ(d.result.status, 0);
  d = decide(classify_status(0xB000, "coerced"), item(1), r, 1000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kComplete);
  EXPECT_TRUE(d.result.warning);
  EXPECT_EQ(d.result.status, 0xB000);
  EXPECT_NE(d.result.comment.find("coerced"), std::string::npos);
}

TEST(RetryDecide, PermanentFailsAtOnce) {
  const auto d = decide(classify_status(0xC000), item(1), retry(), 1000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kFail);
  EXPECT_EQ(d.result.status, 0xC000);
  EXPECT_EQ(d.result.comment, "status 0xC000 (error: cannot understand)");
}

TEST(RetryDecide, TransientIsRescheduledWithBackoff) {
  const auto c = classify_association_failure(
      core::make_error(core::ErrorCode::kIo, "connect to 127.0.0.1:1: Connection refused"));
  const std::int64_t now = 10 * kHour;
  const auto d = decide(c, item(3, now - 1000), retry(10, 72h, 5s, 600s), now, fixed(1.0));
  EXPECT_EQ(d.action, Decision::Action::kReschedule);
  EXPECT_EQ(d.next_attempt_at_ms, now + 20000);
  EXPECT_EQ(d.result.status, -1);
  EXPECT_EQ(d.result.comment, "connect to 127.0.0.1:1: Connection refused");
}

TEST(RetryDecide, GivesUpAfterMaxAttempts) {
  const auto c = classify_status(0xA700);
  const std::int64_t created = 0;
  const std::int64_t now = 2 * kHour + 5 * 60 * 1000;
  auto d = decide(c, item(4, created), retry(5), now, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kReschedule);
  d = decide(c, item(5, created), retry(5), now, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kFail);
  EXPECT_EQ(d.result.status, 0xA700);
  EXPECT_EQ(d.result.comment,
            "gave up after 5 attempts over 2h5m: status 0xA700 (refused: out of resources)");
}

TEST(RetryDecide, GivesUpAfterMaxAge) {
  const auto c = classify_association_failure(core::make_error(core::ErrorCode::kTimeout, "t/o"));
  const std::int64_t created = 1000;
  const auto r = retry(100, 1h);
  auto d = decide(c, item(2, created), r, created + kHour - 1, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kReschedule);
  // Never scheduled past the deadline: the last attempt happens at max_age.
  EXPECT_EQ(d.next_attempt_at_ms, created + kHour);
  d = decide(c, item(3, created), r, created + kHour, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kFail);
  EXPECT_EQ(d.result.comment, "gave up after 3 attempts over 1h: t/o");
}

TEST(RetryDecide, MaxAgeCountsFromTheOperatorsLastRetry) {
  const auto c = classify_association_failure(core::make_error(core::ErrorCode::kTimeout, "t/o"));
  const auto r = retry(100, 1h);
  auto row = item(1, 1000);
  row.retried_at_ms = 1000 + 5 * kHour;  // dead of old age, then retried
  auto d = decide(c, row, r, row.retried_at_ms + 60'000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kReschedule);
  d = decide(c, row, r, row.retried_at_ms + kHour - 1, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kReschedule);
  EXPECT_EQ(d.next_attempt_at_ms, row.retried_at_ms + kHour);
  d = decide(c, row, r, row.retried_at_ms + kHour, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kFail);
  EXPECT_EQ(d.result.comment, "gave up after 1 attempt over 1h: t/o");
}

TEST(RetryDecide, OneAttemptIsSingular) {
  const auto c = classify_status(0xA701);
  const auto d = decide(c, item(1, 0), retry(1), 45000, fixed(0.5));
  EXPECT_EQ(d.action, Decision::Action::kFail);
  EXPECT_EQ(d.result.comment.rfind("gave up after 1 attempt over 45s: ", 0), 0u)
      << d.result.comment;
}

TEST(RetryFormatDuration, TwoUnitsAtMost) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(45s), "45s");
  EXPECT_EQ(format_duration(200s), "3m20s");
  EXPECT_EQ(format_duration(180s), "3m");
  EXPECT_EQ(format_duration(2h + 5min + 7s), "2h5m");
  EXPECT_EQ(format_duration(3 * 24h + 4h), "3d4h");
  EXPECT_EQ(format_duration(72h), "3d");
}

}  // namespace
}  // namespace gw::queue
