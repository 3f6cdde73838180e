#pragma once
/// The fixture of the store-and-forward e2e tests (forwarder_test.cpp,
/// forwarder_stored_files_test.cpp): a ForwardingService on its own io_context and worker pool,
/// over a SQLite index in a temp dir whose rows point at generated Part 10 files laid out as the
/// gateway stores them, sending to real DCMTK storescp peers.

#include <gtest/gtest.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "dicom/byte_source.h"
#include "dicom/part10.h"
#include "index/index.h"
#include "queue/forwarding_service.h"
#include "storage/content_digest.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/test_pki.h"

namespace gw::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr const char* kDestination = "PACS";

/// The content digest ingest records for a stored file (storage/content_digest.h): the
/// forwarder checks what it sends against it.
inline std::string file_digest(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  return storage::ContentDigest::of(
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

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
      r.digest = file_digest(files[i]);
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

}  // namespace gw::test
