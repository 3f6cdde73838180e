// Store-and-forward through the whole gateway (issue 4): real senders (DCMTK storescu,
// `dicom-gw send`) -> `dicom-gw serve` -> real destinations (DCMTK storescp plain and mutual TLS,
// Orthanc over DICOM TLS). What arrives is compared with what the gateway stored, data set byte
// for data set byte. The queue is read with `dicom-gw queue list --json`, as an operator would.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "certs/pki.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/orthanc.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/test_pki.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// Fast retries so tests see several attempts within seconds.
constexpr const char* kFastRetry =
    "retry:\n  initial_backoff: 1s\n  max_backoff: 2s\n"
    "forwarding:\n  association_idle_timeout: 2s\n  probe_interval: 1s\n";

std::string destination_yaml(const std::string& name, const std::string& ae, std::uint16_t port,
                             const std::string& extra = "") {
  return "  - {name: " + name + ", ae_title: " + ae +
         ", host: 127.0.0.1, port: " + std::to_string(port) + extra + "}\n";
}

/// The data set bytes of each file, as a sorted list (duplicates kept).
std::vector<std::vector<std::uint8_t>> data_sets(const std::vector<fs::path>& files) {
  std::vector<std::vector<std::uint8_t>> out;
  out.reserve(files.size());
  for (const auto& f : files) out.push_back(data_set_bytes(f));
  std::sort(out.begin(), out.end());
  return out;
}

/// Stored files of every instance the gateway indexed.
std::vector<fs::path> gateway_files(const Gateway& gw) {
  std::vector<fs::path> files;
  for (const auto& uid : gw.sop_instance_uids()) {
    if (auto f = gw.stored_file(uid)) files.push_back(*f);
  }
  return files;
}

/// Every outbox row delivered: the destination has answered, so its files are complete.
bool delivered(const Gateway& gw, std::size_t rows) {
  return gw.count_outbox("delivered") >= static_cast<std::int64_t>(rows);
}

/// `dicom-gw queue list --json` rows.
json queue_rows(const Gateway& gw, const std::vector<std::string>& filters = {}) {
  std::vector<std::string> argv{gateway_binary().string(), "queue",   "list",   "--config",
                                gw.config_path().string(), "--limit", "100000", "--json"};
  argv.insert(argv.end(), filters.begin(), filters.end());
  const auto r = run_command(argv, {}, std::chrono::seconds(30));
  EXPECT_TRUE(r.ok()) << r.out << r.err;
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

std::size_t count_state(const json& rows, const std::string& state) {
  if (!rows.is_array()) return 0;
  return static_cast<std::size_t>(std::count_if(
      rows.begin(), rows.end(), [&](const json& r) { return r.value("state", "") == state; }));
}

CommandResult gw_send(std::uint16_t port, const std::vector<fs::path>& files,
                      const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{gateway_binary().string(), "send", "--aec", "DICOM_GW",
                                "--no-progress"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"127.0.0.1", std::to_string(port)});
  for (const auto& f : files) argv.push_back(f.string());
  return run_command(argv, {}, std::chrono::seconds(300));
}

StoreScpOptions aet(const std::string& title) {
  StoreScpOptions o;
  o.aet = title;
  return o;
}

class ForwardTest : public ::testing::Test {
 protected:
  TempDir dir_{"gw-e2e-forward"};
};

TEST_F(ForwardTest, StorescuThroughGatewayToStorescpArrivesBitExact) {
  // Every SOP class x transfer syntax pair the generator knows: the forwarder proposes what each
  // instance needs and sends it in the syntax it was received in.
  const auto files = generate_dicom(dir_ / "source", {"--count", "30", "--mix", "--seed", "51"});
  StoreScp scp = start_storescp(0, dir_.subdir("received"));
  GatewayOptions o;
  o.extra_yaml = "destinations:\n" + destination_yaml("PACS", "STORESCP", scp.port) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry;
  auto gw = Gateway::start(o);

  const auto sent = run_storescu("127.0.0.1", gw->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  ASSERT_EQ(gw->count_instances(), static_cast<std::int64_t>(files.size())) << gw->log();

  ASSERT_TRUE(wait_until([&]() { return delivered(*gw, files.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(scp.received_files().size(), files.size());
  EXPECT_EQ(data_sets(scp.received_files()), data_sets(gateway_files(*gw)));
  EXPECT_TRUE(
      wait_until([&]() { return count_state(queue_rows(*gw), "delivered") == files.size(); },
                 std::chrono::seconds(10)))
      << queue_rows(*gw).dump(1);
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTest, RoutesSendEachInstanceWhereItBelongs) {
  const auto ct =
      generate_dicom(dir_ / "ct", {"--count", "6", "--sop-class", "ct", "--seed", "52"});
  const auto mr =
      generate_dicom(dir_ / "mr", {"--count", "4", "--sop-class", "mr", "--seed", "53"});
  StoreScp a = start_storescp(0, dir_.subdir("a"), {}, aet("PACS_A"));
  StoreScp b = start_storescp(0, dir_.subdir("b"), {}, aet("PACS_B"));
  GatewayOptions o;
  o.extra_yaml = "destinations:\n" + destination_yaml("A", "PACS_A", a.port) +
                 destination_yaml("B", "PACS_B", b.port) +
                 "routes:\n"
                 "  - {name: ct, match: {modality: CT}, destinations: [A]}\n"
                 "  - {name: from-mr1, match: {calling_ae: MR1}, destinations: [B]}\n" +
                 kFastRetry;
  auto gw = Gateway::start(o);

  ASSERT_TRUE(gw_send(gw->port(), ct, {"--aet", "CT1"}).ok());
  ASSERT_TRUE(gw_send(gw->port(), mr, {"--aet", "MR1"}).ok());
  ASSERT_TRUE(
      wait_until([&]() { return delivered(*gw, ct.size() + mr.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(a.received_uids(), sop_instance_uids_of(ct));
  EXPECT_EQ(b.received_uids(), sop_instance_uids_of(mr));
  // One outbox row per instance, each for its own destination: none for the other one.
  const auto rows = queue_rows(*gw);
  ASSERT_TRUE(rows.is_array()) << rows.dump(1);
  EXPECT_EQ(rows.size(), ct.size() + mr.size()) << rows.dump(1);
  EXPECT_EQ(gw->count_outbox("delivered"), static_cast<std::int64_t>(ct.size() + mr.size()));
  std::map<std::string, std::size_t> per_destination;
  for (const auto& r : rows) ++per_destination[r.value("destination", "")];
  EXPECT_EQ(per_destination["A"], ct.size()) << rows.dump(1);
  EXPECT_EQ(per_destination["B"], mr.size()) << rows.dump(1);
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTest, DestinationDownQueuesWithBackoffThenEverythingArrives) {
  const auto files = generate_dicom(dir_ / "source", {"--count", "12", "--seed", "54"});
  const std::uint16_t port = free_tcp_port();  // nothing listens yet
  GatewayOptions o;
  // The circuit breaker is off here, so that every row keeps being tried and shows its back-off
  // (with it, a dead destination is probed instead: see the next test).
  o.extra_yaml = "destinations:\n" + destination_yaml("PACS", "STORESCP", port) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry +
                 "  circuit_breaker_failures: 0\n";
  auto gw = Gateway::start(o);
  ASSERT_TRUE(gw_send(gw->port(), files).ok());

  // Attempts pile up; each failure pushes the next attempt into the future, with the reason.
  ASSERT_TRUE(wait_until(
      [&]() {
        const auto rows = queue_rows(*gw);
        return rows.is_array() && rows.size() == files.size() &&
               std::all_of(rows.begin(), rows.end(),
                           [](const json& r) { return r.value("attempts", 0) >= 2; });
      },
      std::chrono::seconds(30)))
      << queue_rows(*gw).dump(1) << gw->log();
  const auto rows = queue_rows(*gw);
  for (const auto& r : rows) {
    EXPECT_EQ(r.value("state", ""), "pending") << r.dump();
    EXPECT_NE(r.value("last_error", "").find("refused"), std::string::npos) << r.dump();
    // Equal jitter (retry_policy.h): after attempt n the wait is drawn from [b/2, b], b =
    // min(initial_backoff * 2^(n-1), max_backoff) = 2 s here from n = 2 on, so the next attempt
    // is 1-2 s after the failure was decided. updated_at_ms is when the result was written, a
    // little later: require at least initial_backoff / 2 (no back-off at all gives ~0) and at
    // most max_backoff.
    const auto gap =
        r.value("next_attempt_at_ms", std::int64_t{0}) - r.value("updated_at_ms", std::int64_t{0});
    EXPECT_GE(gap, 500) << r.dump();
    EXPECT_LE(gap, 2000) << r.dump();
  }

  StoreScp scp = start_storescp(port, dir_.subdir("received"));
  ASSERT_TRUE(wait_until([&]() { return delivered(*gw, files.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(data_sets(scp.received_files()), data_sets(files));  // sent with `send`: unchanged
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTest, DeadDestinationIsPausedAndProbedThenResumes) {
  const auto files = generate_dicom(dir_ / "source", {"--count", "12", "--seed", "61"});
  const std::uint16_t port = free_tcp_port();  // nothing listens yet
  GatewayOptions o;
  // logging.level debug: each failed probe is logged (event=probe_failed), so the test waits
  // for probes instead of sleeping.
  o.extra_yaml = "destinations:\n" + destination_yaml("PACS", "STORESCP", port) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry +
                 "  circuit_breaker_failures: 2\nlogging:\n  level: debug\n";
  auto gw = Gateway::start(o);
  ASSERT_TRUE(gw_send(gw->port(), files).ok());
  ASSERT_TRUE(
      wait_until([&]() { return gw->log().find("event=destination_paused") != std::string::npos; },
                 std::chrono::seconds(30)))
      << gw->log();

  // Paused: probes only, no row is claimed, so attempts stop growing. Counted once the batch
  // that failed has been written back (no row in flight any more).
  auto total_attempts = [&]() {
    std::int64_t sum = 0;
    for (const auto& r : queue_rows(*gw)) sum += r.value("attempts", 0);
    return sum;
  };
  auto probes_failed = [&]() {
    const std::string log = gw->log();
    std::size_t n = 0;
    for (auto at = log.find("event=probe_failed"); at != std::string::npos;
         at = log.find("event=probe_failed", at + 1)) {
      ++n;
    }
    return n;
  };
  ASSERT_TRUE(
      wait_until([&]() { return gw->count_outbox("in_flight") == 0; }, std::chrono::seconds(30)))
      << queue_rows(*gw).dump(1);
  const auto before = total_attempts();
  const auto probes_before = probes_failed();
  ASSERT_TRUE(
      wait_until([&]() { return probes_failed() >= probes_before + 3; }, std::chrono::seconds(30)))
      << gw->log();
  EXPECT_EQ(total_attempts(), before) << queue_rows(*gw).dump(1);

  StoreScp scp = start_storescp(port, dir_.subdir("received"));
  ASSERT_TRUE(wait_until([&]() { return delivered(*gw, files.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_NE(gw->log().find("event=destination_reachable"), std::string::npos);
  EXPECT_EQ(scp.received_uids(), sop_instance_uids_of(files));
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTest, UnacceptedTransferSyntaxIsDeadWithTheReasonAndTheRestFlows) {
  // The destination accepts Implicit VR LE only (+xi); the gateway never transcodes.
  const auto implicit = generate_dicom(
      dir_ / "implicit", {"--count", "3", "--transfer-syntax", "ile", "--seed", "55"});
  const auto jpeg = generate_dicom(
      dir_ / "jpeg", {"--count", "2", "--transfer-syntax", "jpeg-lossless", "--seed", "56"});
  StoreScp scp = start_storescp(0, dir_.subdir("received"), {"+xi"});
  GatewayOptions o;
  o.extra_yaml = "destinations:\n" + destination_yaml("PACS", "STORESCP", scp.port) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry;
  auto gw = Gateway::start(o);
  ASSERT_TRUE(gw_send(gw->port(), jpeg).ok());
  ASSERT_TRUE(gw_send(gw->port(), implicit).ok());

  ASSERT_TRUE(wait_until(
      [&]() {
        const auto rows = queue_rows(*gw);
        return count_state(rows, "dead") == jpeg.size() &&
               count_state(rows, "delivered") == implicit.size();
      },
      std::chrono::seconds(60)))
      << queue_rows(*gw).dump(1) << gw->log();
  for (const auto& r : queue_rows(*gw, {"--state", "dead"})) {
    EXPECT_NE(r.value("last_error", "").find("transcod"), std::string::npos) << r.dump();
  }
  EXPECT_EQ(scp.received_uids(), sop_instance_uids_of(implicit));
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTest, ConfigCheckNamesEveryRoutingProblem) {
  const fs::path config = dir_ / "config.yaml";
  std::ofstream(config) << "data_dir: " << (dir_ / "data").string() << "\n"
                        << "listeners:\n  - {name: plain, port: 11112}\n"
                        << "destinations:\n"
                        << destination_yaml("PACS", "PACS", 104)
                        << destination_yaml("PACS", "PACS2", 105) << "routes:\n"
                        << "  - {name: a, match: {source: 10.0.0.0/33}, destinations: [PAC]}\n";
  const auto bad =
      run_command({gateway_binary().string(), "config", "check", "--config", config.string()}, {},
                  std::chrono::seconds(30));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("destinations[1].name"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("routes[0].match.source"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("unknown destination `PAC`"), std::string::npos) << bad.err;

  // Tag keywords are checked against DCMTK's dictionary, with a suggestion.
  std::ofstream(config) << "data_dir: " << (dir_ / "data").string() << "\n"
                        << "listeners:\n  - {name: plain, port: 11112}\n"
                        << "destinations:\n"
                        << destination_yaml("PACS", "PACS", 104) << "routes:\n"
                        << "  - {name: a, match: {tags: {StationNme: {equals: CT1}}}, "
                           "destinations: [PACS]}\n";
  const auto keyword =
      run_command({gateway_binary().string(), "config", "check", "--config", config.string()}, {},
                  std::chrono::seconds(30));
  EXPECT_EQ(keyword.exit_code, 2);
  EXPECT_NE(keyword.err.find("routes[0].match.tags.StationNme"), std::string::npos) << keyword.err;
  EXPECT_NE(keyword.err.find("StationName"), std::string::npos) << keyword.err;
}

class ForwardTlsTest : public ForwardTest {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_.path());
    pki_->issue("server", certs::CertKind::kServer, {"DNS:localhost", "IP:127.0.0.1"});
    pki_->issue("gateway", certs::CertKind::kBoth, {"DNS:localhost", "IP:127.0.0.1"});
    pki_->issue("orthanc", certs::CertKind::kBoth, {"DNS:localhost", "IP:127.0.0.1"});
    other_ = std::make_unique<TestPki>(dir_.path() / "other", /*with_intermediate=*/false);
  }

  std::string tls_keys(const fs::path& ca) const {
    return ", tls_enabled: true, tls_cert_path: " + pki_->cert("gateway").string() +
           ", tls_key_path: " + pki_->key("gateway").string() + ", tls_ca_path: " + ca.string();
  }

  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<TestPki> other_;  ///< a CA nobody here trusts
};

TEST_F(ForwardTlsTest, MutualTlsToStorescpArrivesBitExact) {
  const auto files = generate_dicom(dir_ / "source", {"--count", "10", "--mix", "--seed", "57"});
  StoreScp scp =
      start_storescp(0, dir_.subdir("received"),
                     {"+tls", pki_->key("server").string(), pki_->cert("server").string(), "+cf",
                      pki_->chain().string(), "--require-peer-cert"});
  GatewayOptions o;
  o.extra_yaml = "destinations:\n" +
                 destination_yaml("PACS", "STORESCP", scp.port, tls_keys(pki_->chain())) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry;
  auto gw = Gateway::start(o);
  const auto sent = run_storescu("127.0.0.1", gw->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  ASSERT_TRUE(wait_until([&]() { return delivered(*gw, files.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(data_sets(scp.received_files()), data_sets(gateway_files(*gw)));
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTlsTest, AWindowOverMutualTlsToAnotherGatewayArrivesBitExact) {
  const auto files = generate_dicom(dir_ / "source", {"--count", "40", "--mix", "--transfer-syntax",
                                                      "ele", "--seed", "59", "--size-kib", "48"});
  // The destination: another dicom-gw on DICOM TLS (peer certificate required), which grants
  // asynchronous operations windows and logs each instance's flush at debug level.
  GatewayOptions remote_options;
  remote_options.ae_title = "REMOTE_GW";
  remote_options.tls_yaml = "tls:\n  enabled: true\n  cert_file: " + pki_->cert("server").string() +
                            "\n  key_file: " + pki_->key("server").string() +
                            "\n  ca_file: " + pki_->chain().string() + "\n";
  remote_options.extra_yaml = "logging:\n  level: debug\n";
  auto remote = Gateway::start(remote_options);
  GatewayOptions o;
  o.extra_yaml =
      "destinations:\n" +
      destination_yaml("REMOTE", "REMOTE_GW", remote->tls_port(),
                       tls_keys(pki_->chain()) + ", max_associations: 1, max_async_operations: 8") +
      "routes:\n  - {name: all, destinations: [REMOTE]}\n" + kFastRetry;
  auto gw = Gateway::start(o);
  const auto sent = gw_send(gw->port(), files, {"-j", "2"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  ASSERT_TRUE(wait_until([&]() { return delivered(*gw, files.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(count_state(queue_rows(*gw), "delivered"), files.size());
  EXPECT_EQ(data_sets(gateway_files(*remote)), data_sets(files));
  // One association carried several C-STOREs at once, over TLS both ways.
  EXPECT_NE(gw->log().find("window=8"), std::string::npos) << gw->log();
  EXPECT_NE(remote->log().find("async_window=8 event=association_accepted"), std::string::npos)
      << remote->log();
  EXPECT_NE(remote->log().find("duplicate=false flush=per_file"), std::string::npos)
      << remote->log();
  EXPECT_EQ(gw->stop(), 0);
  EXPECT_EQ(remote->stop(), 0);
}

TEST_F(ForwardTlsTest, WrongCaWaitsWithTheReasonAndFlowsAfterTheFixAndAReload) {
  const auto files = generate_dicom(dir_ / "source", {"--count", "5", "--seed", "58"});
  StoreScp scp =
      start_storescp(0, dir_.subdir("received"),
                     {"+tls", pki_->key("server").string(), pki_->cert("server").string(), "+cf",
                      pki_->chain().string(), "--require-peer-cert"});
  GatewayOptions o;
  o.extra_yaml = "destinations:\n" +
                 destination_yaml("PACS", "STORESCP", scp.port, tls_keys(other_->chain())) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry;
  auto gw = Gateway::start(o);
  ASSERT_TRUE(gw_send(gw->port(), files).ok());

  ASSERT_TRUE(wait_until(
      [&]() {
        const auto rows = queue_rows(*gw);
        return rows.is_array() && rows.size() == files.size() &&
               std::all_of(rows.begin(), rows.end(), [](const json& r) {
                 return r.value("attempts", 0) >= 1 && r.value("state", "") == "pending";
               });
      },
      std::chrono::seconds(30)))
      << queue_rows(*gw).dump(1) << gw->log();
  for (const auto& r : queue_rows(*gw)) {
    EXPECT_NE(r.value("last_error", "").find("unknown CA"), std::string::npos) << r.dump();
  }
  EXPECT_TRUE(scp.received_files().empty());

  // The operator fixes the CA path and reloads: no restart.
  std::ifstream in(gw->config_path());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string wrong = other_->chain().string();
  text.replace(text.find(wrong), wrong.size(), pki_->chain().string());
  std::ofstream(gw->config_path()) << text;
  ASSERT_TRUE(gw->process().signal_group(SIGHUP));

  ASSERT_TRUE(wait_until([&]() { return delivered(*gw, files.size()); }, std::chrono::seconds(60)))
      << gw->log();
  EXPECT_EQ(scp.received_uids(), sop_instance_uids_of(files));
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTlsTest, HostNameMismatchWaitsWithTheReason) {
  // The destination's certificate names another host.
  pki_->issue("elsewhere", certs::CertKind::kServer, {"DNS:pacs.elsewhere.org"});
  const auto files = generate_dicom(dir_ / "source", {"--count", "2", "--seed", "59"});
  StoreScp scp =
      start_storescp(0, dir_.subdir("received"),
                     {"+tls", pki_->key("elsewhere").string(), pki_->cert("elsewhere").string(),
                      "+cf", pki_->chain().string(), "--require-peer-cert"});
  GatewayOptions o;
  o.extra_yaml = "destinations:\n" +
                 destination_yaml("PACS", "STORESCP", scp.port, tls_keys(pki_->chain())) +
                 "routes:\n  - {name: all, destinations: [PACS]}\n" + kFastRetry;
  auto gw = Gateway::start(o);
  ASSERT_TRUE(gw_send(gw->port(), files).ok());
  ASSERT_TRUE(wait_until(
      [&]() {
        const auto rows = queue_rows(*gw);
        return rows.is_array() && rows.size() == files.size() &&
               std::all_of(rows.begin(), rows.end(),
                           [](const json& r) { return r.value("attempts", 0) >= 1; });
      },
      std::chrono::seconds(30)))
      << gw->log();
  for (const auto& r : queue_rows(*gw)) {
    EXPECT_EQ(r.value("state", ""), "pending") << r.dump();
    EXPECT_NE(r.value("last_error", "").find("mismatch (its subjectAltName does not list"),
              std::string::npos)
        << r.dump();
  }
  EXPECT_TRUE(scp.received_files().empty());
  EXPECT_EQ(gw->stop(), 0);
}

TEST_F(ForwardTlsTest, OrthancOverDicomTlsReceivesTheDataSetsUnchanged) {
  ASSERT_TRUE(fs::exists(kOrthancBinary)) << "orthanc is not installed (scripts/setup.sh --test)";
  const auto files = generate_dicom(dir_ / "source", {"--count", "6", "--seed", "60"});
  const Orthanc::Tls tls{pki_->cert("orthanc"), pki_->key("orthanc"), pki_->chain()};
  Orthanc orthanc(dir_.subdir("orthanc"), &tls, {});
  GatewayOptions o;
  o.extra_yaml =
      "destinations:\n" +
      destination_yaml("ORTHANC", "ORTHANC", orthanc.dicom_port(), tls_keys(pki_->chain())) +
      "routes:\n  - {name: all, destinations: [ORTHANC]}\n" + kFastRetry;
  auto gw = Gateway::start(o);
  const auto sent = run_storescu("127.0.0.1", gw->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  ASSERT_TRUE(wait_until(
      [&]() { return orthanc.count_instances() == static_cast<std::int64_t>(files.size()); },
      std::chrono::seconds(60)))
      << gw->log() << orthanc.log();
  const auto got = orthanc.download_all(dir_ / "from-orthanc");
  EXPECT_EQ(data_sets(got), data_sets(gateway_files(*gw)));
  EXPECT_EQ(gw->stop(), 0);
}

}  // namespace
}  // namespace gw::test
