// dm-crypt detection for /status, on fake /sys/dev/block trees (and once on the real one).
#include "storage/volume_info.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace gw::storage {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text << "\n";
}

TEST(VolumeInfo, APlainDiskIsNotEncrypted) {
  test::TempDir dir("gw-volume");
  fs::create_directories(dir.path() / "devices" / "sda1");
  fs::create_directory_symlink(dir.path() / "devices" / "sda1", dir.path() / "8:1");
  const auto info = volume_info_from_sysfs(dir.path(), "8:1");
  EXPECT_EQ(info.device, "8:1");
  EXPECT_FALSE(info.dm_crypt);
  EXPECT_TRUE(info.dm_name.empty());
}

TEST(VolumeInfo, ALuksDeviceIsSeenWithItsType) {
  test::TempDir dir("gw-volume");
  const auto dm = dir.path() / "devices" / "dm-0";
  write(dm / "dm" / "uuid", "CRYPT-LUKS2-4f1c0d8e2b7a4e7f9d3c1a2b3c4d5e6f-dicom-storage");
  write(dm / "dm" / "name", "dicom-storage");
  fs::create_directory_symlink(dm, dir.path() / "253:0");
  const auto info = volume_info_from_sysfs(dir.path(), "253:0");
  EXPECT_TRUE(info.dm_crypt);
  EXPECT_EQ(info.crypt_type, "LUKS2");
  EXPECT_EQ(info.dm_name, "dicom-storage");
}

TEST(VolumeInfo, LvmOnLuksIsSeenThroughTheSlaves) {
  test::TempDir dir("gw-volume");
  const auto crypt = dir.path() / "devices" / "dm-0";
  write(crypt / "dm" / "uuid", "CRYPT-LUKS1-0123-cryptroot");
  const auto lvm = dir.path() / "devices" / "dm-1";
  write(lvm / "dm" / "uuid", "LVM-abcdef");
  write(lvm / "dm" / "name", "vg-data");
  fs::create_directories(lvm / "slaves");
  fs::create_directory_symlink(crypt, lvm / "slaves" / "dm-0");
  fs::create_directory_symlink(lvm, dir.path() / "253:1");
  const auto info = volume_info_from_sysfs(dir.path(), "253:1");
  EXPECT_TRUE(info.dm_crypt);
  EXPECT_EQ(info.crypt_type, "LUKS1");
  EXPECT_EQ(info.dm_name, "vg-data");
}

TEST(VolumeInfo, AnUnknownDeviceSaysNothingAndNeverFails) {
  test::TempDir dir("gw-volume");
  const auto info = volume_info_from_sysfs(dir.path(), "1:2");
  EXPECT_FALSE(info.dm_crypt);
  // The real machine: whatever it is, the call answers.
  const auto real = volume_info("/");
  EXPECT_FALSE(real.device.empty());
}

}  // namespace
}  // namespace gw::storage
