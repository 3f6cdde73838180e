#include "app/scu_commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "core/check.h"
#include "dicom/dimse.h"
#include "dicom/uids.h"

namespace gw::app {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

/// Runs one coroutine to completion on a private io_context.
template <class T>
T run_sync(std::function<asio::awaitable<T>(asio::any_io_executor)> body) {
  asio::io_context io;
  std::optional<T> out;
  auto wrapper = [&]() -> asio::awaitable<void> { out.emplace(co_await body(io.get_executor())); };
  asio::co_spawn(io, wrapper(), asio::detached);
  io.run();
  if (!out) return T(core::make_error(core::ErrorCode::kInternal, "unexpected exception"));
  return std::move(*out);
}

/// Shared progress/summary state of one `send` run.
class Progress {
 public:
  Progress(std::size_t total, bool enabled, const fs::path& report)
      : total_(total), enabled_(enabled && ::isatty(2)), t0_(Clock::now()) {
    if (!report.empty()) report_.open(report, std::ios::out | std::ios::trunc);
  }

  void done(const dicom::SendItem& item, bool ok, const std::string& status_text) {
    std::lock_guard lock(mu_);
    ++finished_;
    if (ok) {
      ++ok_;
      bytes_ += item.file_size;
    } else {
      ++failed_;
      std::fprintf(stderr, "%sfailed: %s: %s\n", enabled_ ? "\r\033[K" : "", item.path.c_str(),
                   status_text.c_str());
    }
    if (report_.is_open()) {
      report_ << (ok ? "OK " : "FAILED ") << status_text << ' '
              << item.header.meta.media_storage_sop_instance_uid << ' ' << item.path.string()
              << '\n';
      report_.flush();
    }
    draw();
  }

  void draw() {
    if (!enabled_) return;
    const double secs = std::max(seconds_since(t0_), 1e-6);
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * finished_ / total_) : width;
    std::fprintf(stderr, "\r\033[K[%s%s] %zu/%zu  %s  %.0f inst/s",
                 std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                 finished_, total_, human_bytes(static_cast<double>(bytes_)).c_str(),
                 finished_ / secs);
    std::fflush(stderr);
  }

  int summary() {
    const double secs = std::max(seconds_since(t0_), 1e-6);
    if (enabled_) std::fprintf(stderr, "\r\033[K");
    std::printf("sent %zu/%zu instances (%s) in %.2f s: %.1f inst/s, %s/s; %zu failed\n", ok_,
                total_, human_bytes(static_cast<double>(bytes_)).c_str(), secs, ok_ / secs,
                human_bytes(bytes_ / secs).c_str(), failed_);
    return failed_ == 0 && ok_ == total_ ? 0 : 1;
  }

 private:
  std::mutex mu_;  // guards every counter and the report stream
  std::size_t total_;
  bool enabled_;
  Clock::time_point t0_;
  std::ofstream report_;
  std::size_t finished_ = 0, ok_ = 0, failed_ = 0;
  std::uint64_t bytes_ = 0;
};

std::vector<fs::path> collect_files(const std::vector<fs::path>& inputs, int& missing) {
  std::vector<fs::path> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(in, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (it->is_regular_file(ec)) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(in, ec)) {
      files.push_back(in);
    } else {
      std::fprintf(stderr, "error: %s: no such file or directory\n", in.c_str());
      ++missing;
    }
  }
  return files;
}

/// One association's worth of items: distinct (SOP class, transfer syntax) pairs fit in 128
/// presentation contexts.
std::vector<std::vector<const dicom::SendItem*>> batch_by_contexts(
    const std::vector<const dicom::SendItem*>& items) {
  std::vector<std::vector<const dicom::SendItem*>> batches;
  std::map<std::pair<std::string, std::string>, int> pairs;
  for (const auto* item : items) {
    auto key = std::make_pair(item->header.meta.media_storage_sop_class_uid,
                              item->header.meta.transfer_syntax_uid);
    if (batches.empty() || (!pairs.contains(key) && pairs.size() >= 127)) {
      batches.emplace_back();
      pairs.clear();
    }
    pairs.emplace(key, 0);
    batches.back().push_back(item);
  }
  return batches;
}

std::vector<dicom::PresentationContextRq> contexts_for(
    const std::vector<const dicom::SendItem*>& batch) {
  std::vector<dicom::PresentationContextRq> out;
  std::map<std::pair<std::string, std::string>, int> seen;
  std::uint8_t id = 1;
  for (const auto* item : batch) {
    auto key = std::make_pair(item->header.meta.media_storage_sop_class_uid,
                              item->header.meta.transfer_syntax_uid);
    if (seen.contains(key)) continue;
    seen.emplace(key, 0);
    out.push_back({id, key.first, {key.second}});
    id = static_cast<std::uint8_t>(id + 2);
  }
  return out;
}

/// Sends one batch on one association; reports every item to `progress`.
core::Status send_batch(const dicom::ScuOptions& scu,
                        const std::vector<const dicom::SendItem*>& batch, Progress& progress) {
  using R = core::Result<int>;
  auto result = run_sync<R>([&](asio::any_io_executor ex) -> asio::awaitable<R> {
    auto assoc = co_await dicom::ScuAssociation::open(ex, scu, contexts_for(batch));
    if (!assoc.ok()) {
      for (const auto* item : batch) progress.done(*item, false, assoc.error().message);
      co_return assoc.error();
    }
    // Up to window() requests outstanding; responses may come back in any order.
    std::map<std::uint16_t, const dicom::SendItem*> outstanding;
    auto report = [&](const dicom::Command& rsp) {
      // next_response() accepts outstanding ids only: the same ones as here.
      const auto it = outstanding.find(rsp.message_id_responded_to.value_or(0));
      GW_CHECK(it != outstanding.end());
      const auto status = rsp.status.value_or(0xFFFF);
      const auto category = dicom::categorize(status);
      std::string text = fmt::format("0x{:04X}", status);
      if (!rsp.error_comment.empty()) text += " " + rsp.error_comment;
      progress.done(*it->second,
                    category == dicom::StatusCategory::kSuccess ||
                        category == dicom::StatusCategory::kWarning,
                    text);
      outstanding.erase(it);
    };
    bool lost = false;
    std::string why_lost = "association lost";
    // Reads and reports one response; on failure the association is gone.
    auto collect_one = [&]() -> asio::awaitable<void> {
      auto rsp = co_await (*assoc)->next_response();
      if (rsp.ok()) {
        report(*rsp);
      } else {
        lost = true;
        why_lost = rsp.error().message;
      }
    };
    std::size_t i = 0;
    for (; i < batch.size() && !lost; ++i) {
      while (!lost && outstanding.size() >= (*assoc)->window()) co_await collect_one();
      if (lost) break;
      const auto* item = batch[i];
      auto id = co_await (*assoc)->send_store(*item);
      if (!id.ok()) {
        progress.done(*item, false, id.error().message);
        // A failure before anything was sent (no context, a file that cannot be read) costs
        // only this item.
        if ((*assoc)->usable()) continue;
        lost = true;  // the association is gone
        why_lost = id.error().message;
        ++i;
        break;
      }
      outstanding.emplace(*id, item);
    }
    while (!lost && !outstanding.empty()) co_await collect_one();
    if (lost) {
      // Sent and never answered: the peer may or may not have stored them.
      for (const auto& [id, item] : outstanding) progress.done(*item, false, why_lost);
      for (; i < batch.size(); ++i) progress.done(*batch[i], false, why_lost);
      co_return core::make_error(core::ErrorCode::kIo, why_lost);
    }
    auto released = co_await (*assoc)->release();
    if (!released.ok()) co_return released.error();
    co_return 0;
  });
  if (!result.ok()) return result.error();
  return {};
}

}  // namespace

int run_echo(const EchoArgs& args) {
  int failures = 0;
  for (int i = 0; i < args.repeat; ++i) {
    const auto t0 = Clock::now();
    using R = core::Result<std::uint16_t>;
    auto status = run_sync<R>([&](asio::any_io_executor ex) -> asio::awaitable<R> {
      std::vector<dicom::PresentationContextRq> pcs{
          {1,
           std::string(dicom::kVerificationSopClass),
           {std::string(dicom::kImplicitVrLittleEndian)}}};
      auto assoc = co_await dicom::ScuAssociation::open(ex, args.scu, pcs);
      if (!assoc.ok()) co_return assoc.error();
      auto st = co_await (*assoc)->echo();
      if (!st.ok()) co_return st.error();
      (void)co_await (*assoc)->release();
      co_return *st;
    });
    const double ms = seconds_since(t0) * 1000;
    if (!status.ok()) {
      std::fprintf(stderr, "C-ECHO %s:%u failed: %s\n", args.scu.host.c_str(), args.scu.port,
                   status.error().message.c_str());
      ++failures;
    } else if (*status != dicom::status::kSuccess) {
      std::fprintf(stderr, "C-ECHO %s:%u: status 0x%04X\n", args.scu.host.c_str(), args.scu.port,
                   *status);
      ++failures;
    } else {
      std::printf("C-ECHO %s:%u (%s): success in %.1f ms\n", args.scu.host.c_str(), args.scu.port,
                  args.scu.called_ae.c_str(), ms);
    }
  }
  return failures == 0 ? 0 : 1;
}

int run_send(const SendArgs& args) {
  int missing = 0;
  const auto files = collect_files(args.inputs, missing);
  std::vector<dicom::SendItem> items;
  items.reserve(files.size());
  int skipped = 0;
  for (const auto& f : files) {
    auto item = dicom::prepare_send_item(f);
    if (!item.ok()) {
      std::fprintf(stderr, "skipped: %s\n", item.error().message.c_str());
      ++skipped;
      continue;
    }
    items.push_back(std::move(item).value());
  }
  if (items.empty()) {
    std::fprintf(stderr, "error: no DICOM files to send\n");
    return missing > 0 ? 2 : 1;
  }
  Progress progress(items.size(), args.progress, args.report);

  const int parallel = std::clamp(args.parallel, 1, 64);
  std::vector<std::vector<const dicom::SendItem*>> shares(static_cast<std::size_t>(parallel));
  for (std::size_t i = 0; i < items.size(); ++i) shares[i % shares.size()].push_back(&items[i]);

  std::mutex err_mu;  // guards first_error
  std::string first_error;
  auto worker = [&](const std::vector<const dicom::SendItem*>& share) {
    for (const auto& batch : batch_by_contexts(share)) {
      auto st = send_batch(args.scu, batch, progress);
      if (!st.ok()) {
        std::lock_guard lock(err_mu);
        if (first_error.empty()) first_error = st.error().message;
      }
    }
  };
  {
    std::vector<std::jthread> threads;
    for (const auto& share : shares) {
      if (!share.empty()) threads.emplace_back(worker, std::cref(share));
    }
  }
  const int rc = progress.summary();
  if (!first_error.empty()) std::fprintf(stderr, "error: %s\n", first_error.c_str());
  if (skipped > 0) std::fprintf(stderr, "%d file(s) skipped (not DICOM Part 10)\n", skipped);
  return rc == 0 && missing == 0 ? 0 : 1;
}

}  // namespace gw::app
