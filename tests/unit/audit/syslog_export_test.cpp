// The syslog exporter against a real SQLite index and a real TCP collector on 127.0.0.1 (a
// small octet-counting reader in this file): order, cursor, outages, restarts, prompt stop.
// TLS against rsyslog is tests/e2e/audit_syslog_test.cpp.
#include "audit/syslog_export.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audit/writer.h"
#include "core/unique_fd.h"
#include "index/sqlite/sqlite_index.h"
#include "support/poll.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace gw::audit {
namespace {

using namespace std::chrono_literals;
using test::wait_until;

index::AuditEvent row(const std::string& action, std::string outcome = "ok") {
  index::AuditEvent e;
  e.at_ms = 1714564800000;
  e.actor = "ae:CT1";
  e.action = action;
  e.outcome = std::move(outcome);
  e.details = "{}";
  return e;
}

index::AuditEvent with_id(std::int64_t id) {
  index::AuditEvent e = row("x");
  e.id = id;
  return e;
}

std::vector<index::AuditEvent> ids(std::initializer_list<std::int64_t> list) {
  std::vector<index::AuditEvent> out;
  for (auto id : list) out.push_back(with_id(id));
  return out;
}

std::vector<std::int64_t> ids_of(const std::vector<index::AuditEvent>& rows) {
  std::vector<std::int64_t> out;
  for (const auto& r : rows) out.push_back(r.id);
  return out;
}

/// A syslog collector on 127.0.0.1: accepts one connection at a time and splits what arrives
/// into octet-counted frames. kSilent accepts and never reads nor answers; kRefuse closes each
/// connection as soon as it is accepted (as rsyslog does with a peer it does not admit).
/// Bounded: everything waits in poll() with a 50 ms step and ends when the object is destroyed.
class Collector {
 public:
  enum class Mode { kRead, kSilent, kRefuse };
  explicit Collector(std::uint16_t port = 0, Mode mode = Mode::kRead) : mode_(mode) {
    listener_ = core::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(listener_.get(), 8) != 0) {
      throw std::runtime_error("collector: cannot listen");
    }
    socklen_t len = sizeof(a);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { serve(stop); });
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::string> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }
  int connections() const {
    std::lock_guard lock(mu_);
    return connections_;
  }

 private:
  void serve(const std::stop_token& stop) {
    core::UniqueFd conn;
    std::string buffer;
    while (!stop.stop_requested()) {
      const bool accepting = !conn.valid() || mode_ != Mode::kRead;
      pollfd p{accepting ? listener_.get() : conn.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (accepting) {
        conn = core::UniqueFd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (mode_ == Mode::kRefuse) conn.reset();
        std::lock_guard lock(mu_);
        ++connections_;
        continue;
      }
      std::array<char, 4096> chunk{};
      const auto n = ::read(conn.get(), chunk.data(), chunk.size());
      if (n <= 0) {
        conn.reset();
        buffer.clear();
        continue;
      }
      buffer.append(chunk.data(), static_cast<std::size_t>(n));
      for (;;) {  // each round takes one complete frame off the front
        const auto space = buffer.find(' ');
        if (space == std::string::npos) break;
        const auto length = std::stoul(buffer.substr(0, space));
        if (buffer.size() < space + 1 + length) break;
        std::lock_guard lock(mu_);
        messages_.push_back(buffer.substr(space + 1, length));
        buffer.erase(0, space + 1 + length);
      }
    }
  }

  const Mode mode_;
  core::UniqueFd listener_;
  std::uint16_t port_ = 0;
  mutable std::mutex mu_;  // guards messages_, connections_
  std::vector<std::string> messages_;
  int connections_ = 0;
  std::jthread thread_;  // last: stops and joins first
};

/// The SD-PARAM id of a message.
std::int64_t id_of(const std::string& message) {
  const auto at = message.find(" id=\"");
  if (at == std::string::npos) return -1;
  return std::stoll(message.substr(at + 5));
}

std::vector<std::int64_t> ids_of(const std::vector<std::string>& messages) {
  std::vector<std::int64_t> out;
  for (const auto& m : messages) out.push_back(id_of(m));
  return out;
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (auto i = first; i <= last; ++i) out.push_back(i);
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---- ExportProgress ----------------------------------------------------------------------------

TEST(ExportProgressTest, WithoutGapsTheCursorFollowsWhatWasSent) {
  ExportProgress p(0);
  const auto t = SteadyClock::now();
  EXPECT_EQ(ids_of(p.due({}, ids({1, 2, 3}))), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(p.mark_sent(ids({1, 2, 3}), t), 0);
  EXPECT_EQ(p.cursor(), 3);
  EXPECT_EQ(p.high(), 3);
  EXPECT_EQ(p.recheck_limit(), 0);
  // Rows at or below high() are never due again.
  EXPECT_TRUE(p.due(ids({2, 3}), ids({3})).empty());
}

TEST(ExportProgressTest, AGapHoldsTheCursorUntilItsRowArrives) {
  ExportProgress p(10);
  const auto t = SteadyClock::now();
  p.mark_sent(ids({11, 12, 14, 15}), t);  // 13 not committed yet
  EXPECT_EQ(p.high(), 15);
  EXPECT_EQ(p.cursor(), 12);
  EXPECT_EQ(p.open_gaps(), 1u);
  EXPECT_EQ(p.recheck_limit(), 3);
  // Read again after the cursor: 13 is there now, 14 and 15 were sent already; 16 is new.
  const auto due = p.due(ids({13, 14, 15}), ids({16}));
  EXPECT_EQ(ids_of(due), (std::vector<std::int64_t>{13, 16}));
  p.mark_sent(due, t);
  EXPECT_EQ(p.cursor(), 16);
  EXPECT_EQ(p.open_gaps(), 0u);
}

TEST(ExportProgressTest, AGapIsGivenUpAfterTheGrace) {
  ExportProgress p(0, std::chrono::seconds(10));
  const auto t = SteadyClock::now();
  p.mark_sent(ids({1, 4}), t);  // 2 and 3 missing
  EXPECT_EQ(p.cursor(), 1);
  EXPECT_EQ(p.expire(t + std::chrono::seconds(9), 4), 0u);
  EXPECT_EQ(p.cursor(), 1);
  EXPECT_EQ(p.expire(t + std::chrono::seconds(10), 4), 2u);
  EXPECT_EQ(p.cursor(), 4);
}

// A gap the last re-read did not reach (it stopped at kMaxRecheck rows) may have filled since:
// it is only given up once a re-read has covered it.
TEST(ExportProgressTest, OnlyAGapTheReReadCoveredIsGivenUp) {
  ExportProgress p(0, std::chrono::seconds(10));
  const auto t = SteadyClock::now();
  p.mark_sent(ids({1, 3, 5}), t);                            // 2 and 4 missing
  EXPECT_EQ(p.expire(t + std::chrono::seconds(60), 3), 1u);  // the re-read reached id 3
  EXPECT_EQ(p.open_gaps(), 1u);
  EXPECT_EQ(p.cursor(), 3);
  EXPECT_EQ(p.expire(t + std::chrono::seconds(60), 5), 1u);
  EXPECT_EQ(p.cursor(), 5);
}

TEST(ExportProgressTest, GapsAreBounded) {
  ExportProgress p(0);
  const auto given_up = p.mark_sent(ids({100000}), SteadyClock::now());
  EXPECT_EQ(p.open_gaps(), ExportProgress::kMaxGaps);
  EXPECT_EQ(given_up, 99999 - static_cast<std::int64_t>(ExportProgress::kMaxGaps));
  EXPECT_EQ(p.recheck_limit(), ExportProgress::kMaxRecheck);
  EXPECT_EQ(p.cursor(), 0);
}

// ---- CursorFile --------------------------------------------------------------------------------

TEST(CursorFileTest, MissingIsZeroStoredIsReadBackGarbageIsRefused) {
  test::TempDir dir("gw-syslog-cursor");
  CursorFile file(dir.path() / "audit-syslog.cursor");
  ASSERT_TRUE(file.load().ok());
  EXPECT_EQ(*file.load(), 0);
  ASSERT_TRUE(file.store(42).ok());
  EXPECT_EQ(read_file(file.path()), "42\n");
  EXPECT_EQ(*file.load(), 42);
  EXPECT_FALSE(std::filesystem::exists(file.path().string() + ".tmp"));
  std::ofstream(file.path()) << "forty-two\n";
  ASSERT_FALSE(file.load().ok());
  EXPECT_EQ(file.load().error().code, core::ErrorCode::kConfig);
}

// ---- Index::list_audit_after (SQLite; both backends: the e2e index contract) --------------------

TEST(ListAuditAfterTest, AscendingIdsWithALimitAndTheLastId) {
  auto index = index::SqliteIndex::open(":memory:");
  ASSERT_TRUE(index.ok());
  auto empty = (*index)->list_audit_after(0, 10);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->events.empty());
  EXPECT_EQ(empty->last_id, 0);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*index)->append_audit(row("a")).ok());
  auto page = (*index)->list_audit_after(1, 3);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(ids_of(page->events), (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(page->last_id, 5);
  auto none = (*index)->list_audit_after(0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->events.empty());
  EXPECT_EQ(none->last_id, 5);
  EXPECT_FALSE((*index)->list_audit_after(0, -1).ok());
}

// ---- AuditWriter::on_written: what wakes the exporter
// ---------------------------------------------

TEST(AuditWriterHookTest, RunsAfterEachRowTheIndexAccepted) {
  auto index = index::SqliteIndex::open(":memory:");
  ASSERT_TRUE(index.ok());
  std::atomic<int> calls{0};
  AuditWriter writer(**index);
  writer.on_written([&calls] { ++calls; });
  auto refused = row("a");
  refused.actor.clear();  // the index refuses it: no call
  EXPECT_TRUE(writer.enqueue(refused));
  EXPECT_TRUE(writer.enqueue(row("a")));
  EXPECT_TRUE(writer.enqueue(row("b")));
  writer.flush();
  EXPECT_EQ(calls.load(), 2);
  writer.stop();
}

// ---- SyslogExporter over plain TCP -------------------------------------------------------------

class SyslogExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = index::SqliteIndex::open((dir_.path() / "index.db").string());
    ASSERT_TRUE(opened.ok());
    index_ = std::move(opened).value();
  }

  SyslogExportOptions options(std::uint16_t port) const {
    SyslogExportOptions o;
    o.syslog.enabled = true;
    o.syslog.host = "127.0.0.1";
    o.syslog.port = port;
    o.syslog.tls = false;
    o.cursor_file = dir_.path() / "audit-syslog.cursor";
    o.origin.hostname = "gw-test";
    o.origin.procid = "1";
    // Short waits keep the test quick; nothing below depends on how long they are.
    o.poll_interval = 50ms;
    o.min_backoff = 20ms;
    o.max_backoff = 100ms;
    return o;
  }

  void append(int n, const std::string& action = "association.accepted") {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(index_->append_audit(row(action)).ok());
  }

  test::TempDir dir_{"gw-syslog-export"};
  std::unique_ptr<index::Index> index_;
};

TEST_F(SyslogExporterTest, EveryRowInIdOrderThenTheCursorIsPersisted) {
  Collector collector;
  append(300);  // more than one batch
  ASSERT_TRUE(index_->append_audit(row("auth.login_failed", "failed")).ok());
  auto exporter = SyslogExporter::create(*index_, options(collector.port()));
  ASSERT_TRUE(exporter.ok()) << exporter.error().message;
  (*exporter)->start();
  ASSERT_TRUE(wait_until([&] { return collector.messages().size() >= 301; }, 60s));
  const auto messages = collector.messages();
  EXPECT_EQ(ids_of(messages), range(1, 301));
  EXPECT_EQ(messages.front().rfind("<85>1 2024-05-01T12:00:00.000Z gw-test dicom-gw 1 "
                                   "association.accepted [dicomgw@32473 id=\"1\" ",
                                   0),
            0u)
      << messages.front();
  EXPECT_EQ(messages.back().rfind("<84>1 ", 0), 0u) << messages.back();
  EXPECT_NE(messages.back().find(" auth.login_failed [dicomgw@32473 "), std::string::npos);
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 301; }, 60s));

  // New rows: notify() wakes the exporter (the poll would find them too).
  append(2, "config.reload");
  (*exporter)->notify();
  ASSERT_TRUE(wait_until([&] { return collector.messages().size() >= 303; }, 60s));
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 303; }, 60s));
  (*exporter)->stop();
  const auto c = (*exporter)->counts();
  EXPECT_EQ(c.sent, 303u);
  EXPECT_EQ(c.backlog, 0);
  EXPECT_EQ(read_file(dir_.path() / "audit-syslog.cursor"), "303\n");
  EXPECT_EQ(collector.messages().size(), 303u);
}

// format: dicom — rows without a DICOM counterpart send nothing and still move the cursor; a
// transfer names its patient by the Patient ID the index holds for its study; a study the
// index does not hold (yet) is looked up again for the next row.
TEST_F(SyslogExporterTest, DicomFormatLooksUpThePatientAndSkipsRowsWithoutACounterpart) {
  const auto store = [&](const std::string& study, const std::string& patient) {
    index::InstanceRecord r;
    r.sop_instance_uid = study + ".1";
    r.series_instance_uid = study + ".0";
    r.study_instance_uid = study;
    r.patient_id = patient;
    r.storage_path = "storage/00/" + study + ".dcm";
    ASSERT_TRUE(index_->insert_instance(r, index::DuplicatePolicy::kKeepFirst).ok());
  };
  const auto received = [&](const std::string& study) {
    auto e = row("instances.received");
    e.details = R"({"calling_ae":"CT1","called_ae":"GW","instances":1,"failed":0,)"
                R"("study_instance_uid":")" +
                study + R"(","sop_classes":{"1.2.840.10008.5.1.4.1.1.2":1}})";
    ASSERT_TRUE(index_->append_audit(e).ok());
  };
  store("1.2.3", "PID-1");
  append(2);  // association.accepted: no DICOM message
  received("1.2.3");
  received("9.9.9");  // not in the index
  append(1);

  Collector collector;
  auto o = options(collector.port());
  o.syslog.format = config::SyslogFormat::kDicom;
  auto exporter = SyslogExporter::create(*index_, o);
  ASSERT_TRUE(exporter.ok()) << exporter.error().message;
  (*exporter)->start();
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 5; }, 60s));
  auto messages = collector.messages();
  ASSERT_EQ(messages.size(), 2u);
  for (const auto& m : messages) {
    EXPECT_EQ(m.rfind("<85>1 2024-05-01T12:00:00.000Z gw-test dicom-gw 1 IHE+RFC-3881 - "
                      "\xEF\xBB\xBF<AuditMessage>",
                      0),
              0u)
        << m;
  }
  EXPECT_NE(messages[0].find(R"(ParticipantObjectID="PID-1")"), std::string::npos) << messages[0];
  EXPECT_EQ(messages[1].find("Patient Number"), std::string::npos) << messages[1];

  store("9.9.9", "PID-9");  // arrives later: the next row of that study names its patient
  received("9.9.9");
  (*exporter)->notify();
  ASSERT_TRUE(wait_until([&] { return collector.messages().size() >= 3; }, 60s));
  messages = collector.messages();
  EXPECT_NE(messages[2].find(R"(ParticipantObjectID="PID-9")"), std::string::npos) << messages[2];
  (*exporter)->stop();
}

TEST_F(SyslogExporterTest, ACollectorThatIsDownGetsTheBacklogWhenItComesUp) {
  std::uint16_t port = 0;
  {
    Collector probe;  // a free port, closed again
    port = probe.port();
  }
  append(5);
  auto exporter = SyslogExporter::create(*index_, options(port));
  ASSERT_TRUE(exporter.ok());
  (*exporter)->start();
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().connection_failures >= 2; }, 60s));
  EXPECT_FALSE((*exporter)->counts().connected);
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().backlog == 5; }, 60s));
  EXPECT_EQ((*exporter)->counts().cursor, 0);
  append(2);  // while it is down

  Collector collector(port);
  ASSERT_TRUE(wait_until([&] { return collector.messages().size() >= 7; }, 60s));
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 7; }, 60s));
  (*exporter)->stop();
  EXPECT_EQ(ids_of(collector.messages()), range(1, 7));
  EXPECT_EQ((*exporter)->counts().backlog, 0);
}

TEST_F(SyslogExporterTest, ARestartResumesAfterTheCursorWithoutDuplicates) {
  Collector collector;
  append(3);
  {
    auto exporter = SyslogExporter::create(*index_, options(collector.port()));
    ASSERT_TRUE(exporter.ok());
    (*exporter)->start();
    ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 3; }, 60s));
  }  // stopped
  append(2);
  auto again = SyslogExporter::create(*index_, options(collector.port()));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->counts().cursor, 3);
  (*again)->start();
  ASSERT_TRUE(wait_until([&] { return (*again)->counts().cursor == 5; }, 60s));
  (*again)->stop();
  EXPECT_EQ(ids_of(collector.messages()), range(1, 5));
  EXPECT_EQ(collector.connections(), 2);
}

TEST_F(SyslogExporterTest, ACollectorThatDropsTheConnectionGetsTheRestOnTheNext) {
  append(2);
  auto first = std::make_unique<Collector>();
  const auto port = first->port();
  auto exporter = SyslogExporter::create(*index_, options(port));
  ASSERT_TRUE(exporter.ok());
  (*exporter)->start();
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 2; }, 60s));
  first.reset();  // the collector goes away (its connection closes)
  ASSERT_TRUE(wait_until([&] { return !(*exporter)->counts().connected; }, 60s));
  append(3);
  Collector second(port);
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 5; }, 60s));
  (*exporter)->stop();
  EXPECT_EQ(ids_of(second.messages()), range(3, 5));
}

TEST_F(SyslogExporterTest, StopReturnsWhileAHandshakeWaitsForASilentCollector) {
  test::TestPki pki(dir_.path() / "pki");
  Collector silent(0, Collector::Mode::kSilent);  // TCP connects; no TLS server answers
  append(1);
  auto o = options(silent.port());
  o.syslog.tls = true;
  o.tls.ca_file = pki.chain();
  o.io_timeout = std::chrono::hours(1);  // only stop() can end the wait
  auto exporter = SyslogExporter::create(*index_, o);
  ASSERT_TRUE(exporter.ok()) << exporter.error().message;
  (*exporter)->start();
  // Accepted: the exporter has sent its ClientHello and waits for an answer that never comes.
  ASSERT_TRUE(wait_until([&] { return silent.connections() == 1; }, 60s));
  (*exporter)->stop();  // returns: the test would hang (and time out) otherwise
  EXPECT_FALSE((*exporter)->counts().connected);
  EXPECT_EQ((*exporter)->counts().sent, 0u);
  EXPECT_EQ((*exporter)->counts().cursor, 0);
}

TEST_F(SyslogExporterTest, RowsAreNotSentIntoAConnectionTheCollectorDropsAtOnce) {
  append(3);
  std::uint16_t port = 0;
  auto refusing = std::make_unique<Collector>(0, Collector::Mode::kRefuse);
  port = refusing->port();
  auto exporter = SyslogExporter::create(*index_, options(port));
  ASSERT_TRUE(exporter.ok());
  (*exporter)->start();
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().connection_failures >= 2; }, 60s));
  EXPECT_EQ((*exporter)->counts().sent, 0u);
  EXPECT_EQ((*exporter)->counts().cursor, 0);
  EXPECT_GE(refusing->connections(), 2);
  refusing.reset();
  Collector admitting(port);
  ASSERT_TRUE(wait_until([&] { return (*exporter)->counts().cursor == 3; }, 60s));
  (*exporter)->stop();
  EXPECT_EQ(ids_of(admitting.messages()), range(1, 3));
}

TEST_F(SyslogExporterTest, AGarbledCursorFileStopsTheStart) {
  std::ofstream(dir_.path() / "audit-syslog.cursor") << "oops\n";
  auto exporter = SyslogExporter::create(*index_, options(1));
  ASSERT_FALSE(exporter.ok());
  EXPECT_EQ(exporter.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(exporter.error().message.find("audit-syslog.cursor"), std::string::npos);
}

TEST_F(SyslogExporterTest, TlsWithoutATrustAnchorStopsTheStart) {
  auto o = options(1);
  o.syslog.tls = true;  // no ca_file anywhere
  auto exporter = SyslogExporter::create(*index_, o);
  ASSERT_FALSE(exporter.ok());
  EXPECT_NE(exporter.error().message.find("audit.syslog"), std::string::npos)
      << exporter.error().message;
}

}  // namespace
}  // namespace gw::audit
