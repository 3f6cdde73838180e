// Store-and-forward against real DCMTK storescp peers: a ForwardingService on its own
// io_context and worker pool, over a SQLite index in a temp dir whose rows point at generated
// Part 10 files laid out as the gateway stores them. Asserts what arrived (data set bytes equal
// to the stored ones) and what the outbox says (delivered, rescheduled with reasons, dead).

#include <gtest/gtest.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "dicom/byte_source.h"
#include "dicom/part10.h"
#include "index/index.h"
#include "queue/forwarding_service.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/test_pki.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kDestination = "PACS";

/// The daemon's threading in miniature: I/O threads running an io_context, and a worker pool.
class Runtime {
 public:
  Runtime() : guard_(asio::make_work_guard(io_)), pool_(2) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this]() { io_.run(); });
  }
  ~Runtime() {
    guard_.reset();
    io_.stop();
    threads_.clear();  // joins
    pool_.join();
  }
  asio::io_context& io() { return io_; }
  asio::any_io_executor pool() { return pool_.get_executor(); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  asio::thread_pool pool_;
  std::vector<std::jthread> threads_;
};

/// storescp accepting only CT Image Storage (and Verification), uncompressed: a destination
/// that refuses some SOP classes. (start_storescp always passes +xa, which storescp refuses to
/// combine with a config file.)
Process start_ct_only_storescp(std::uint16_t port, const fs::path& out_dir, const fs::path& dir) {
  const fs::path cfg = dir / "ct-only.cfg";
  std::ofstream(cfg) << "[[TransferSyntaxes]]\n"
                        "[Uncompressed]\n"
                        "TransferSyntax1 = LocalEndianExplicit\n"
                        "TransferSyntax2 = LittleEndianImplicit\n"
                        "[[PresentationContexts]]\n"
                        "[OnlyCT]\n"
                        "PresentationContext1 = VerificationSOPClass\\Uncompressed\n"
                        "PresentationContext2 = CTImageStorage\\Uncompressed\n"
                        "[[Profiles]]\n"
                        "[CT]\n"
                        "PresentationContexts = OnlyCT\n";
  fs::create_directories(out_dir);
  auto process = Process::start({"storescp", "-od", out_dir.string(), "+B", "-dhl", "-aet",
                                 "STORESCP", "-xf", cfg.string(), "CT", std::to_string(port)},
                                {}, dir / "logs");
  if (!wait_for_port(port, 10s)) {
    throw std::runtime_error("storescp (CT only) did not listen: " + process.read_stderr());
  }
  return process;
}

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = dir_.subdir("data");
    auto index = index::open_index("sqlite://", data_dir_, /*synchronous=*/false);
    ASSERT_TRUE(index.ok()) << index.error().message;
    index_ = std::move(index).value();
    runtime_ = std::make_unique<Runtime>();
  }

  void TearDown() override {
    if (service_) service_->stop_and_wait();
    service_.reset();
    runtime_.reset();
  }

  /// Generates files (gen_dicom `args`), stores them under data/storage/<batch>/ and indexes
  /// them with one outbox row each for `destination`. Returns their SOP Instance UIDs.
  std::vector<std::string> add_instances(const std::string& batch,
                                         const std::vector<std::string>& args,
                                         const std::string& destination = kDestination) {
    const auto files = generate_dicom(dir_ / ("gen-" + batch), args);
    std::vector<index::InstanceRecord> records;
    std::vector<std::string> uids;
    for (std::size_t i = 0; i < files.size(); ++i) {
      const fs::path relative = fs::path("storage") / batch / (std::to_string(i) + ".dcm");
      fs::create_directories((data_dir_ / relative).parent_path());
      fs::copy_file(files[i], data_dir_ / relative);
      auto header = dicom::read_part10_header(files[i]);
      EXPECT_TRUE(header.ok());
      if (!header.ok()) continue;
      index::InstanceRecord r;
      r.sop_instance_uid = header->meta.media_storage_sop_instance_uid;
      r.sop_class_uid = header->meta.media_storage_sop_class_uid;
      r.transfer_syntax_uid = header->meta.transfer_syntax_uid;
      r.storage_path = relative.string();
      r.size_bytes = static_cast<std::int64_t>(fs::file_size(files[i]));
      r.received_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
      r.study_instance_uid = "2.25.1001";
      r.series_instance_uid = "2.25.1002";
      r.modality = "OT";
      r.destinations = {destination};
      records_[r.sop_instance_uid] = r;
      stored_[r.sop_instance_uid] = data_dir_ / relative;
      uids.push_back(r.sop_instance_uid);
      records.push_back(std::move(r));
    }
    for (const auto& result :
         index_->insert_instances(records, index::DuplicatePolicy::kKeepFirst)) {
      EXPECT_TRUE(result.ok()) << result.error().message;
    }
    return uids;
  }

  config::Config make_config(std::uint16_t port) const {
    config::Config c;
    c.ae_title = "DICOM_GW";
    c.data_dir = data_dir_;
    config::Destination d;
    d.name = kDestination;
    d.ae_title = "STORESCP";
    d.host = "127.0.0.1";
    d.port = port;
    d.max_associations = 2;
    d.retry.max_attempts = 50;
    d.retry.max_age = 1h;
    d.retry.initial_backoff = 1s;
    d.retry.max_backoff = 4s;
    c.destinations.push_back(d);
    c.forwarding.association_idle_timeout = 5s;
    c.forwarding.lease = 60s;
    c.forwarding.circuit_breaker_failures = 1000;
    c.forwarding.probe_interval = 1s;
    c.forwarding.batch = 4;
    return c;
  }

  /// `open_file`: how the forwarders read stored files (empty: plain files).
  void start_service(const config::Config& config, dicom::SourceOpener open_file = {}) {
    service_ = std::make_unique<queue::ForwardingService>(runtime_->io(), runtime_->pool(), *index_,
                                                          data_dir_, "node-1", config, nullptr,
                                                          std::move(open_file));
    service_->start();
    service_->notify({kDestination});
  }

  std::vector<index::OutboxItem> rows(const std::string& destination = kDestination) const {
    index::OutboxQuery q;
    q.destination = destination;
    q.limit = 10000;
    auto r = index_->list_outbox(q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::vector<index::OutboxItem>{};
  }

  std::size_t count_rows(index::OutboxState state) const {
    const auto all = rows();
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [&](const auto& r) { return r.state == state; }));
  }

  /// Waits until no row is pending or in flight.
  bool wait_settled(std::chrono::milliseconds timeout = 60s) const {
    return wait_until(
        [&]() {
          return count_rows(index::OutboxState::kPending) == 0 &&
                 count_rows(index::OutboxState::kInFlight) == 0;
        },
        timeout, 50ms);
  }

  /// Every file storescp wrote, by SOP Instance UID; each must equal its stored data set.
  std::map<std::string, fs::path> expect_bit_exact(const fs::path& out_dir) const {
    std::map<std::string, fs::path> received;
    for (const auto& entry : fs::directory_iterator(out_dir)) {
      if (!entry.is_regular_file()) continue;
      const auto uid = sop_instance_uid_of(entry.path());
      EXPECT_FALSE(received.contains(uid)) << "duplicate " << uid;
      received[uid] = entry.path();
      auto it = stored_.find(uid);
      if (it == stored_.end()) {
        ADD_FAILURE() << "unexpected instance " << uid;
        continue;
      }
      auto expected = data_set_bytes(it->second);
      // A deflated data set may end on an odd byte; PDVs are even, so the sender pads it with
      // one NUL (PS3.5 A.5). Files the gateway received are already even; generated ones not.
      if (expected.size() % 2 == 1) expected.push_back(0);
      EXPECT_TRUE(data_set_bytes(entry.path()) == expected)
          << uid << ": received data set differs from the stored one";
    }
    return received;
  }

  /// Every one of `uids` is stored at the destination gateway `gw` once, its data set equal
  /// to the one stored here.
  void expect_bit_exact_at(const Gateway& gw, const std::vector<std::string>& uids) const {
    EXPECT_EQ(gw.count_instances(), static_cast<std::int64_t>(uids.size()));
    for (const auto& uid : uids) {
      const auto received = gw.stored_file(uid);
      ASSERT_TRUE(received.has_value()) << uid << " did not arrive";
      EXPECT_TRUE(data_set_bytes(*received) == data_set_bytes(stored_.at(uid)))
          << uid << ": received data set differs from the stored one";
    }
  }

  /// Another dicom-gw as the destination: it grants asynchronous operations windows (ADR 013)
  /// and, at debug level, logs the flush each instance took (per_file when it arrived while
  /// another of its association was in progress).
  Gateway& start_windowed_destination() {
    GatewayOptions options;
    options.extra_yaml = "logging:\n  level: debug\n";
    return *gateways_.emplace_back(Gateway::start(options));
  }

  /// One association to the windowed destination `gw`, asking for a window of 16, claiming
  /// `batch` rows at a time.
  config::Config one_windowed_association(const Gateway& gw, std::uint32_t batch) const {
    auto config = make_config(gw.port());
    config.destinations[0].ae_title = "DICOM_GW";
    config.destinations[0].max_associations = 1;
    config.destinations[0].max_async_operations = 16;
    config.forwarding.batch = batch;
    return config;
  }

  /// Peers live until TearDown has stopped the service (so releases find them).
  StoreScp& keep(StoreScp scp) { return scps_.emplace_back(std::move(scp)); }
  Process& keep(Process process) { return processes_.emplace_back(std::move(process)); }

  TempDir dir_{"gw-forwarder"};
  std::list<StoreScp> scps_;
  std::list<Process> processes_;
  std::list<std::unique_ptr<Gateway>> gateways_;
  fs::path data_dir_;
  std::unique_ptr<index::Index> index_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<queue::ForwardingService> service_;
  std::map<std::string, fs::path> stored_;                ///< SOP Instance UID -> stored file
  std::map<std::string, index::InstanceRecord> records_;  ///< SOP Instance UID -> its record
};

TEST_F(ForwarderTest, DeliversEveryInstanceBitExactInItsOwnTransferSyntax) {
  // Ten kinds, each in another transfer syntax (compressed ones included): ten contexts.
  const auto uids =
      add_instances("mix", {"--count", "10", "--mix", "--seed", "11", "--size-kib", "48"});
  ASSERT_EQ(uids.size(), 10u);
  auto& scp = keep(start_storescp(0, dir_ / "received"));
  start_service(make_config(scp.port));

  ASSERT_TRUE(wait_settled()) << "rows still queued";
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  for (const auto& row : rows()) {
    EXPECT_EQ(row.last_status, 0) << row.sop_instance_uid << ": " << row.last_error;
    EXPECT_FALSE(row.warning);
  }
  const auto received = expect_bit_exact(scp.out_dir);
  EXPECT_EQ(received.size(), uids.size());

  const auto status = service_->status(kDestination);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->counts.forwarded, uids.size());
  EXPECT_EQ(status->counts.dead, 0u);
  EXPECT_GE(status->counts.associations_opened, 1u);
  EXPECT_FALSE(status->paused);
  std::uint64_t bytes = 0;
  for (const auto& [uid, path] : stored_) bytes += fs::file_size(path);
  EXPECT_EQ(status->counts.bytes, bytes);
}

TEST_F(ForwarderTest, ReusesOneAssociationAcrossBatchesAndReconnectsWhenThePeerDroppedIt) {
  const auto uids = add_instances(
      "ct", {"--count", "12", "--sop-class", "ct", "--seed", "12", "--size-kib", "16"});
  auto* scp = &keep(start_storescp(0, dir_ / "received"));
  const std::uint16_t port = scp->port;
  auto config = make_config(port);
  config.destinations[0].max_associations = 1;       // batch 4: three batches, one association
  config.forwarding.association_idle_timeout = 60s;  // kept open between the phases below
  start_service(config);

  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  EXPECT_EQ(expect_bit_exact(scp->out_dir).size(), uids.size());
  EXPECT_EQ(service_->status(kDestination)->counts.associations_opened, 1u);

  // More work later: notify() wakes the idle worker, which sends on the association it kept.
  const auto more = add_instances(
      "ct2", {"--count", "2", "--sop-class", "ct", "--seed", "13", "--size-kib", "16"});
  service_->notify({kDestination});
  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size() + more.size());
  EXPECT_EQ(expect_bit_exact(scp->out_dir).size(), uids.size() + more.size());
  EXPECT_EQ(service_->status(kDestination)->counts.associations_opened, 1u);

  // The peer goes away while our association idles (a PACS restart, its own idle timeout):
  // the next item fails on the dead association, and is sent again at once on a new one, with
  // no failure recorded.
  scps_.clear();
  scp = &keep(start_storescp(port, dir_ / "received-again"));
  const auto last = add_instances(
      "ct3", {"--count", "2", "--sop-class", "ct", "--seed", "14", "--size-kib", "16"});
  service_->notify({kDestination});
  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size() + more.size() + last.size());
  EXPECT_EQ(expect_bit_exact(scp->out_dir).size(), last.size());
  for (const auto& row : rows()) EXPECT_EQ(row.attempts, 1) << row.sop_instance_uid;
  const auto status = service_->status(kDestination);
  EXPECT_EQ(status->counts.associations_opened, 2u);
  EXPECT_EQ(status->counts.failed, 0u);
}

TEST_F(ForwarderTest, DestinationDownThenUpBacksOffThenDeliversEverything) {
  const auto uids = add_instances(
      "mr", {"--count", "6", "--sop-class", "mr", "--seed", "21", "--size-kib", "16"});
  const std::uint16_t port = free_tcp_port();  // nothing listens there yet
  auto config = make_config(port);
  config.destinations[0].max_associations = 1;
  config.forwarding.batch = 32;
  start_service(config);

  // Follow one row through its failed attempts: each is rescheduled with the connection error,
  // and later retries wait longer (1 s doubling, cap 4 s, equal jitter: [b/2, b]).
  std::map<int, std::int64_t> wait_after_attempt;  // attempts -> next_attempt_at - updated_at
  std::int64_t followed = -1;
  ASSERT_TRUE(wait_until(
      [&]() {
        for (const auto& row : rows()) {
          if (followed < 0) followed = row.id;
          if (row.state != index::OutboxState::kPending || row.attempts == 0) continue;
          EXPECT_NE(row.last_error.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
              << row.last_error;
          EXPECT_EQ(row.last_status, -1);
          if (row.id == followed) {
            wait_after_attempt[row.attempts] = row.next_attempt_at_ms - row.updated_at_ms;
          }
        }
        return wait_after_attempt.size() >= 3;
      },
      30s, 20ms));
  for (const auto& [attempts, wait_ms] : wait_after_attempt) {
    // The row is written a moment after its wait was drawn, so only the upper bound is exact.
    EXPECT_LE(wait_ms, std::min<std::int64_t>(4000, 1000LL << (attempts - 1)))
        << "attempt " << attempts;
  }
  EXPECT_GT(wait_after_attempt.rbegin()->second, wait_after_attempt.begin()->second);
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), 0u);

  auto& scp = keep(start_storescp(port, dir_ / "received"));
  ASSERT_TRUE(wait_settled(30s));
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size());
  const auto status = service_->status(kDestination);
  EXPECT_GE(status->counts.retried, uids.size());
  EXPECT_EQ(status->counts.forwarded, uids.size());
}

TEST_F(ForwarderTest, AWindowGrantedByTheDestinationKeepsSeveralStoresOutstanding) {
  const auto uids = add_instances("win", {"--count", "60", "--mix", "--transfer-syntax", "ele",
                                          "--seed", "51", "--size-kib", "32"});
  auto& gw = start_windowed_destination();
  auto config = make_config(gw.port());
  config.destinations[0].ae_title = "DICOM_GW";
  config.destinations[0].max_async_operations = 8;
  config.forwarding.batch = 4;  // smaller than the window: it is kept full by claiming ahead
  config.forwarding.association_idle_timeout = 60s;  // kept open for the second phase
  start_service(config);

  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  expect_bit_exact_at(gw, uids);
  EXPECT_GT(service_->status(kDestination)->counts.claimed_ahead, 0u);
  // The destination granted the window, and had stores of one association in progress at once.
  EXPECT_NE(gw.log().find("async_window=8 event=association_accepted"), std::string::npos)
      << gw.log();
  EXPECT_NE(gw.log().find("duplicate=false flush=per_file"), std::string::npos) << gw.log();

  // The destination restarts while our associations idle: the next batch goes out on a dead
  // association, window and all. Every request it left unanswered is sent again at once on a
  // new association, with no failure recorded.
  ASSERT_EQ(gw.stop(), 0) << gw.log();
  gw.restart();
  const auto more = add_instances(
      "win2", {"--count", "24", "--sop-class", "ct", "--seed", "52", "--size-kib", "32"});
  service_->notify({kDestination});
  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size() + more.size());
  auto all = uids;
  all.insert(all.end(), more.begin(), more.end());
  expect_bit_exact_at(gw, all);
  for (const auto& row : rows()) EXPECT_EQ(row.attempts, 1) << row.sop_instance_uid;
  EXPECT_EQ(service_->status(kDestination)->counts.failed, 0u);
}

TEST_F(ForwarderTest, ATransferCutOffMidWindowSendsTheUnansweredRowsAgain) {
  const auto uids = add_instances(
      "cut", {"--count", "300", "--sop-class", "ct", "--seed", "53", "--size-kib", "64"});
  auto& gw = start_windowed_destination();
  start_service(one_windowed_association(gw, 32));

  // kill -9 of the destination with requests outstanding, then it comes back on the same port.
  ASSERT_TRUE(wait_until([&]() { return gw.count_instances() >= 40; }, 60s, 5ms));
  gw.kill9();
  const auto delivered_before = count_rows(index::OutboxState::kDelivered);
  EXPECT_LT(delivered_before, uids.size()) << "finished before the kill: nothing was cut off";
  gw.restart();

  ASSERT_TRUE(wait_settled(120s));
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  EXPECT_EQ(count_rows(index::OutboxState::kDead), 0u);
  // Rows sent again may have arrived twice; the destination keeps the first copy of each.
  expect_bit_exact_at(gw, uids);
  EXPECT_GE(service_->status(kDestination)->counts.retried, 1u);
}

TEST_F(ForwarderTest, StoppingMidWindowRecordsEveryOutstandingResponseAndGivesTheRestBack) {
  const auto uids = add_instances(
      "stop", {"--count", "300", "--sop-class", "ct", "--seed", "54", "--size-kib", "64"});
  auto& gw = start_windowed_destination();
  const auto config = one_windowed_association(gw, 64);
  start_service(config);

  ASSERT_TRUE(wait_until([&]() { return gw.count_instances() >= 40; }, 60s, 5ms));
  service_->stop_and_wait();
  // Requests outstanding at the stop were answered and recorded before it returned: what the
  // destination stored is exactly what the outbox calls delivered. The rest are pending again,
  // their attempt not counted, and none is dead.
  std::set<std::string> delivered;
  for (const auto& row : rows()) {
    EXPECT_NE(row.state, index::OutboxState::kInFlight) << row.sop_instance_uid;
    EXPECT_NE(row.state, index::OutboxState::kDead) << row.sop_instance_uid;
    if (row.state == index::OutboxState::kDelivered) delivered.insert(row.sop_instance_uid);
    if (row.state == index::OutboxState::kPending) {
      EXPECT_EQ(row.attempts, 0) << row.sop_instance_uid;
    }
  }
  EXPECT_LT(delivered.size(), uids.size()) << "finished before the stop: nothing was cut off";
  const auto stored = gw.sop_instance_uids();
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()), delivered);

  // The next start sends the rest, once each.
  service_.reset();
  start_service(config);
  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  expect_bit_exact_at(gw, uids);
}

TEST_F(ForwarderTest, RefusedSopClassAndMissingFileGoDeadTheRestIsDelivered) {
  const auto ct = add_instances(
      "ct", {"--count", "3", "--sop-class", "ct", "--seed", "31", "--size-kib", "16"});
  const auto mr = add_instances(
      "mr", {"--count", "2", "--sop-class", "mr", "--seed", "32", "--size-kib", "16"});
  const auto lost = add_instances(
      "lost", {"--count", "1", "--sop-class", "ct", "--seed", "33", "--size-kib", "16"});
  fs::remove(stored_.at(lost[0]));
  stored_.erase(lost[0]);

  const std::uint16_t port = free_tcp_port();
  keep(start_ct_only_storescp(port, dir_ / "received", dir_.path()));
  auto config = make_config(port);
  config.destinations[0].max_associations = 1;  // storescp without --fork: one at a time
  start_service(config);

  ASSERT_TRUE(wait_settled());
  std::map<std::string, index::OutboxItem> by_uid;
  for (const auto& row : rows()) by_uid[row.sop_instance_uid] = row;
  for (const auto& uid : ct) EXPECT_EQ(by_uid[uid].state, index::OutboxState::kDelivered);
  for (const auto& uid : mr) {
    EXPECT_EQ(by_uid[uid].state, index::OutboxState::kDead);
    EXPECT_EQ(by_uid[uid].attempts, 1);
    EXPECT_NE(by_uid[uid].last_error.find("destination did not accept"), std::string::npos)
        << by_uid[uid].last_error;
    EXPECT_NE(by_uid[uid].last_error.find("no transcoding"), std::string::npos);
  }
  EXPECT_EQ(by_uid[lost[0]].state, index::OutboxState::kDead);
  EXPECT_NE(by_uid[lost[0]].last_error.find("stored file unreadable"), std::string::npos)
      << by_uid[lost[0]].last_error;
  EXPECT_EQ(expect_bit_exact(dir_ / "received").size(), ct.size());
  const auto status = service_->status(kDestination);
  EXPECT_EQ(status->counts.dead, mr.size() + 1);
  EXPECT_EQ(status->counts.forwarded, ct.size());
}

/// storage.duplicates: overwrite while the instance's row is in flight: the row was claimed with
/// the old file, which ingest removes. The new version gets a row of its own and goes out; the
/// old row ends superseded, not dead.
TEST_F(ForwarderTest, AnInstanceOverwrittenWhileInFlightGoesOutInItsNewVersion) {
  const auto uids = add_instances(
      "ow", {"--count", "3", "--sop-class", "ct", "--seed", "71", "--size-kib", "16"});
  ASSERT_EQ(uids.size(), 3u);
  const std::string target = uids[1];
  const fs::path old_file = stored_.at(target);
  // The new version: the same SOP instance with another Instance Number.
  const fs::path new_relative = fs::path("storage") / "ow-new" / "1.dcm";
  const fs::path new_file = data_dir_ / new_relative;
  fs::create_directories(new_file.parent_path());
  fs::copy_file(old_file, new_file);
  const auto modified =
      run_command({"dcmodify", "-nb", "-i", "(0020,0013)=4242", new_file.string()});
  ASSERT_TRUE(modified.ok()) << modified.err;
  ASSERT_FALSE(data_set_bytes(new_file) == data_set_bytes(old_file));

  // The overwrite as ingest does it (the row, then the replaced file removed), after the
  // forwarder claimed the batch and before it opened that file.
  auto record = records_.at(target);
  record.storage_path = new_relative.string();
  record.size_bytes = static_cast<std::int64_t>(fs::file_size(new_file));
  record.received_at_ms = core::wall_clock_ms();
  std::atomic<bool> overwritten{false};
  dicom::SourceOpener open = [&, record](const fs::path& path) {
    if (path == old_file && !overwritten.exchange(true)) {
      auto replaced = index_->insert_instance(record, index::DuplicatePolicy::kOverwrite);
      EXPECT_TRUE(replaced.ok() && replaced->outcome == index::InsertOutcome::kReplaced);
      fs::remove(old_file);
    }
    return dicom::open_file_source(path);
  };
  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;  // one batch: all three rows claimed at once
  start_service(config, open);

  ASSERT_TRUE(wait_settled());
  EXPECT_TRUE(overwritten);
  std::vector<index::OutboxItem> target_rows;
  for (const auto& row : rows()) {
    EXPECT_NE(row.state, index::OutboxState::kDead) << row.id << ": " << row.last_error;
    if (row.sop_instance_uid == target) target_rows.push_back(row);
  }
  ASSERT_EQ(target_rows.size(), 2u) << "the new version was not queued";
  EXPECT_EQ(target_rows[0].state, index::OutboxState::kDelivered);
  EXPECT_EQ(target_rows[0].last_status, -1) << "nothing was sent for it";
  EXPECT_EQ(target_rows[0].last_error.rfind("superseded: ", 0), 0u) << target_rows[0].last_error;
  EXPECT_EQ(target_rows[1].state, index::OutboxState::kDelivered);
  EXPECT_EQ(target_rows[1].last_status, 0) << target_rows[1].last_error;
  stored_[target] = new_file;
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size()) << "the new version arrived";
  const auto status = service_->status(kDestination);
  EXPECT_EQ(status->counts.dead, 0u);
  EXPECT_EQ(status->counts.forwarded, uids.size());
}

/// Lease renewal extends only the rows the forwarder's batches hold. A row leased to the same
/// owner that no batch holds (its result write failed) keeps its lease, which runs out: the row
/// goes out again, however busy the forwarder stays.
TEST_F(ForwarderTest, ARowNoBatchHoldsIsNotRenewedAndGoesOutWhenItsLeaseRunsOut) {
  const auto uids = add_instances(
      "lease", {"--count", "8", "--sop-class", "ct", "--seed", "72", "--size-kib", "16"});
  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;
  config.forwarding.batch = 4;
  config.forwarding.lease = 3s;  // renewed every second while a batch runs

  // While the first batch reads its files (its rows in flight), the next row is leased to the
  // forwarder's owner as if a batch had held it and failed to write its result. The hook then
  // waits for a renewal of the batch's leases and notes the orphan's lease at that point.
  const std::string owner = std::string("node-1/") + kDestination;
  std::atomic<bool> fired{false};
  std::int64_t orphan_id = 0;
  std::int64_t orphan_lease = 0;
  std::int64_t orphan_lease_after_renewal = -1;
  bool renewed = false;
  dicom::SourceOpener open = [&](const fs::path& path) {
    if (!fired.exchange(true)) {
      auto orphan = index_->claim_outbox(kDestination, 1, owner, core::wall_clock_ms(), 1000);
      if (orphan.ok() && orphan->size() == 1) {
        orphan_id = (*orphan)[0].id;
        orphan_lease = (*orphan)[0].lease_expires_at_ms;
        auto batch_lease = [&]() {
          std::int64_t latest = 0;
          for (const auto& row : rows()) {
            if (row.state == index::OutboxState::kInFlight && row.id != orphan_id) {
              latest = std::max(latest, row.lease_expires_at_ms);
            }
          }
          return latest;
        };
        const auto before = batch_lease();
        renewed = wait_until([&]() { return batch_lease() > before; }, 20s, 20ms);
        orphan_lease_after_renewal = index_->find_outbox(orphan_id)->value().lease_expires_at_ms;
      }
    }
    return dicom::open_file_source(path);
  };
  start_service(config, open);

  ASSERT_TRUE(wait_settled());
  ASSERT_NE(orphan_id, 0) << "no row left to orphan";
  ASSERT_TRUE(renewed) << "the batch's leases were never renewed";
  EXPECT_EQ(orphan_lease_after_renewal, orphan_lease) << "renewed with the batch's rows";
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  for (const auto& row : rows()) {
    EXPECT_EQ(row.attempts, row.id == orphan_id ? 2 : 1) << row.id;
  }
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size());
}

/// An instance routed before an API destination's delete was applied queues its row after the
/// delete dead-lettered the others; nobody would ever claim it. The service dead-letters such
/// rows: of a destination deleted here, or (another node deleted it) one it saw in the index
/// that is gone from it once this node no longer runs it. Rows of destinations that another
/// node created, or that were never API destinations, wait.
TEST_F(ForwarderTest, RowsQueuedForADeletedApiDestinationAfterItsDeleteAreDeadLettered) {
  auto api = [](const std::string& name) {
    index::ApiDestination d;
    d.name = name;
    d.ae_title = "STORESCP";
    d.host = "127.0.0.1";
    d.port = 104;
    return d;
  };
  ASSERT_TRUE(index_->create_destination(api("API_A"), nullptr).ok());
  ASSERT_TRUE(index_->create_destination(api("API_B"), nullptr).ok());
  auto config = make_config(free_tcp_port());  // nothing listens: no row is ever sent there
  config.destinations[0].name = "API_A";
  config.destinations.push_back(config.destinations[0]);
  config.destinations[1].name = "API_B";
  start_service(config);
  auto dead_for_deletion = [&](const std::string& destination) {
    const auto all = rows(destination);
    return !all.empty() && std::all_of(all.begin(), all.end(), [](const auto& r) {
      return r.state == index::OutboxState::kDead && r.last_error == "destination deleted";
    });
  };

  // This node deletes API_A as the API does: the index row, a reload without it, then
  // destination_deleted(). An instance routed before the reload is committed after it.
  ASSERT_TRUE(index_->delete_destination("API_A", false, core::wall_clock_ms(), nullptr).ok());
  auto without_a = config;
  without_a.destinations.erase(without_a.destinations.begin());
  ASSERT_TRUE(service_->reload(without_a).ok());
  service_->destination_deleted("API_A");
  add_instances("late-a", {"--count", "1", "--sop-class", "ct", "--seed", "73"}, "API_A");
  service_->notify({"API_A"});
  ASSERT_TRUE(wait_until([&]() { return dead_for_deletion("API_A"); }, 30s, 20ms));

  // Another node deletes API_B (the sweep above read it from the index); this node only
  // reloads. Meanwhile another node created OTHER, which this one does not run yet.
  ASSERT_TRUE(index_->delete_destination("API_B", false, core::wall_clock_ms(), nullptr).ok());
  ASSERT_TRUE(index_->create_destination(api("OTHER"), nullptr).ok());
  auto without_both = without_a;
  without_both.destinations.clear();
  ASSERT_TRUE(service_->reload(without_both).ok());
  add_instances("other", {"--count", "1", "--sop-class", "ct", "--seed", "74"}, "OTHER");
  add_instances("elsewhere", {"--count", "1", "--sop-class", "ct", "--seed", "75"}, "ELSEWHERE");
  service_->notify({"OTHER", "ELSEWHERE"});
  add_instances("late-b", {"--count", "1", "--sop-class", "ct", "--seed", "76"}, "API_B");
  service_->notify({"API_B"});
  ASSERT_TRUE(wait_until([&]() { return dead_for_deletion("API_B"); }, 30s, 20ms));
  // That sweep ran after OTHER's and ELSEWHERE's rows were committed, and left them.
  for (const auto* destination : {"OTHER", "ELSEWHERE"}) {
    const auto waiting = rows(destination);
    ASSERT_EQ(waiting.size(), 1u) << destination;
    EXPECT_EQ(waiting[0].state, index::OutboxState::kPending) << destination;
  }
}

TEST_F(ForwarderTest, CircuitBreakerPausesWithoutClaimingThenResumes) {
  const auto uids = add_instances(
      "ct", {"--count", "5", "--sop-class", "ct", "--seed", "41", "--size-kib", "16"});
  const std::uint16_t port = free_tcp_port();
  auto config = make_config(port);
  config.destinations[0].max_associations = 1;
  config.forwarding.batch = 32;
  config.forwarding.circuit_breaker_failures = 2;
  start_service(config);

  ASSERT_TRUE(wait_until([&]() { return service_->paused(kDestination); }, 30s));
  const auto status = service_->status(kDestination);
  EXPECT_NE(status->pause_reason.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << status->pause_reason;
  // Attempts are counted by claims; a paused destination claims nothing.
  std::map<std::int64_t, int> attempts_when_paused;
  for (const auto& row : rows()) attempts_when_paused[row.id] = row.attempts;

  auto& scp = keep(start_storescp(port, dir_ / "received"));
  ASSERT_TRUE(wait_until([&]() { return !service_->paused(kDestination); }, 30s));
  ASSERT_TRUE(wait_settled(30s));
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  for (const auto& row : rows()) {
    EXPECT_LE(row.attempts, attempts_when_paused[row.id] + 1) << "claimed while paused";
  }
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size());
}

TEST_F(ForwarderTest, StopGivesUnsentRowsBackAndReloadStartsNewDestinations) {
  const auto uids = add_instances(
      "ct", {"--count", "4", "--sop-class", "ct", "--seed", "51", "--size-kib", "16"});
  // No destination configured yet: rows wait.
  auto config = make_config(1);
  const auto destination = config.destinations[0];
  config.destinations.clear();
  start_service(config);
  EXPECT_FALSE(service_->status(kDestination).has_value());

  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto with_destination = config;
  with_destination.destinations.push_back(destination);
  with_destination.destinations[0].port = scp.port;
  ASSERT_TRUE(service_->reload(with_destination).ok());
  service_->notify({kDestination});
  ASSERT_TRUE(wait_settled());
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());

  // Removing it again stops its forwarder; stop() then returns with nothing held.
  ASSERT_TRUE(service_->reload(config).ok());
  EXPECT_FALSE(service_->status(kDestination).has_value());
  service_->stop_and_wait();
  EXPECT_EQ(count_rows(index::OutboxState::kInFlight), 0u);
  EXPECT_FALSE(service_->reload(with_destination).ok());
}

TEST_F(ForwarderTest, MutualTlsWithAWrongCaWaitsWithTheReasonThenFlowsAfterReload) {
  TestPki pki(dir_.subdir("pki"));
  pki.issue("pacs", certs::CertKind::kServer, {"IP:127.0.0.1"});
  pki.issue("gateway", certs::CertKind::kClient, {});
  TestPki stranger(dir_.subdir("stranger-pki"));
  const auto uids = add_instances(
      "ct", {"--count", "3", "--sop-class", "ct", "--seed", "61", "--size-kib", "16"});
  auto& scp = keep(start_storescp(0, dir_ / "received",
                                  {"+tls", pki.key("pacs").string(), pki.cert("pacs").string(),
                                   "+cf", pki.chain().string(), "--require-peer-cert"}));
  auto config = make_config(scp.port);
  auto& d = config.destinations[0];
  d.tls_enabled = true;
  d.tls_cert_path = pki.cert("gateway");
  d.tls_key_path = pki.key("gateway");
  d.tls_ca_path = stranger.chain();  // trusts the wrong CA: the PACS cannot be verified
  d.verify_hostname = true;
  start_service(config);

  ASSERT_TRUE(wait_until(
      [&]() {
        const auto all = rows();
        return !all.empty() && std::all_of(all.begin(), all.end(), [](const auto& r) {
          return r.state == index::OutboxState::kPending && r.attempts >= 1;
        });
      },
      30s));
  for (const auto& row : rows()) {
    EXPECT_NE(row.last_error.find("TLS handshake"), std::string::npos) << row.last_error;
  }
  EXPECT_TRUE(scp.received_files().empty());

  d.tls_ca_path = pki.chain();  // the fix, applied by reload
  ASSERT_TRUE(service_->reload(config).ok());
  ASSERT_TRUE(wait_settled(30s));
  EXPECT_EQ(count_rows(index::OutboxState::kDelivered), uids.size());
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size());
}

}  // namespace
}  // namespace gw::test
