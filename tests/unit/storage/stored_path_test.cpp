// Paths read from the index: only relative paths under storage/ name a stored file.
#include "storage/stored_path.h"

#include <gtest/gtest.h>

namespace gw::storage {
namespace {

TEST(StoredPath, PathsTheStoreMakesAreAccepted) {
  EXPECT_TRUE(is_storage_relative("storage/ab/0123456789abcdef0123456789abcdef.dcm"));
  EXPECT_TRUE(is_storage_relative("storage/node-2/ab/0123456789abcdef0123456789abcdef.dcm"));
  auto path = stored_file_path("/var/lib/dicom-gw", "storage/ab/x.dcm");
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(*path, std::filesystem::path("/var/lib/dicom-gw/storage/ab/x.dcm"));
}

TEST(StoredPath, AnythingThatCouldLeaveStorageIsRefused) {
  for (const char* bad :
       {"", "/etc/shadow", "storage", "storagex/ab/x.dcm", "index.db", "storage/../config.yaml",
        "storage/ab/../../index.db", "storage/./x", "./storage/ab/x.dcm", "//storage/ab/x.dcm"}) {
    EXPECT_FALSE(is_storage_relative(bad)) << bad;
    auto path = stored_file_path("/var/lib/dicom-gw", bad);
    ASSERT_FALSE(path.ok()) << bad;
    EXPECT_EQ(path.error().code, core::ErrorCode::kInvalidArgument);
    EXPECT_NE(path.error().message.find("outside storage/"), std::string::npos);
  }
}

}  // namespace
}  // namespace gw::storage
