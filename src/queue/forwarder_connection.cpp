// Opening and releasing a worker's association (Forwarder::Connection) and the SCU options and
// TLS context they are opened with.

#include <algorithm>
#include <atomic>

#include "core/log.h"
#include "queue/destination_scu.h"
#include "queue/forwarder.h"
#include "queue/forwarder_internal.h"
#include "queue/send_batch.h"

namespace gw::queue {

using core::make_error;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("queue"); }

/// Serial numbers of association attempts, unique in the process (ForwardObserver).
std::atomic<std::uint64_t> next_association_serial{0};

}  // namespace

asio::awaitable<core::Result<std::shared_ptr<const tls::TlsContext>>> Forwarder::tls_context() {
  if (tls_context_ && tls_generation_ == settings_generation_) co_return tls_context_;
  const auto generation = settings_generation_;
  const dicom::ScuTlsOptions o = destination_tls_options(settings_->destination);
  // Reading certificate and key files is blocking: the worker pool.
  auto make = [&o]() { return o.make_context(); };
  auto made = co_await on_pool(make);
  if (!made.ok()) {
    co_return make_error(made.error().code,
                         "TLS settings of destination " + name_ + ": " + made.error().message);
  }
  if (generation == settings_generation_ && tls_context_ != *made) {
    tls_context_ = *made;
    tls_generation_ = generation;
    for (const auto& w : (*made)->warnings()) {
      log()->warn("event=tls_warning destination={} reason=\"{}\"", name_, w);
    }
  }
  co_return std::move(made).value();
}

asio::awaitable<core::Result<dicom::ScuOptions>> Forwarder::scu_options() {
  const auto settings = settings_;
  const auto& d = settings->destination;
  dicom::ScuOptions o = destination_scu_options(d, settings->gateway_ae_title);
  // The channel's read deadline outlives the last response by this much; an association kept
  // for reuse must survive its idle period.
  o.response_timeout = std::max<dicom::Clock::duration>(
      o.response_timeout, settings->forwarding.association_idle_timeout + std::chrono::seconds(60));
  if (d.tls_enabled) {
    auto context = co_await tls_context();
    if (!context.ok()) co_return context.error();
    dicom::ScuTlsOptions t = destination_tls_options(d);
    t.context = std::move(context).value();
    o.tls = std::move(t);
  }
  co_return o;
}

asio::awaitable<core::Status> Forwarder::open_connection(
    Connection& conn, std::vector<Pair> pairs, std::optional<dicom::AssociateRj>& rejection) {
  const auto generation = settings_generation_;
  conn.serial = ++next_association_serial;  // an attempt, even if it fails below
  auto options = co_await scu_options();
  if (!options.ok()) co_return options.error();
  auto assoc = co_await dicom::ScuAssociation::open(strand_, *options, presentation_contexts(pairs),
                                                    &rejection);
  if (!assoc.ok()) co_return assoc.error();
  conn.assoc = std::move(assoc).value();
  conn.proposed = std::set<Pair>(pairs.begin(), pairs.end());
  conn.settings_generation = generation;
  conn.idle_deadline =
      std::chrono::steady_clock::now() + settings_->forwarding.association_idle_timeout;
  conn.used = false;
  conn.stores = 0;
  ++counters_.associations_opened;
  ++open_associations_;
  if (observer_ != nullptr) {
    ForwardAssociation a;
    a.serial = conn.serial;
    a.destination = name_;
    a.host = options->host;
    a.port = options->port;
    a.calling_ae = options->calling_ae;
    a.called_ae = options->called_ae;
    a.tls = options->tls.has_value();
    observer_->association_opened(a);
  }
  log()->info(
      "event=association_opened destination={} host={} port={} tls={} calling_ae={} called_ae={} "
      "proposed={} accepted={} window={}",
      name_, options->host, options->port, options->tls.has_value(), options->calling_ae,
      options->called_ae, pairs.size(), conn.assoc->association().contexts().size(),
      conn.assoc->window());
  co_return core::Status{};
}

asio::awaitable<void> Forwarder::close_connection(Connection& conn, const char* why) {
  if (!conn.assoc) co_return;
  auto assoc = std::move(conn.assoc);
  const auto stores = conn.stores;
  conn.proposed.clear();
  conn.used = false;
  --open_associations_;
  auto st = co_await assoc->release();
  log()->info("event=association_released destination={} instances={} reason=\"{}\"{}", name_,
              stores, why, st.ok() ? "" : " release_error=\"" + st.error().message + "\"");
  end_attempt(conn, st.ok() ? std::string() : "release failed: " + st.error().message);
}

void Forwarder::end_attempt(Connection& conn, const std::string& error) {
  if (conn.serial == 0) return;
  if (observer_ != nullptr) observer_->association_ended(name_, conn.serial, error);
  conn.serial = 0;
}

}  // namespace gw::queue
