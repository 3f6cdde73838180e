// Asynchronous operations (PS3.7 D.3.3.3) end to end: a sender that proposes a window gets it
// from the gateway, keeps several C-STOREs outstanding, and everything it heard success for is
// stored byte for byte; an A-RELEASE-RQ while stores are in progress is answered only after
// their responses; a gateway limited to 1 and DCMTK's storescp (which grants no window) are
// served synchronously by the same sender.

#include <gtest/gtest.h>

#include <asio.hpp>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dicom/scu.h"
#include "e2e/e2e_helpers.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

CommandResult gw_send(std::uint16_t port, const fs::path& source, const fs::path& report,
                      const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {gateway_binary().string(), "send", "--no-progress", "--report",
                                   report.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.emplace_back("127.0.0.1");
  argv.push_back(std::to_string(port));
  argv.push_back(source.string());
  return run_command(argv, {}, 120s);
}

/// Runs `body` on a fresh io_context to its end.
template <class T>
T run_coroutine(std::function<asio::awaitable<T>(asio::any_io_executor)> body) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await body(io.get_executor())); },
      asio::detached);
  io.run();
  if (!out) throw std::runtime_error("coroutine ended without a result");
  return std::move(*out);
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

/// Debug logging: every stored instance is logged with the flush it took (event=instance_stored
/// ... flush=shared|per_file).
GatewayOptions logging_each_flush() {
  GatewayOptions options;
  options.extra_yaml = "logging:\n  level: debug\n";
  return options;
}

/// Every one of `n` new instances took the shared flush (ADR 012), none the per-file one.
void expect_all_shared_flushes(const Gateway& gw, std::size_t n) {
  EXPECT_EQ(count_of(gw.log(), "duplicate=false flush=shared"), n) << gw.log();
  EXPECT_EQ(count_of(gw.log(), "flush=per_file"), 0u) << gw.log();
}

/// `count` generated files of `size_kib` in Explicit VR Little Endian (no odd-length deflate
/// data sets to pad), from `seed`.
std::vector<fs::path> ele_files(const fs::path& dir, int count, int size_kib, int seed) {
  return generate_dicom(dir,
                        {"--count", std::to_string(count), "--size-kib", std::to_string(size_kib),
                         "--transfer-syntax", "ele", "--seed", std::to_string(seed)});
}

/// An in-process SCU towards `called_ae` on 127.0.0.1:`port` that proposes a window of 8.
dicom::ScuOptions window_of_8(const std::string& called_ae, std::uint16_t port) {
  dicom::ScuOptions options;
  options.called_ae = called_ae;
  options.port = port;
  options.async_operations = 8;
  return options;
}

/// The Part 10 files of `files` ready to send, and one presentation context for the first one's
/// SOP class and transfer syntax (the callers generate a single pair).
struct Prepared {
  std::vector<dicom::SendItem> items;
  std::vector<dicom::PresentationContextRq> contexts;
};
Prepared prepare(const std::vector<fs::path>& files) {
  Prepared p;
  for (const auto& f : files) {
    auto item = dicom::prepare_send_item(f);
    if (!item.ok()) throw std::runtime_error(item.error().message);
    p.items.push_back(std::move(item).value());
  }
  p.contexts.push_back({1,
                        p.items.at(0).header.meta.media_storage_sop_class_uid,
                        {p.items.at(0).header.meta.transfer_syntax_uid}});
  return p;
}

TEST(AsyncOps, AWindowedSenderStoresEverythingByteForByte) {
  TempDir dir("gw-async");
  const auto files = generate_dicom(dir / "source", {"--count", "150", "--mix", "--transfer-syntax",
                                                     "ele", "--seed", "31", "--size-kib", "24"});
  ASSERT_EQ(files.size(), 150u);
  auto gw = Gateway::start(logging_each_flush());
  const fs::path report = dir / "report.txt";
  const auto sent = gw_send(gw->port(), dir / "source", report, {"--async", "8", "-j", "2"});
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  // The gateway granted the window it was asked for (limits.max_async_operations is 16).
  EXPECT_NE(gw->log().find("async_window=8 event=association_accepted"), std::string::npos)
      << gw->log();

  const auto lines = read_send_report(report);
  ASSERT_EQ(lines.size(), files.size());
  for (const auto& l : lines) EXPECT_TRUE(l.ok && l.status == "0x0000") << l.raw;
  EXPECT_EQ(gw->count_instances(), static_cast<int>(files.size()));
  for (const auto& source : files) {
    const auto stored = gw->stored_file(sop_instance_uid_of(source));
    ASSERT_TRUE(stored.has_value()) << source;
    EXPECT_EQ(data_set_bytes(*stored), data_set_bytes(source)) << source;
  }
  EXPECT_TRUE(gw->spool_files().empty());
  // Instances that arrived while another was in progress took the per-file flush (ADR 013).
  // (With 2 associations and a window of 8, several are always in progress at once.)
  EXPECT_NE(gw->log().find("duplicate=false flush=per_file"), std::string::npos) << gw->log();
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(AsyncOps, ReleaseWhileStoresAreInProgressIsAnsweredAfterTheirResponses) {
  TempDir dir("gw-async");
  const auto files = ele_files(dir / "source", 12, 64, 32);
  ASSERT_EQ(files.size(), 12u);
  auto gw = Gateway::start();

  struct Outcome {
    std::set<std::uint16_t> sent;
    std::set<std::uint16_t> answered;
    std::vector<std::uint16_t> statuses;
    std::uint32_t window = 0;
    std::uint32_t answered_during_release = 0;
    std::string error;
  };
  const Prepared prepared = prepare(files);
  const dicom::ScuOptions options = window_of_8("DICOM_GW", gw->port());
  const auto outcome =
      run_coroutine<Outcome>([&](asio::any_io_executor ex) -> asio::awaitable<Outcome> {
        Outcome out;
        auto assoc = co_await dicom::ScuAssociation::open(ex, options, prepared.contexts);
        if (!assoc.ok()) {
          out.error = assoc.error().message;
          co_return out;
        }
        out.window = (*assoc)->window();
        // A full window, then every response (in whatever order they come).
        for (std::size_t i = 0; i < 8; ++i) {
          auto id = co_await (*assoc)->send_store(prepared.items[i]);
          if (!id.ok()) {
            out.error = id.error().message;
            co_return out;
          }
          out.sent.insert(*id);
        }
        for (int i = 0; i < 8; ++i) {
          auto rsp = co_await (*assoc)->next_response();
          if (!rsp.ok()) {
            out.error = rsp.error().message;
            co_return out;
          }
          out.answered.insert(rsp->message_id_responded_to.value_or(0));
          out.statuses.push_back(rsp->status.value_or(0xFFFF));
        }
        // Four more, and the release right behind them, without waiting for their responses: the
        // gateway must finish and answer them before its A-RELEASE-RP.
        for (std::size_t i = 8; i < 12; ++i) {
          auto id = co_await (*assoc)->send_store(prepared.items[i]);
          if (!id.ok()) {
            out.error = id.error().message;
            co_return out;
          }
        }
        auto released = co_await (*assoc)->release();
        if (!released.ok()) out.error = "release: " + released.error().message;
        out.answered_during_release = (*assoc)->association().discarded_during_release();
        co_return out;
      });
  ASSERT_EQ(outcome.error, "") << gw->log();
  EXPECT_EQ(outcome.window, 8u);
  EXPECT_EQ(outcome.answered, outcome.sent);
  for (auto status : outcome.statuses) EXPECT_EQ(status, 0x0000);
  // The last four responses came before the A-RELEASE-RP (one P-DATA-TF each).
  EXPECT_EQ(outcome.answered_during_release, 4u);
  // All twelve stored, and the gateway answered all twelve before the release.
  EXPECT_EQ(gw->count_instances(), 12);
  // (Logged once the gateway's linger after its A-RELEASE-RP ends.)
  EXPECT_TRUE(wait_until(
      [&] { return gw->log().find("event=association_released messages=12") != std::string::npos; },
      10s))
      << gw->log();
  EXPECT_EQ(gw->log().find("event=store_failed"), std::string::npos) << gw->log();
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(AsyncOps, AGatewayLimitedToOneOperationAnswersSynchronously) {
  TempDir dir("gw-async");
  const auto files = ele_files(dir / "source", 20, 16, 33);
  GatewayOptions options = logging_each_flush();
  options.max_async_operations = 1;
  auto gw = Gateway::start(options);
  const fs::path report = dir / "report.txt";
  const auto sent = gw_send(gw->port(), dir / "source", report, {"--async", "8"});
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  EXPECT_NE(gw->log().find("async_window=1 event=association_accepted"), std::string::npos)
      << gw->log();
  EXPECT_EQ(gw->count_instances(), 20);
  // The shared flush (ADR 012) serves a synchronous association, every instance of it.
  expect_all_shared_flushes(*gw, 20);
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(AsyncOps, ASenderGrantedAWindowThatWaitsForEachResponseKeepsTheSharedFlush) {
  TempDir dir("gw-async");
  const auto files = ele_files(dir / "source", 10, 16, 35);
  auto gw = Gateway::start(logging_each_flush());
  const Prepared prepared = prepare(files);
  const dicom::ScuOptions options = window_of_8("DICOM_GW", gw->port());
  const auto error =
      run_coroutine<std::string>([&](asio::any_io_executor ex) -> asio::awaitable<std::string> {
        auto assoc = co_await dicom::ScuAssociation::open(ex, options, prepared.contexts);
        if (!assoc.ok()) co_return assoc.error().message;
        if ((*assoc)->window() != 8) co_return "window " + std::to_string((*assoc)->window());
        for (const auto& item : prepared.items) {  // one at a time, as a modality sends
          auto sent = co_await (*assoc)->send_store(item);
          if (!sent.ok()) co_return sent.error().message;
          auto rsp = co_await (*assoc)->next_response();
          if (!rsp.ok()) co_return rsp.error().message;
          if (rsp->status.value_or(0xFFFF) != 0) co_return "status not success";
        }
        auto released = co_await (*assoc)->release();
        co_return released.ok() ? std::string() : released.error().message;
      });
  ASSERT_EQ(error, "") << gw->log();
  EXPECT_NE(gw->log().find("async_window=8 event=association_accepted"), std::string::npos);
  // Nothing overlapped: every instance took the shared flush (ADR 013), not the window's.
  expect_all_shared_flushes(*gw, 10);
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(AsyncOps, StorescpGrantsNoWindowAndTheSenderStaysSynchronous) {
  TempDir dir("gw-async");
  const auto files = ele_files(dir / "source", 20, 16, 34);
  StoreScp scp = start_storescp(0, dir.subdir("received"));
  const fs::path report = dir / "report.txt";
  const auto sent =
      gw_send(scp.port, dir / "source", report, {"--async", "8", "--aec", "STORESCP"});
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  ASSERT_TRUE(wait_until([&] { return scp.received_files().size() >= files.size(); }, 10s));
  const auto lines = read_send_report(report);
  ASSERT_EQ(lines.size(), files.size());
  for (const auto& l : lines) EXPECT_TRUE(l.ok) << l.raw;

  // The window our sender works with against it: 1.
  const dicom::ScuOptions options = window_of_8("STORESCP", scp.port);
  const auto window =
      run_coroutine<std::uint32_t>([&](asio::any_io_executor ex) -> asio::awaitable<std::uint32_t> {
        auto assoc = co_await dicom::ScuAssociation::open(ex, options, prepare(files).contexts);
        if (!assoc.ok()) co_return 0;
        const auto w = (*assoc)->window();
        (void)co_await (*assoc)->release();
        co_return w;
      });
  EXPECT_EQ(window, 1u);
}

}  // namespace
}  // namespace gw::test
