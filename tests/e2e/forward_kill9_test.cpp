// kill -9 of the gateway while it forwards 1000 instances, then a restart: the destination ends
// up with all 1000 SOP Instance UIDs, and the only duplicates are instances that were in flight
// when the gateway died (at most max_associations x batch).

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
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

constexpr int kInstances = 1000;
constexpr int kKillAfterReceived = 300;
constexpr int kMaxAssociations = 2;
constexpr int kBatch = 8;

TEST(ForwardKill9, MidForwardRestartDeliversEverythingWithBoundedDuplicates) {
  TempDir dir("gw-forward-kill9");
  const auto files =
      generate_dicom(dir / "source", {"--count", std::to_string(kInstances), "--size-kib", "32",
                                      "--mix", "--transfer-syntax", "ele", "--seed", "9010"});
  std::set<std::string> source_uids;
  for (const auto& f : files) source_uids.insert(sop_instance_uid_of(f));
  ASSERT_EQ(source_uids.size(), static_cast<std::size_t>(kInstances));

  // The destination is down while the gateway ingests, so the whole set is queued first.
  const std::uint16_t dest_port = free_tcp_port();
  GatewayOptions o;
  o.extra_yaml = "destinations:\n  - {name: PACS, ae_title: STORESCP, host: 127.0.0.1, port: " +
                 std::to_string(dest_port) +
                 ", max_associations: " + std::to_string(kMaxAssociations) +
                 "}\nroutes:\n  - {name: all, destinations: [PACS]}\n"
                 "retry:\n  initial_backoff: 1s\n  max_backoff: 1s\n"
                 "forwarding:\n  batch: " +
                 std::to_string(kBatch) + "\n  probe_interval: 1s\n";
  auto gw = Gateway::start(o);
  const auto sent =
      run_command({gateway_binary().string(), "send", "--aec", "DICOM_GW", "--no-progress", "-j",
                   "2", "127.0.0.1", std::to_string(gw->port()), (dir / "source").string()},
                  {}, std::chrono::seconds(300));
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  ASSERT_EQ(gw->count_instances(), kInstances);

  // +uf: unique file names, so a duplicate delivery is a second file, not an overwrite.
  StoreScp scp = start_storescp(dest_port, dir.subdir("received"), {"+uf"});
  ASSERT_TRUE(wait_until([&]() { return scp.received_uids().size() >= kKillAfterReceived; },
                         std::chrono::seconds(120), std::chrono::milliseconds(5)))
      << gw->log();
  gw->kill9();
  std::size_t files_at_kill = 0;
  const auto at_kill = scp.received_uids(&files_at_kill);
  std::cout << "received before kill -9: " << at_kill.size() << "/" << kInstances << "\n";
  ASSERT_LT(at_kill.size(), static_cast<std::size_t>(kInstances))
      << "forwarding finished before the kill; nothing was interrupted";

  gw->restart();
  ASSERT_TRUE(wait_until([&]() { return scp.received_uids().size() >= kInstances; },
                         std::chrono::seconds(180)))
      << gw->log();
  // Let any straggling delivery land before counting duplicates.
  ASSERT_TRUE(wait_until(
      [&]() {
        const auto out = run_command(
            {gateway_binary().string(), "queue", "list", "--config", gw->config_path().string(),
             "--state", "delivered", "--limit", "100000", "--json"},
            {}, std::chrono::seconds(30));
        const auto rows = nlohmann::json::parse(out.out, nullptr, /*allow_exceptions=*/false);
        return rows.is_array() && rows.size() >= static_cast<std::size_t>(kInstances);
      },
      std::chrono::seconds(60)));
  std::size_t total_files = 0;
  const auto uids = scp.received_uids(&total_files);
  EXPECT_EQ(uids, source_uids);
  const std::size_t duplicates = total_files - uids.size();
  std::cout << "files at the destination: " << total_files << ", duplicates: " << duplicates
            << "\n";
  EXPECT_LE(duplicates, static_cast<std::size_t>(kMaxAssociations * kBatch));
  EXPECT_EQ(gw->stop(), 0);
}

}  // namespace
}  // namespace gw::test
