#include "storage/file_ops.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace gw::storage {
namespace {

TEST(ErrnoError, FullDiskAndNoDescriptorsAreResourceExhaustedTheRestIo) {
  const auto full = errno_error(ENOSPC, "write", "/data/spool/x");
  EXPECT_EQ(full.code, core::ErrorCode::kResourceExhausted);
  EXPECT_EQ(full.message, "disk full: write /data/spool/x: No space left on device");
  for (int err : {EMFILE, ENFILE, ENOMEM}) {
    const auto e = errno_error(err, "open", "/data/storage/ab/cd");
    EXPECT_EQ(e.code, core::ErrorCode::kResourceExhausted) << err;
    EXPECT_TRUE(e.message.starts_with("out of resources: open /data/storage/ab/cd: ")) << e.message;
  }
  const auto denied = errno_error(EACCES, "open", "/data/storage/ab/cd");
  EXPECT_EQ(denied.code, core::ErrorCode::kIo);
  EXPECT_EQ(denied.message, "open /data/storage/ab/cd: Permission denied");
}

}  // namespace
}  // namespace gw::storage
