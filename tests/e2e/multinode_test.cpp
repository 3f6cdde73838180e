// Several nodes, one database (DESIGN.md "Scale-out"): two `dicom-gw serve` processes with their
// own node_id share one PostgreSQL and one data_dir. 1000 instances come in through both (DCMTK
// storescu), node A is killed with -9 while forwarding, and the DCMTK storescp destination still
// receives all 1000: node B takes over the rows whose lease A held. Restarting A then recovers
// A's own leftovers only, never B's files. And the locks: two nodes with different node_ids
// share a data_dir, two gateways without node_id (or two with the same one) cannot.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/postgres.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

constexpr int kInstances = 1000;
constexpr int kKillAfterReceived = 200;
constexpr int kMaxAssociations = 2;
constexpr int kBatch = 8;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!trim(line).empty()) out.push_back(trim(line));
  }
  return out;
}

std::set<fs::path> files_under(const fs::path& dir) {
  std::set<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) out.insert(it->path());
  }
  return out;
}

/// The top-level YAML of one node: its node_id, the shared database, one destination.
std::string node_yaml(const std::string& node_id, const std::string& database_url,
                      std::uint16_t dest_port) {
  return "node_id: " + node_id + "\ndatabase:\n  url: " + database_url +
         "\n  pool_size: 4\n"
         "destinations:\n  - {name: PACS, ae_title: STORESCP, host: 127.0.0.1, port: " +
         std::to_string(dest_port) + ", max_associations: " + std::to_string(kMaxAssociations) +
         "}\nroutes:\n  - {name: all, destinations: [PACS]}\n"
         "retry:\n  initial_backoff: 1s\n  max_backoff: 1s\n  max_attempts: 1000\n"
         "forwarding:\n  batch: " +
         std::to_string(kBatch) + "\n  lease: 10s\n  probe_interval: 1s\n";
}

/// Runs `dicom-gw serve` on a config of its own that is expected to be refused at start-up.
CommandResult serve_expecting_refusal(const fs::path& dir, const fs::path& data_dir,
                                      const std::string& extra_yaml) {
  fs::create_directories(dir);
  const fs::path config = dir / "config.yaml";
  std::ofstream(config) << "data_dir: " << data_dir.string() << "\n"
                        << "listeners:\n  - {name: plain, bind: 127.0.0.1, port: "
                        << free_tcp_port() << "}\n"
                        << "http:\n  enabled: false\n"
                        << "storage:\n  fsync: false\n"
                        << extra_yaml;
  return run_command({gateway_binary().string(), "serve", "--config", config.string()}, {},
                     std::chrono::seconds(30));
}

/// A file that looks like one renamed into storage/ (or spool/) and not committed yet.
fs::path plant(const fs::path& dir, const std::string& name, const fs::path& content) {
  fs::create_directories(dir);
  const fs::path path = dir / name;
  fs::copy_file(content, path);
  return path;
}

class MultiNodeTest : public ::testing::Test {
 protected:
  TempDir dir_{"gw-e2e-multinode"};
  PostgresServer& server_ = PostgresServer::shared();

  std::string sql(const std::string& database, const std::string& query) {
    const auto r = server_.psql(database, query);
    EXPECT_TRUE(r.ok()) << r.err;
    return trim(r.out);
  }
};

TEST_F(MultiNodeTest, KillNineOfOneNodeMidForwardTheOtherDeliversEverything) {
  const std::string database = server_.create_database();
  const auto files = generate_dicom(dir_ / "source", {"--count", std::to_string(kInstances),
                                                      "--size-kib", "8", "--seed", "6061"});
  std::set<std::string> source_uids;
  for (const auto& f : files) source_uids.insert(sop_instance_uid_of(f));
  ASSERT_EQ(source_uids.size(), static_cast<std::size_t>(kInstances));

  // The destination is down while the nodes ingest: everything is queued first.
  const std::uint16_t dest_port = free_tcp_port();
  const fs::path data_dir = dir_ / "shared-data";
  GatewayOptions oa;
  oa.fsync = false;
  oa.data_dir = data_dir;
  oa.extra_yaml = node_yaml("node-a", server_.url(database), dest_port);
  GatewayOptions ob = oa;
  ob.extra_yaml = node_yaml("node-b", server_.url(database), dest_port);
  auto a = Gateway::start(oa);  // runs the migrations before B connects
  auto b = Gateway::start(ob);

  const std::vector<fs::path> to_a(files.begin(), files.begin() + kInstances / 2);
  const std::vector<fs::path> to_b(files.begin() + kInstances / 2, files.end());
  CommandResult sent_a;
  CommandResult sent_b;
  {
    std::jthread send_a([&]() {
      sent_a = run_storescu("127.0.0.1", a->port(), to_a, {"-aec", "DICOM_GW"});
    });
    sent_b = run_storescu("127.0.0.1", b->port(), to_b, {"-aec", "DICOM_GW"});
  }
  ASSERT_EQ(sent_a.exit_code, 0) << sent_a.err << a->log();
  ASSERT_EQ(sent_b.exit_code, 0) << sent_b.err << b->log();
  ASSERT_EQ(sql(database, "SELECT count(*) FROM instances"), std::to_string(kInstances));
  ASSERT_EQ(sql(database, "SELECT count(*) FROM outbox"), std::to_string(kInstances));
  // Each node wrote its own subdirectory of the shared data_dir.
  ASSERT_EQ(files_under(data_dir / "storage" / "node-a").size(), to_a.size());
  ASSERT_EQ(files_under(data_dir / "storage" / "node-b").size(), to_b.size());

  // +uf: unique file names, so a duplicate delivery is a second file, not an overwrite.
  StoreScp scp = start_storescp(dest_port, dir_.subdir("received"), {"+uf"});
  ASSERT_TRUE(wait_until([&]() { return scp.received_uids().size() >= kKillAfterReceived; },
                         std::chrono::seconds(60), std::chrono::milliseconds(5)))
      << a->log() << b->log();
  // Node A is frozen (SIGSTOP) at a moment it holds rows, so what it held is what it dies with:
  // between two batches it holds none, and on a busy machine the kill can land there.
  std::vector<std::string> held_by_a;
  const pid_t a_pid = a->process().pid();
  for (int attempt = 0; attempt < 100 && held_by_a.empty(); ++attempt) {
    ASSERT_EQ(::kill(a_pid, SIGSTOP), 0);
    held_by_a = lines(sql(database,
                          "SELECT id FROM outbox WHERE state = 'in_flight' AND lease_owner = "
                          "'node-a/PACS' ORDER BY id"));
    if (held_by_a.empty()) {
      ASSERT_EQ(::kill(a_pid, SIGCONT), 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  a->kill9();  // nobody renews the leases of the rows it held any more
  const auto killed_at = std::chrono::steady_clock::now();
  const auto at_kill = scp.received_uids();
  std::cout << "received before kill -9 of node-a: " << at_kill.size() << "/" << kInstances << "\n";
  ASSERT_LT(at_kill.size(), static_cast<std::size_t>(kInstances))
      << "forwarding finished before the kill; nothing was interrupted";
  std::cout << "rows in flight on node-a at the kill: " << held_by_a.size() << "\n";
  ASSERT_FALSE(held_by_a.empty()) << "node-a held no rows when it was killed";
  ASSERT_LE(held_by_a.size(), static_cast<std::size_t>(kMaxAssociations * kBatch));

  // Node B alone delivers the rest, A's rows included once their 10 s lease has expired.
  ASSERT_TRUE(wait_until([&]() { return scp.received_uids().size() >= kInstances; },
                         std::chrono::seconds(60)))
      << b->log();
  std::cout << "all received "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - killed_at)
                   .count()
            << " ms after the kill (lease 10 s)\n";
  ASSERT_TRUE(wait_until(
      [&]() {
        return sql(database, "SELECT count(*) FROM outbox WHERE state = 'delivered'") ==
               std::to_string(kInstances);
      },
      std::chrono::seconds(30)))
      << sql(database, "SELECT state, lease_owner, count(*) FROM outbox GROUP BY 1, 2");
  std::string ids;
  for (const auto& id : held_by_a) ids += (ids.empty() ? "" : ",") + id;
  EXPECT_EQ(sql(database,
                "SELECT count(*) FROM outbox WHERE state = 'delivered' AND id IN (" + ids + ")"),
            std::to_string(held_by_a.size()))
      << "the rows node-a held were taken over by node-b";
  std::size_t total_files = 0;
  const auto uids = scp.received_uids(&total_files);
  EXPECT_EQ(uids, source_uids);
  const std::size_t duplicates = total_files - uids.size();
  std::cout << "files at the destination: " << total_files << ", duplicates: " << duplicates
            << "\n";
  EXPECT_LE(duplicates, held_by_a.size());

  // Node B's work in progress, as A's recovery would find it: a file renamed into B's storage
  // but not committed yet, and a spool file. And a leftover of A's own, which A must remove.
  const fs::path b_uncommitted =
      plant(data_dir / "storage" / "node-b" / "ab", std::string(32, 'b') + ".dcm", files.front());
  const fs::path b_spool =
      plant(data_dir / "spool" / "node-b", std::string(32, 'c') + ".part", files.front());
  const fs::path a_leftover =
      plant(data_dir / "storage" / "node-a" / "cd", std::string(32, 'a') + ".dcm", files.front());
  const auto b_files = files_under(data_dir / "storage" / "node-b");
  a->restart();  // an unclean previous run: recovery runs before A listens
  EXPECT_FALSE(fs::exists(a_leftover)) << a->log();
  EXPECT_TRUE(fs::exists(b_spool));
  EXPECT_TRUE(fs::exists(b_uncommitted));
  EXPECT_EQ(files_under(data_dir / "storage" / "node-b"), b_files);
  for (const auto& path : lines(sql(database, "SELECT storage_path FROM instances"))) {
    EXPECT_TRUE(fs::exists(data_dir / path)) << path;
  }
  EXPECT_EQ(a->stop(), 0) << a->log();
  EXPECT_EQ(b->stop(), 0) << b->log();
}

TEST_F(MultiNodeTest, NodesShareADataDirGatewaysWithoutNodeIdDoNot) {
  const std::string database = server_.create_database();
  const std::uint16_t dest_port = free_tcp_port();
  const fs::path data_dir = dir_ / "shared-data";
  GatewayOptions oa;
  oa.fsync = false;
  oa.data_dir = data_dir;
  oa.extra_yaml = node_yaml("a", server_.url(database), dest_port);
  GatewayOptions ob = oa;
  ob.extra_yaml = node_yaml("b", server_.url(database), dest_port);
  auto a = Gateway::start(oa);
  auto b = Gateway::start(ob);
  EXPECT_TRUE(fs::is_directory(data_dir / "storage" / "a"));
  EXPECT_TRUE(fs::is_directory(data_dir / "storage" / "b"));

  // The same node_id twice on one data_dir.
  const auto twin = serve_expecting_refusal(dir_ / "twin", data_dir,
                                            node_yaml("a", server_.url(database), dest_port));
  EXPECT_FALSE(twin.timed_out);
  EXPECT_NE(twin.exit_code, 0);
  EXPECT_NE((twin.out + twin.err).find("node_id a is already running"), std::string::npos)
      << twin.out << twin.err;
  // A gateway without node_id beside the nodes.
  const auto lone = serve_expecting_refusal(dir_ / "lone", data_dir, "");
  EXPECT_FALSE(lone.timed_out);
  EXPECT_NE(lone.exit_code, 0);
  EXPECT_NE((lone.out + lone.err).find("set node_id on each node"), std::string::npos)
      << lone.out << lone.err;
  EXPECT_EQ(a->stop(), 0);
  EXPECT_EQ(b->stop(), 0);

  // Two gateways without node_id on one data_dir: the second is refused.
  GatewayOptions first;
  first.fsync = false;
  first.data_dir = data_dir;
  auto single = Gateway::start(first);
  const auto second = serve_expecting_refusal(dir_ / "second", data_dir, "");
  EXPECT_FALSE(second.timed_out);
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE((second.out + second.err).find("set node_id on each node to share a data directory"),
            std::string::npos)
      << second.out << second.err;
  // ...and a node is refused beside it.
  const auto node = serve_expecting_refusal(dir_ / "node", data_dir,
                                            node_yaml("c", server_.url(database), dest_port));
  EXPECT_FALSE(node.timed_out);
  EXPECT_NE(node.exit_code, 0);
  EXPECT_NE((node.out + node.err).find("without node_id"), std::string::npos)
      << node.out << node.err;
  EXPECT_EQ(single->stop(), 0);
}

}  // namespace
}  // namespace gw::test
