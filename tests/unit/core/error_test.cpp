#include "core/error.h"

#include <gtest/gtest.h>

namespace gw::core {
namespace {

TEST(ErrorDimseStatus, FailuresThatPassAreRefusalsSendersRetry) {
  // A concurrent store of the same instance, a database serialization failure: "send it
  // again". 0x0110 would end the sender's attempts (ADR 014's windowed resends met it).
  EXPECT_EQ(dimse_status(ErrorCode::kConflict), 0xA700);
  EXPECT_EQ(dimse_status(ErrorCode::kResourceExhausted), 0xA700);
  EXPECT_EQ(dimse_status(ErrorCode::kDatabase), 0xA700);
  EXPECT_EQ(dimse_status(ErrorCode::kIo), 0xA700);
}

TEST(ErrorDimseStatus, FailuresOfTheDataSetItselfAreFinal) {
  EXPECT_EQ(dimse_status(ErrorCode::kInvalidArgument), 0xC000);
  EXPECT_EQ(dimse_status(ErrorCode::kAlreadyExists), 0x0111);
  EXPECT_EQ(dimse_status(ErrorCode::kUnsupported), 0x0122);
  EXPECT_EQ(dimse_status(ErrorCode::kDataLoss), 0x0110);
}

}  // namespace
}  // namespace gw::core
