#include "queue/forwarding_service.h"

#include <algorithm>
#include <set>

#include "core/log.h"

namespace gw::queue {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

ForwarderSettings settings_for(const config::Config& config,
                               const config::Destination& destination) {
  return ForwarderSettings{destination, config.forwarding, config.ae_title};
}

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
      state_(std::make_shared<State>()) {
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
}

void ForwardingService::notify(const std::vector<std::string>& destinations) {
  std::lock_guard lock(state_->mu);
  for (const auto& name : destinations) {
    auto it = state_->forwarders.find(name);
    if (it != state_->forwarders.end()) it->second->notify();
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
