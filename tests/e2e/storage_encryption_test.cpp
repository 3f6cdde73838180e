// storage.encrypt (ADR 010, "Files"): `dicom-gw send` -> `dicom-gw serve` with encrypted
// storage -> DCMTK storescp. The stored files hold no readable patient data, what arrives is
// the data set exactly as sent, a stored file altered on disk is never forwarded (its queue item
// goes dead, the destination keeps nothing of it), and the gateway refuses to start with
// storage.encrypt but no key.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// A test key of the documented shape (`openssl rand -base64 32`: 44 characters).
constexpr const char* kKey = "dGVzdC1rZXktZm9yLXN0b3JhZ2UtZW5jcnlwdGlvbiE=";
constexpr const char* kKeyEnv = "DICOM_GW_DB_ENCRYPTION_KEY";
/// The encrypted file layout (src/storage/encrypted_file.h): header, then 64 KiB segments each
/// followed by a 16-byte tag.
constexpr std::size_t kHeaderSize = 152;
constexpr std::size_t kSegmentOnDisk = 65536 + 16;

constexpr const char* kFastRetry =
    "retry:\n  initial_backoff: 1s\n  max_backoff: 2s\n"
    "forwarding:\n  association_idle_timeout: 2s\n  probe_interval: 1s\n";

Env key_env() { return {{kKeyEnv, kKey}}; }

std::string raw_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::vector<std::uint8_t>> data_sets(const std::vector<fs::path>& files) {
  std::vector<std::vector<std::uint8_t>> out;
  out.reserve(files.size());
  for (const auto& f : files) out.push_back(data_set_bytes(f));
  std::sort(out.begin(), out.end());
  return out;
}

json queue_rows(const Gateway& gw) {
  const auto r = run_command({gateway_binary().string(), "queue", "list", "--config",
                              gw.config_path().string(), "--limit", "1000", "--json"},
                             key_env(), std::chrono::seconds(30));
  EXPECT_TRUE(r.ok()) << r.out << r.err;
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

std::size_t count_state(const json& rows, const std::string& state) {
  if (!rows.is_array()) return 0;
  return static_cast<std::size_t>(std::count_if(
      rows.begin(), rows.end(), [&](const json& r) { return r.value("state", "") == state; }));
}

CommandResult gw_send(std::uint16_t port, const std::vector<fs::path>& files) {
  std::vector<std::string> argv{
      gateway_binary().string(), "send", "--aec", "DICOM_GW", "--no-progress", "127.0.0.1",
      std::to_string(port)};
  for (const auto& f : files) argv.push_back(f.string());
  return run_command(argv, {}, std::chrono::seconds(120));
}

/// `destination_keys`: more keys of the destination entry (", key: value, ...").
GatewayOptions encrypted_gateway(std::uint16_t destination_port,
                                 const std::string& destination_ae = "STORESCP",
                                 const std::string& destination_keys = "") {
  GatewayOptions o;
  o.encrypt = true;
  o.env = key_env();
  o.extra_yaml = "destinations:\n  - {name: PACS, ae_title: " + destination_ae +
                 ", host: 127.0.0.1, port: " + std::to_string(destination_port) + destination_keys +
                 "}\n" + "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry;
  return o;
}

/// Waits until all but one of `rows` outbox rows are delivered and that one is dead.
bool all_delivered_but_one_dead(const Gateway& gw, std::size_t rows) {
  return wait_until(
      [&]() {
        const auto all = queue_rows(gw);
        return count_state(all, "delivered") == rows - 1 && count_state(all, "dead") == 1;
      },
      std::chrono::seconds(90));
}

/// Flips one bit of the second encrypted segment of `stored`: found only once a transfer of it
/// has begun (opening a file checks its header and last segment).
void alter_second_segment(const fs::path& stored) {
  ASSERT_GT(fs::file_size(stored), kHeaderSize + 2 * kSegmentOnDisk);
  std::fstream f(stored, std::ios::in | std::ios::out | std::ios::binary);
  const auto at = static_cast<std::streamoff>(kHeaderSize + kSegmentOnDisk + 1000);
  f.seekg(at);
  char byte = 0;
  f.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x01);
  f.seekp(at);
  f.write(&byte, 1);
  ASSERT_TRUE(f.good());
}

class StorageEncryptionTest : public ::testing::Test {
 protected:
  TempDir dir_{"gw-e2e-storage-encryption"};
};

TEST_F(StorageEncryptionTest, StoredFilesAreCiphertextAndForwardBitExact) {
  // Several segments per file (about 150 KiB), three instances in three uncompressed syntaxes
  // (--mix cycles implicit, explicit and big endian first; a deflated data set of odd length
  // would arrive with its PS3.5 pad byte, which is no encryption matter).
  const auto files = generate_dicom(dir_ / "source",
                                    {"--count", "3", "--mix", "--size-kib", "150", "--seed", "61"});
  StoreScp scp = start_storescp(0, dir_.subdir("received"));
  auto gw = Gateway::start(encrypted_gateway(scp.port));

  const auto sent = gw_send(gw->port(), files);
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err << gw->log();
  ASSERT_EQ(gw->count_instances(), static_cast<std::int64_t>(files.size())) << gw->log();

  // (a) On disk: no patient name, no SOP Instance UID, no stretch of the data set.
  for (const auto& source : files) {
    const auto uid = sop_instance_uid_of(source);
    const auto stored = gw->stored_file(uid);
    ASSERT_TRUE(stored.has_value()) << uid;
    const auto raw = raw_text(*stored);
    EXPECT_EQ(raw.rfind("DGWENC01", 0), 0u) << *stored;
    EXPECT_EQ(raw.find("TEST^PATIENT"), std::string::npos) << *stored;
    EXPECT_EQ(raw.find(uid), std::string::npos) << *stored;
    // "DICM" and its first element's tag, (0002,0000): four bytes alone turn up in about one
    // ciphertext in 10^4 of this size.
    EXPECT_EQ(raw.find(std::string("DICM\x02\x00\x00\x00", 8)), std::string::npos) << *stored;
    const auto plain = data_set_bytes(source);
    ASSERT_GT(plain.size(), 64u);
    const std::string stretch(plain.begin() + static_cast<std::ptrdiff_t>(plain.size() / 2),
                              plain.begin() + static_cast<std::ptrdiff_t>(plain.size() / 2 + 32));
    EXPECT_EQ(raw.find(stretch), std::string::npos) << *stored;
  }
  EXPECT_TRUE(gw->spool_files().empty());

  // (b) What arrives is the data set as sent (`send` does not re-encode).
  ASSERT_TRUE(wait_until([&]() { return gw->count_outbox("delivered") >= std::ssize(files); },
                         std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(data_sets(scp.received_files()), data_sets(files));
  EXPECT_TRUE(
      wait_until([&]() { return count_state(queue_rows(*gw), "delivered") == files.size(); },
                 std::chrono::seconds(20)))
      << queue_rows(*gw).dump(1);
  // The index describes the plaintext Part 10 file.
  for (const auto& row : queue_rows(*gw)) {
    const auto stored = gw->data_dir() / row.value("storage_path", "");
    EXPECT_LT(row.value("size_bytes", std::int64_t{0}),
              static_cast<std::int64_t>(fs::file_size(stored)));
  }
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(StorageEncryptionTest, AnAlteredStoredFileIsNeverForwarded) {
  const auto files =
      generate_dicom(dir_ / "source", {"--count", "4", "--size-kib", "200", "--seed", "62"});
  const std::uint16_t port = free_tcp_port();  // the destination is down for now
  auto gw = Gateway::start(encrypted_gateway(port));
  ASSERT_TRUE(gw_send(gw->port(), files).ok()) << gw->log();
  ASSERT_EQ(gw->count_instances(), static_cast<std::int64_t>(files.size())) << gw->log();

  // One bit of the second segment of one stored file: the association is aborted mid-transfer.
  const std::string victim = sop_instance_uid_of(files[1]);
  const auto stored = gw->stored_file(victim);
  ASSERT_TRUE(stored.has_value());
  ASSERT_NO_FATAL_FAILURE(alter_second_segment(*stored));

  StoreScp scp = start_storescp(port, dir_.subdir("received"));
  ASSERT_TRUE(all_delivered_but_one_dead(*gw, files.size()))
      << queue_rows(*gw).dump(1) << gw->log();
  for (const auto& row : queue_rows(*gw)) {
    if (row.value("sop_instance_uid", "") != victim) continue;
    EXPECT_EQ(row.value("state", ""), "dead");
    EXPECT_NE(row.value("last_error", "").find("corrupt"), std::string::npos) << row.dump();
  }

  // The others arrived as sent; of the altered one the destination kept nothing.
  std::vector<fs::path> others;
  for (const auto& f : files) {
    if (sop_instance_uid_of(f) != victim) others.push_back(f);
  }
  const auto received = scp.received_files();
  EXPECT_EQ(received.size(), others.size());
  EXPECT_EQ(sop_instance_uids_of(received), sop_instance_uids_of(others));
  EXPECT_EQ(data_sets(received), data_sets(others));
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(StorageEncryptionTest, AnAlteredStoredFileAbortsAWindowAndTheRowsItLeftUnansweredArrive) {
  const auto files =
      generate_dicom(dir_ / "source", {"--count", "12", "--size-kib", "200", "--seed", "63"});
  // The destination: another dicom-gw granting windows, down while the file is altered (it
  // keeps its port across the restart).
  GatewayOptions remote_options;
  remote_options.ae_title = "REMOTE_GW";
  auto remote = Gateway::start(remote_options);
  ASSERT_EQ(remote->stop(), 0);
  auto gw =
      Gateway::start(encrypted_gateway(remote->port(), "REMOTE_GW", ", max_async_operations: 8"));
  ASSERT_TRUE(gw_send(gw->port(), files).ok()) << gw->log();
  ASSERT_EQ(gw->count_instances(), static_cast<std::int64_t>(files.size())) << gw->log();
  const std::string victim = sop_instance_uid_of(files[5]);
  const auto stored = gw->stored_file(victim);
  ASSERT_TRUE(stored.has_value());
  ASSERT_NO_FATAL_FAILURE(alter_second_segment(*stored));

  // The victim goes out with earlier rows of its batch still unanswered (the log counts them:
  // `resent=5` here, but how many depends on how fast the destination answers); its abort ends
  // the association, and those rows are sent again on a new one.
  remote->restart();
  ASSERT_TRUE(all_delivered_but_one_dead(*gw, files.size()))
      << queue_rows(*gw).dump(1) << gw->log();
  EXPECT_NE(gw->log().find("window=8"), std::string::npos) << gw->log();
  EXPECT_NE(gw->log().find("event=stored_file_corrupt"), std::string::npos) << gw->log();
  // Every other instance is stored at the destination, as sent; of the altered one nothing.
  EXPECT_EQ(remote->count_instances(), static_cast<std::int64_t>(files.size() - 1));
  EXPECT_FALSE(remote->stored_file(victim).has_value());
  for (const auto& f : files) {
    const auto uid = sop_instance_uid_of(f);
    if (uid == victim) continue;
    const auto received = remote->stored_file(uid);
    ASSERT_TRUE(received.has_value()) << uid;
    EXPECT_EQ(data_set_bytes(*received), data_set_bytes(f)) << uid;
  }
  EXPECT_TRUE(remote->spool_files().empty());
  EXPECT_EQ(gw->stop(), 0);
  EXPECT_EQ(remote->stop(), 0);
}

TEST_F(StorageEncryptionTest, RefusesToStartWithoutAKey) {
  const auto config = dir_ / "config.yaml";
  {
    std::ofstream out(config);
    out << "ae_title: DICOM_GW\n"
        << "data_dir: " << (dir_ / "data").string() << "\n"
        << "listeners:\n  - {name: plain, bind: 127.0.0.1, port: " << free_tcp_port()
        << ", tls: false}\n"
        << "storage:\n  encrypt: true\n"
        << "http:\n  enabled: false\n";
  }
  const auto r = run_command({gateway_binary().string(), "serve", "--config", config.string()}, {},
                             std::chrono::seconds(30));
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("storage.encrypt needs an encryption key: set DICOM_GW_DB_ENCRYPTION_KEY "
                       "or database.encryption_key_file"),
            std::string::npos)
      << r.out << r.err;
}

}  // namespace
}  // namespace gw::test
