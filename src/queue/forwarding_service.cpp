#include "queue/forwarding_service.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <string_view>

#include "core/clock.h"
#include "core/log.h"

namespace gw::queue {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

ForwarderSettings settings_for(const config::Config& config,
                               const config::Destination& destination) {
  return ForwarderSettings{destination, config.forwarding, config.ae_title};
}

/// Between two sweeps when nothing asks for one (rows another node queued, a failed sweep).
constexpr auto kSweepInterval = std::chrono::seconds(60);
constexpr auto kForgetDeletedAfter = std::chrono::minutes(10);

}  // namespace

ForwardingService::ForwardingService(asio::io_context& io, asio::any_io_executor worker_pool,
                                     index::Index& index, std::filesystem::path data_dir,
                                     std::string owner_id, const config::Config& config,
                                     ForwardObserver* observer, dicom::SourceOpener open_file)
    : io_(io),
      worker_pool_(std::move(worker_pool)),
      index_(index),
      data_dir_(std::move(data_dir)),
      owner_id_(std::move(owner_id)),
      observer_(observer),
      open_file_(std::move(open_file)),
      state_(std::make_shared<State>(io)) {
  for (const auto& d : config.destinations) {
    state_->forwarders.emplace(d.name, make_forwarder(config, d));
  }
}

ForwardingService::~ForwardingService() = default;

std::shared_ptr<Forwarder> ForwardingService::make_forwarder(
    const config::Config& config, const config::Destination& destination) const {
  return std::make_shared<Forwarder>(
      io_, worker_pool_, index_, data_dir_, owner_id_ + "/" + destination.name,
      settings_for(config, destination), Random{}, observer_, open_file_);
}

void ForwardingService::start() {
  std::lock_guard lock(state_->mu);
  if (state_->started || state_->stopped) return;
  state_->started = true;
  for (auto& [name, forwarder] : state_->forwarders) forwarder->start();
  state_->sweeping = true;
  asio::co_spawn(state_->sweep_strand, sweep_loop(), asio::detached);
}

void ForwardingService::notify(const std::vector<std::string>& destinations) {
  std::lock_guard lock(state_->mu);
  bool unknown = false;
  for (const auto& name : destinations) {
    auto it = state_->forwarders.find(name);
    if (it != state_->forwarders.end()) {
      it->second->notify();
    } else {
      unknown = true;  // perhaps routed before its delete was applied
    }
  }
  if (unknown) request_sweep_locked(state_);
}

void ForwardingService::destination_deleted(const std::string& name) {
  std::lock_guard lock(state_->mu);
  state_->deleted.insert(name);
  state_->quiet_since = std::chrono::steady_clock::now();
  request_sweep_locked(state_);
}

void ForwardingService::request_sweep_locked(const std::shared_ptr<State>& state) {
  if (!state->started || state->stopped) return;
  asio::post(state->sweep_strand, [state]() { state->sweep_wake.notify_all(); });
}

asio::awaitable<void> ForwardingService::sweep_loop() {
  for (;;) {
    const auto seen = state_->sweep_wake.generation();
    {
      std::lock_guard lock(state_->mu);
      if (state_->stopped) break;
    }
    // Index calls: the worker pool (then back on the sweep strand).
    co_await asio::co_spawn(
        worker_pool_,
        [this]() -> asio::awaitable<void> {
          try {
            sweep();
          } catch (const std::exception& e) {  // never end the loop: stop() waits for it
            log()->error("event=outbox_sweep_failed reason=\"{}\"", e.what());
          }
          co_return;
        },
        asio::use_awaitable);
    co_await state_->sweep_wake.wait_until(std::chrono::steady_clock::now() + kSweepInterval, seen);
  }
  {
    std::lock_guard lock(state_->mu);
    state_->sweeping = false;
  }
  state_->sweep_done.notify_all();
}

void ForwardingService::sweep() {
  auto api = index_.list_destinations();
  if (!api.ok()) {
    log()->warn("event=outbox_sweep_failed reason=\"{}\"", api.error().message);
    return;
  }
  std::vector<std::string> names;
  {
    std::lock_guard lock(state_->mu);
    auto& s = *state_;
    // Known: runs here, or is an API destination in the index (perhaps created by another node
    // that runs it already). A known name is never swept.
    auto known = [&](const std::string& name) {
      return std::any_of(
                 s.forwarders.begin(), s.forwarders.end(),
                 [&](const auto& f) { return config::same_destination_name(f.first, name); }) ||
             std::any_of(api->begin(), api->end(), [&](const auto& d) {
               return config::same_destination_name(d.name, name);
             });
    };
    for (const auto& d : *api) s.api_seen.insert(d.name);
    for (const auto& name : s.api_seen) {
      // Deleted by another node, or here.
      if (!known(name) && s.deleted.insert(name).second) {
        s.quiet_since = std::chrono::steady_clock::now();
      }
    }
    for (auto it = s.deleted.begin(); it != s.deleted.end();) {
      if (known(*it)) {
        it = s.deleted.erase(it);  // created again (or now in the file): its rows are sent
      } else {
        names.push_back(*it);
        ++it;
      }
    }
  }
  if (names.empty()) return;
  auto changed = index_.dead_letter_deleted_outbox(names, core::wall_clock_ms());
  if (changed.ok()) {
    std::lock_guard lock(state_->mu);
    auto& s = *state_;
    const auto now = std::chrono::steady_clock::now();
    if (*changed > 0) {
      s.quiet_since = now;
    } else if (now - s.quiet_since >= kForgetDeletedAfter) {
      for (const auto& name : names) {  // nothing late came: forget them
        s.deleted.erase(name);
        s.api_seen.erase(name);
      }
    }
  }
  if (!changed.ok()) {
    log()->warn("event=outbox_sweep_failed reason=\"{}\"", changed.error().message);
  } else if (*changed > 0) {
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ",") + name;
    log()->warn("event=outbox_dead_lettered destinations={} rows={} reason=\"destination deleted\"",
                list, *changed);
  }
}

core::Status ForwardingService::reload(const config::Config& config) {
  std::lock_guard lock(state_->mu);
  if (state_->stopped) {
    return core::make_error(core::ErrorCode::kCancelled, "forwarding has stopped");
  }
  std::set<std::string> wanted;
  for (const auto& d : config.destinations) {
    wanted.insert(d.name);
    auto it = state_->forwarders.find(d.name);
    if (it != state_->forwarders.end()) {
      it->second->update(settings_for(config, d));
      continue;
    }
    auto forwarder = make_forwarder(config, d);
    const bool predecessor_stopping =
        std::any_of(state_->retiring.begin(), state_->retiring.end(),
                    [&](const auto& f) { return f->name() == d.name; });
    // With a predecessor still stopping, retire() starts this one when it is done.
    if (state_->started && !predecessor_stopping) forwarder->start();
    log()->info("event=destination_added destination={}", d.name);
    state_->forwarders.emplace(d.name, std::move(forwarder));
  }
  for (auto it = state_->forwarders.begin(); it != state_->forwarders.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    log()->info("event=destination_removed destination={}", it->first);
    state_->retiring.push_back(it->second);
    asio::co_spawn(io_, retire(state_, it->second), asio::detached);
    it = state_->forwarders.erase(it);
  }
  request_sweep_locked(state_);
  return {};
}

asio::awaitable<void> ForwardingService::retire(std::shared_ptr<State> state,
                                                std::shared_ptr<Forwarder> forwarder) {
  co_await forwarder->stop();
  std::lock_guard lock(state->mu);
  std::erase(state->retiring, forwarder);
  const bool another_retiring =
      std::any_of(state->retiring.begin(), state->retiring.end(),
                  [&](const auto& f) { return f->name() == forwarder->name(); });
  auto it = state->forwarders.find(forwarder->name());
  if (it != state->forwarders.end() && !it->second->started() && !another_retiring &&
      state->started && !state->stopped) {
    it->second->start();
  }
  request_sweep_locked(state);  // the rows it gave back may belong to a deleted destination
}

asio::awaitable<void> ForwardingService::stop() {
  std::vector<std::shared_ptr<Forwarder>> all;
  {
    std::lock_guard lock(state_->mu);
    state_->stopped = true;
    for (auto& [name, forwarder] : state_->forwarders) all.push_back(forwarder);
    all.insert(all.end(), state_->retiring.begin(), state_->retiring.end());
  }
  // Signal all first so they wind down in parallel, then wait for each.
  for (auto& forwarder : all) forwarder->request_stop();
  for (auto& forwarder : all) co_await forwarder->stop();
  // The sweep loop ends at its next look (a sweep under way finishes first). A raw pointer:
  // the lambda's captures stay trivial (see Forwarder::on_pool); state_ outlives the wait.
  State* state = state_.get();
  co_await asio::co_spawn(
      state->sweep_strand,
      [state]() -> asio::awaitable<void> {
        state->sweep_wake.notify_all();
        for (;;) {
          const auto seen = state->sweep_done.generation();
          {
            std::lock_guard lock(state->mu);
            if (!state->sweeping) co_return;
          }
          co_await state->sweep_done.wait(seen);
        }
      },
      asio::use_awaitable);
}

void ForwardingService::stop_and_wait() { asio::co_spawn(io_, stop(), asio::use_future).get(); }

std::vector<DestinationStatus> ForwardingService::status() const {
  std::lock_guard lock(state_->mu);
  std::vector<DestinationStatus> out;
  out.reserve(state_->forwarders.size());
  for (const auto& [name, forwarder] : state_->forwarders) out.push_back(forwarder->status());
  return out;
}

std::optional<DestinationStatus> ForwardingService::status(const std::string& destination) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->forwarders.find(destination);
  if (it == state_->forwarders.end()) return std::nullopt;
  return it->second->status();
}

bool ForwardingService::paused(const std::string& destination) const {
  auto s = status(destination);
  return s && s->paused;
}

}  // namespace gw::queue
