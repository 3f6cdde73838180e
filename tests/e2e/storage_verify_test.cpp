// `dicom-gw storage verify` next to a serving gateway: instances sent with `dicom-gw send`, one
// stored file changed on disk (same size), one deleted; the command names both and exits 1, a
// resend of each repairs it and the command then exits 0. Each run leaves an audit row.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

CommandResult send_files(std::uint16_t port, const std::vector<fs::path>& files) {
  std::vector<std::string> argv{gateway_binary().string(), "send", "--no-progress", "127.0.0.1",
                                std::to_string(port)};
  for (const auto& f : files) argv.push_back(f.string());
  return run_command(argv, {}, std::chrono::seconds(120));
}

CommandResult verify(const Gateway& gw, const std::vector<std::string>& options = {}) {
  std::vector<std::string> argv{gateway_binary().string(), "storage", "verify", "--config",
                                gw.config_path().string()};
  argv.insert(argv.end(), options.begin(), options.end());
  return run_command(argv, {}, std::chrono::seconds(120));
}

std::string both(const CommandResult& r) { return r.out + r.err; }

void flip_middle_byte(const fs::path& file) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  const auto middle = static_cast<std::streamoff>(fs::file_size(file) / 2);
  f.seekg(middle);
  const char byte = static_cast<char>(f.get() ^ 0x5a);
  f.seekp(middle);
  f.put(byte);
  ASSERT_TRUE(f.good());
}

TEST(StorageVerify, NamesChangedAndMissingFilesAndAResendRepairsThem) {
  TempDir dir("gw-storage-verify");
  const auto files = generate_dicom(dir / "source", {"--count", "5", "--seed", "41"});
  ASSERT_EQ(files.size(), 5u);
  auto gw = Gateway::start(GatewayOptions{});
  ASSERT_TRUE(send_files(gw->port(), files).ok());

  const CommandResult clean = verify(*gw);
  EXPECT_EQ(clean.exit_code, 0) << both(clean);
  EXPECT_NE(clean.out.find("5 rows checked: 5 intact, 0 missing"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("0 orphan files"), std::string::npos) << clean.out;

  const std::string rotten_uid = sop_instance_uid_of(files[1]);
  const std::string lost_uid = sop_instance_uid_of(files[3]);
  const auto rotten = gw->stored_file(rotten_uid);
  const auto lost = gw->stored_file(lost_uid);
  ASSERT_TRUE(rotten && lost);
  flip_middle_byte(*rotten);
  fs::remove(*lost);

  const CommandResult damaged = verify(*gw);
  EXPECT_EQ(damaged.exit_code, 1) << both(damaged);
  EXPECT_NE(damaged.out.find("content changed: "), std::string::npos) << damaged.out;
  EXPECT_NE(damaged.out.find("(SOP Instance UID " + rotten_uid + ")"), std::string::npos)
      << damaged.out;
  EXPECT_NE(damaged.out.find("missing: "), std::string::npos) << damaged.out;
  EXPECT_NE(damaged.out.find("(SOP Instance UID " + lost_uid + ")"), std::string::npos)
      << damaged.out;
  EXPECT_NE(damaged.out.find("3 intact, 1 missing, 0 wrong size, 1 content changed"),
            std::string::npos)
      << damaged.out;
  // Presence and size alone do not see the changed byte.
  const CommandResult sizes = verify(*gw, {"--sizes-only", "--no-orphans"});
  EXPECT_EQ(sizes.exit_code, 1) << both(sizes);
  EXPECT_NE(sizes.out.find("4 intact, 1 missing"), std::string::npos) << sizes.out;
  EXPECT_EQ(sizes.out.find("orphan"), std::string::npos) << sizes.out;

  // The sender's copies are the bytes received: sending them again replaces the bad copies
  // (storage.duplicates: keep-first, the default).
  const CommandResult resend = send_files(gw->port(), {files[1], files[3]});
  EXPECT_TRUE(resend.ok()) << both(resend);
  const CommandResult repaired = verify(*gw, {"--max-mb-per-s", "1000"});
  EXPECT_EQ(repaired.exit_code, 0) << both(repaired);
  EXPECT_NE(repaired.out.find("5 intact"), std::string::npos) << repaired.out;

  const auto audit =
      run_command({"sqlite3", (gw->data_dir() / "index.db").string(),
                   "SELECT outcome FROM audit WHERE action = 'storage.verify' ORDER BY id"});
  EXPECT_EQ(audit.out, "ok\nfailed\nfailed\nok\n") << both(audit);
}

// The API's download reads the same check as the forwarder: a stored file that changed on
// disk never arrives whole at the client (the body ends short of its Content-Length); an
// intact one downloads bit-exact.
TEST(StorageVerify, TheApiNeverHandsOutAChangedFileWhole) {
  TempDir dir("gw-storage-download");
  const auto files =
      generate_dicom(dir / "source", {"--count", "2", "--seed", "43", "--size-kib", "2048"});
  GatewayOptions o;
  o.http = true;
  auto gw = Gateway::start(o);
  ASSERT_TRUE(send_files(gw->port(), files).ok());
  const auto cli = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), gateway_binary().string());
    args.insert(args.end(), {"--config", gw->config_path().string()});
    return run_command_with_input(args, input, {}, std::chrono::seconds(60));
  };
  ASSERT_TRUE(
      cli({"user", "add", "--name", "op", "--role", "operator"}, "operator password, long enough\n")
          .ok());
  auto token = cli({"user", "token", "--name", "op", "--ttl", "1h"}).out;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  const auto download = [&](const std::string& uid, const fs::path& out) {
    return run_command({"curl", "-sS", "--fail", "--max-time", "30", "-o", out.string(), "-H",
                        "Authorization: Bearer " + token,
                        "http://127.0.0.1:" + std::to_string(gw->http_port()) +
                            "/api/v1/instances/" + uid + "/file"},
                       {}, std::chrono::seconds(60));
  };

  const std::string good_uid = sop_instance_uid_of(files[0]);
  const auto good = download(good_uid, dir / "good.dcm");
  ASSERT_TRUE(good.ok()) << good.err;
  EXPECT_TRUE(data_set_bytes(dir / "good.dcm") == data_set_bytes(files[0]));

  const std::string rotten_uid = sop_instance_uid_of(files[1]);
  const auto rotten = gw->stored_file(rotten_uid);
  ASSERT_TRUE(rotten);
  flip_middle_byte(*rotten);
  const auto bad = download(rotten_uid, dir / "bad.dcm");
  EXPECT_FALSE(bad.ok()) << "a changed file was handed out whole";
  EXPECT_LT(fs::exists(dir / "bad.dcm") ? fs::file_size(dir / "bad.dcm") : 0,
            fs::file_size(*rotten));
  EXPECT_NE(gw->log().find("event=download_digest_mismatch sop_instance_uid=" + rotten_uid),
            std::string::npos)
      << gw->log();
  // The gateway goes on serving.
  EXPECT_TRUE(download(good_uid, dir / "again.dcm").ok());
}

TEST(StorageVerify, RefusesABadRateAndABadConfig) {
  auto gw = Gateway::start(GatewayOptions{});
  const CommandResult rate = verify(*gw, {"--max-mb-per-s", "-1"});
  EXPECT_EQ(rate.exit_code, 2) << both(rate);
  EXPECT_NE(rate.err.find("--max-mb-per-s"), std::string::npos) << rate.err;
  const CommandResult config = run_command(
      {gateway_binary().string(), "storage", "verify", "--config", "/nonexistent/config.yaml"});
  EXPECT_EQ(config.exit_code, 2) << both(config);
}

}  // namespace
}  // namespace gw::test
