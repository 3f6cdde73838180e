#pragma once
/// Which block device holds a directory, and whether it is encrypted by dm-crypt (LUKS or
/// plain), directly or underneath (LVM on LUKS): read from /sys/dev/block/<major>:<minor>/dm/uuid
/// ("CRYPT-LUKS2-…") and the device's slaves/. For /status (ADR 010); never fails, it only
/// says what it could see.

#include <filesystem>
#include <string>

namespace gw::storage {

struct VolumeInfo {
  std::string device;      ///< "253:0" (major:minor of the file system's device); "" unknown
  std::string dm_name;     ///< device-mapper name ("dicom-storage"), "" when not dm
  bool dm_crypt = false;   ///< the file system sits on a dm-crypt device (at any depth)
  std::string crypt_type;  ///< "LUKS2", "LUKS1", "PLAIN"… from the dm uuid; "" when not crypt
};

VolumeInfo volume_info(const std::filesystem::path& directory);

/// The same, starting at a /sys/dev/block/<major>:<minor> directory (tests use a fake tree).
VolumeInfo volume_info_from_sysfs(const std::filesystem::path& sys_block_dir,
                                  const std::string& device);

}  // namespace gw::storage
