// Disk full: the gateway's data dir (storage, spool and the SQLite index) on a 6 MiB tmpfs.
// Instances that do not fit are answered 0xA700 (out of resources), never success and never a
// hang; nothing half-written stays behind; the gateway keeps serving and, once space is freed,
// stores again without a restart.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "e2e/e2e_helpers.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

constexpr int kInstances = 40;
constexpr std::size_t kBallastBytes = 2u << 20;
/// Concurrent associations: the index then commits several instances per transaction (group
/// commit), so a full disk also hits a batch, whose every member must get the failure.
constexpr int kParallel = 3;

/// A tmpfs mounted on `dir` for the lifetime of this object; lazily unmounted (umount -l) at
/// destruction, whatever happened in between.
class TmpfsMount {
 public:
  TmpfsMount(const fs::path& dir, const std::string& size) : dir_(dir) {
    const std::string options = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      error_ = std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

/// Writes `bytes` of real (non-sparse) data, so tmpfs pages are really used.
void write_ballast(const fs::path& path, std::size_t bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string chunk(64 * 1024, 'B');
  for (std::size_t written = 0; written < bytes; written += chunk.size()) {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write ballast " + path.string());
}

/// `dicom-gw send --report REPORT -j PARALLEL 127.0.0.1 PORT INPUTS...`.
std::vector<std::string> send_argv(std::uint16_t port, const fs::path& report, int parallel,
                                   const std::vector<fs::path>& inputs) {
  std::vector<std::string> argv = {gateway_binary().string(), "send", "--aec", "DICOM_GW"};
  argv.insert(argv.end(), {"--report", report.string(), "--no-progress"});
  argv.insert(argv.end(), {"-j", std::to_string(parallel), "127.0.0.1", std::to_string(port)});
  for (const auto& in : inputs) argv.push_back(in.string());
  return argv;
}

TEST(DiskFull, OutOfSpaceAnswersA700AndRecoversWhenSpaceIsFreed) {
  TempDir dir("gw-diskfull");
  const fs::path mount_point = dir.subdir("tmpfs");
  TmpfsMount tmpfs(mount_point, "6m");
  ASSERT_TRUE(tmpfs.mounted())
      << "mount -t tmpfs -o size=6m tmpfs " << mount_point << " failed: " << tmpfs.error()
      << ". This test needs root (CAP_SYS_ADMIN) to mount a small tmpfs as the full disk.";

  const auto files = generate_dicom(dir / "source", {"--count", std::to_string(kInstances),
                                                     "--size-kib", "256", "--seed", "4040"});
  ASSERT_EQ(files.size(), static_cast<std::size_t>(kInstances));
  std::map<std::string, fs::path> source_by_uid;
  for (const auto& f : files) source_by_uid[sop_instance_uid_of(f)] = f;

  const fs::path ballast = mount_point / "ballast.bin";
  write_ballast(ballast, kBallastBytes);

  GatewayOptions options;
  options.data_dir = mount_point / "data";
  options.shutdown_grace_s = 0;
  options.min_free_mb = 0;  // no reserve: the disk really fills up (the reserve: below)
  auto gw = Gateway::start(options);

  // The first files (in order, round-robin over the associations) fit, later ones do not.
  const fs::path report = dir / "report.txt";
  const CommandResult sent =
      run_command(send_argv(gw->port(), report, kParallel, files), {}, std::chrono::seconds(120));
  ASSERT_FALSE(sent.timed_out) << "dicom-gw send hung against a full disk:\n" << sent.err;
  EXPECT_EQ(sent.exit_code, 1) << "some instances must fail:\n" << sent.out << sent.err;

  const auto lines = read_send_report(report);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kInstances)) << sent.out << sent.err;
  std::set<std::string> ok_uids;
  std::vector<std::string> failed_uids;
  for (const auto& line : lines) {
    ASSERT_FALSE(line.sop_instance_uid.empty()) << "malformed report line: " << line.raw;
    if (line.ok) {
      EXPECT_EQ(line.status, "0x0000") << line.raw;
      ok_uids.insert(line.sop_instance_uid);
    } else {
      EXPECT_EQ(line.status, "0xA700") << "expected out of resources: " << line.raw;
      failed_uids.push_back(line.sop_instance_uid);
    }
  }
  std::cout << "stored " << ok_uids.size() << ", refused " << failed_uids.size() << " of "
            << kInstances << "\n";
  std::map<std::string, int> reasons;  // where it failed: spool write, index commit, ...
  for (const auto& line : lines) {
    if (!line.ok) ++reasons[line.reason.substr(0, line.reason.find(':'))];
  }
  for (const auto& [reason, n] : reasons) std::cout << "  " << n << " x " << reason << "\n";
  EXPECT_TRUE(lines.front().ok) << "the first instance must fit: " << lines.front().raw;
  ASSERT_FALSE(failed_uids.empty()) << "the disk never filled up";
  ASSERT_FALSE(ok_uids.empty());

  // The gateway is still up and answering.
  ASSERT_TRUE(gw->process().running()) << gw->log();
  const CommandResult echo = gateway_echo(gw->port());
  EXPECT_TRUE(echo.ok()) << echo.out << echo.err;

  // Index == what was acknowledged; every indexed file complete; no stray files anywhere.
  const auto indexed = gw->sop_instance_uids();
  const std::set<std::string> indexed_set(indexed.begin(), indexed.end());
  for (const auto& uid : ok_uids) {
    EXPECT_TRUE(indexed_set.contains(uid)) << "acknowledged but not indexed: " << uid;
  }
  for (const auto& uid : failed_uids) {
    EXPECT_FALSE(indexed_set.contains(uid)) << "answered a failure but indexed: " << uid;
  }
  std::set<fs::path> indexed_files;
  for (const auto& uid : indexed) {
    const auto stored = gw->stored_file(uid);
    ASSERT_TRUE(stored.has_value()) << uid;
    ASSERT_TRUE(fs::is_regular_file(*stored)) << "indexed file missing: " << *stored;
    indexed_files.insert(fs::canonical(*stored));
    const auto source = source_by_uid.find(uid);
    ASSERT_NE(source, source_by_uid.end()) << uid;
    EXPECT_EQ(data_set_bytes(*stored), data_set_bytes(source->second))
        << "stored data set differs from " << source->second;
  }
  for (const auto& f : gw->storage_files()) {
    EXPECT_TRUE(indexed_files.contains(fs::canonical(f)))
        << "file in storage/ without an index row: " << f << " (" << fs::file_size(f) << " bytes)";
  }
  EXPECT_TRUE(gw->spool_files().empty()) << "spool leftovers after failed stores";

  // Free space; the gateway must store again without a restart.
  fs::remove(ballast);
  const fs::path retry = source_by_uid.at(failed_uids.front());
  const fs::path report2 = dir / "report-after-free.txt";
  const CommandResult again =
      run_command(send_argv(gw->port(), report2, 1, {retry}), {}, std::chrono::seconds(60));
  EXPECT_TRUE(again.ok()) << again.out << again.err << "\n" << gw->log();
  const auto lines2 = read_send_report(report2);
  ASSERT_EQ(lines2.size(), 1u);
  EXPECT_TRUE(lines2[0].ok) << lines2[0].raw;
  const auto stored = gw->stored_file(failed_uids.front());
  ASSERT_TRUE(stored.has_value()) << "not indexed after space was freed";
  EXPECT_EQ(data_set_bytes(*stored), data_set_bytes(retry));
  EXPECT_EQ(gw->count_instances(), static_cast<std::int64_t>(ok_uids.size() + 1));
  EXPECT_TRUE(gw->spool_files().empty());

  EXPECT_TRUE(gw->process().running());
  gw->stop();
}

// storage.min_free_mb: below the reserve new instances are refused with 0xA700 and a plain
// reason while the disk still has room (for the index, the queue, the logs); once space is
// freed the gateway stores again without a restart.
TEST(DiskFull, BelowTheFreeSpaceReserveNewInstancesAreRefused) {
  TempDir dir("gw-reserve");
  const fs::path mount_point = dir.subdir("tmpfs");
  TmpfsMount tmpfs(mount_point, "24m");
  ASSERT_TRUE(tmpfs.mounted()) << "mount -t tmpfs failed: " << tmpfs.error()
                               << ". This test needs root (CAP_SYS_ADMIN).";
  const auto files =
      generate_dicom(dir / "source", {"--count", "24", "--size-kib", "256", "--seed", "4141"});
  // 24 MiB - 12 MiB of ballast leaves about 12 MiB; the reserve is 8 MiB: about 4 MiB of
  // instances fit (the index and spool take a little), the rest are refused.
  const fs::path ballast = mount_point / "ballast.bin";
  write_ballast(ballast, 12u << 20);

  GatewayOptions options;
  options.data_dir = mount_point / "data";
  options.shutdown_grace_s = 0;
  options.min_free_mb = 8;
  auto gw = Gateway::start(options);

  const fs::path report = dir / "report.txt";
  const CommandResult sent =
      run_command(send_argv(gw->port(), report, 1, files), {}, std::chrono::seconds(120));
  ASSERT_FALSE(sent.timed_out) << sent.err;
  EXPECT_EQ(sent.exit_code, 1) << sent.out << sent.err;
  const auto lines = read_send_report(report);
  ASSERT_EQ(lines.size(), files.size()) << sent.out << sent.err;
  std::size_t stored = 0;
  std::size_t refused = 0;
  for (const auto& line : lines) {
    if (line.ok) {
      ++stored;
      EXPECT_EQ(refused, 0u) << "stored after a refusal with nothing freed: " << line.raw;
      continue;
    }
    ++refused;
    EXPECT_EQ(line.status, "0xA700") << line.raw;
    EXPECT_NE(line.reason.find("below its free-space reserve"), std::string::npos) << line.raw;
  }
  EXPECT_GT(stored, 0u);
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(gw->count_instances(), static_cast<std::int64_t>(stored));
  EXPECT_TRUE(gw->spool_files().empty()) << "spool leftovers after refusals";
  // The disk itself never filled: the reserve is still there for the index and the logs.
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(mount_point.c_str(), &vfs), 0);
  EXPECT_GT(static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize, 6u << 20);
  EXPECT_NE(gw->log().find("event=storage_reserve_reached"), std::string::npos) << gw->log();

  // Space freed: stored again, no restart.
  fs::remove(ballast);
  const fs::path report2 = dir / "report-after-free.txt";
  const CommandResult again =
      run_command(send_argv(gw->port(), report2, 1, {files.back()}), {}, std::chrono::seconds(60));
  EXPECT_TRUE(again.ok()) << again.out << again.err;
  EXPECT_EQ(gw->count_instances(), static_cast<std::int64_t>(stored + 1));
  EXPECT_NE(gw->log().find("event=storage_reserve_cleared"), std::string::npos) << gw->log();
  gw->stop();
}

}  // namespace
}  // namespace gw::test
