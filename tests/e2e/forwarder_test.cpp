// Store-and-forward against real DCMTK storescp peers (fixture: forwarder_fixture.h). Asserts
// what arrived (data set bytes equal to the stored ones) and what the outbox says (delivered,
// rescheduled with reasons, dead).

#include "forwarder_fixture.h"

namespace gw::test {
namespace {

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

/// A destination that stays paused (its probe fails for ever) claims nothing, so no attempt ends
/// its rows; they still go dead at retry.max_age, with the pause reason.
TEST_F(ForwarderTest, RowsOfADestinationPausedForEverDieAtMaxAge) {
  const auto uids = add_instances(
      "paused", {"--count", "3", "--sop-class", "ct", "--seed", "42", "--size-kib", "16"});
  auto config = make_config(free_tcp_port());  // nothing ever listens
  config.destinations[0].max_associations = 1;
  config.destinations[0].retry.max_age = 3s;
  config.destinations[0].retry.initial_backoff = 1s;
  config.forwarding.circuit_breaker_failures = 1;
  start_service(config);

  ASSERT_TRUE(wait_until([&]() { return service_->paused(kDestination); }, 30s));
  ASSERT_TRUE(wait_until([&]() { return count_rows(index::OutboxState::kDead) == uids.size(); },
                         30s, 100ms))
      << "rows of a paused destination never reach retry.max_age";
  for (const auto& row : rows()) {
    EXPECT_NE(row.last_error.find("max_age"), std::string::npos) << row.last_error;
    EXPECT_LE(row.attempts, 1) << "claimed while paused";
  }
  EXPECT_EQ(service_->status(kDestination)->counts.dead, uids.size());
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
