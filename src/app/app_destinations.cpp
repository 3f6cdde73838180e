// App: the destinations the REST API lists, tests with C-ECHO, creates, edits and deletes.
#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "app/api_destinations.h"
#include "app/app.h"
#include "core/log.h"
#include "dicom/dimse.h"
#include "dicom/scu.h"
#include "dicom/uids.h"
#include "queue/destination_scu.h"
#include "queue/routing.h"

namespace gw::app {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("app"); }

}  // namespace

namespace {

http::DestinationConfigSnapshot destination_snapshot(const config::Destination& d) {
  http::DestinationConfigSnapshot s;
  s.name = d.name;
  s.ae_title = d.ae_title;
  s.calling_ae_title = d.calling_ae_title;
  s.host = d.host;
  s.port = d.port;
  s.tls_enabled = d.tls_enabled;
  s.verify_hostname = d.verify_hostname;
  s.max_associations = d.max_associations;
  s.max_async_operations = d.max_async_operations;
  s.tls_profile = std::string(config::to_string(d.tls_profile));
  s.tls_cert_path = d.tls_cert_path.string();
  s.tls_key_path = d.tls_key_path.string();
  s.tls_ca_path = d.tls_ca_path.string();
  return s;
}

http::DestinationConfigSnapshot api_snapshot(const config::Destination& running,
                                             const index::ApiDestination& stored) {
  auto s = destination_snapshot(running);
  s.source = "api";
  s.match = stored.match;
  const auto body = to_body(stored);
  if (body.contains("retry")) s.retry = body["retry"].dump();
  s.created_at_ms = stored.created_at_ms;
  s.created_by = stored.created_by;
  s.updated_at_ms = stored.updated_at_ms;
  s.updated_by = stored.updated_by;
  return s;
}

}  // namespace

std::vector<http::DestinationConfigSnapshot> App::destinations() const {
  std::vector<http::DestinationConfigSnapshot> out;
  {
    std::lock_guard lock(reload_mu_);
    for (const auto& d : config_.destinations) out.push_back(destination_snapshot(d));
    for (std::size_t i = 0; i < api_running_.size(); ++i) {
      out.push_back(api_snapshot(api_running_[i], api_destinations_[i]));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

namespace {

using SteadyClock = std::chrono::steady_clock;

std::int64_t ms_since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();
}

/// One association, one C-ECHO, release. Parameters by value: the frame owns what it uses.
asio::awaitable<http::EchoOutcome> echo_once(asio::any_io_executor ex, dicom::ScuOptions options,
                                             SteadyClock::time_point t0) {
  http::EchoOutcome out;
  std::vector<dicom::PresentationContextRq> contexts{
      {1,
       std::string(dicom::kVerificationSopClass),
       {std::string(dicom::kImplicitVrLittleEndian)}}};
  auto assoc = co_await dicom::ScuAssociation::open(ex, options, std::move(contexts));
  if (!assoc.ok()) {
    out.reason = assoc.error().message;
  } else {
    auto status = co_await (*assoc)->echo();
    if (!status.ok()) {
      out.reason = status.error().message;
      co_await (*assoc)->abort();
    } else {
      out.status = *status;
      out.ok = *status == dicom::status::kSuccess;
      if (!out.ok) out.reason = fmt::format("C-ECHO answered with status 0x{:04X}", *status);
      (void)co_await (*assoc)->release();
    }
  }
  out.elapsed_ms = ms_since(t0);
  co_return out;
}

}  // namespace

std::optional<http::EchoOutcome> App::echo_destination(const std::string& destination,
                                                       std::chrono::milliseconds timeout) {
  std::optional<config::Destination> d;
  std::string gateway_ae;
  {
    std::lock_guard lock(reload_mu_);
    for (const auto& c : config_.destinations) {
      if (c.name == destination) d = c;
    }
    for (const auto& c : api_running_) {
      if (c.name == destination) d = c;
    }
    gateway_ae = config_.ae_title;
  }
  if (!d) return std::nullopt;
  const auto t0 = SteadyClock::now();
  // Shared with the work below, which may outlive this call when the peer is slower than
  // `timeout` (its own socket timeouts end it soon after).
  auto done = std::make_shared<std::promise<http::EchoOutcome>>();
  auto answer = done->get_future();
  // The same settings as the forwarder's associations (scu_options()), with short timeouts.
  dicom::ScuOptions o = queue::destination_scu_options(*d, gateway_ae);
  o.connect_timeout = o.association_timeout = o.response_timeout = timeout;
  // Reading certificate and key files is blocking: the worker pool builds the context, the
  // I/O context runs the association.
  asio::post(workers_, [this, d = *d, o, done, t0]() mutable {
    if (d.tls_enabled) {
      dicom::ScuTlsOptions t = queue::destination_tls_options(d);
      auto context = t.make_context();
      if (!context.ok()) {
        done->set_value({false, -1, ms_since(t0),
                         "TLS settings of destination " + d.name + ": " + context.error().message});
        return;
      }
      t.context = std::move(context).value();
      o.tls = std::move(t);
    }
    auto strand = asio::make_strand(io_);
    asio::co_spawn(strand, echo_once(strand, std::move(o), t0),
                   [done](std::exception_ptr e, http::EchoOutcome out) {
                     if (e) out = {false, -1, 0, "internal error during C-ECHO"};
                     done->set_value(std::move(out));
                   });
  });
  if (answer.wait_for(timeout) != std::future_status::ready) {
    return http::EchoOutcome{false, -1, ms_since(t0),
                             fmt::format("no answer within {} ms", timeout.count())};
  }
  return answer.get();
}

core::Status App::apply_destinations_locked(const config::Config& merged,
                                            std::vector<index::ApiDestination> api) {
  GW_ASSIGN_OR_RETURN(auto routing, queue::RoutingTable::compile(merged));
  ingest_->set_routing(std::make_shared<const queue::RoutingTable>(std::move(routing)));
  if (auto st = forwarding_->reload(merged); !st.ok()) {
    log()->warn("event=forwarding_reload_skipped reason=\"{}\"", st.error().message);
  }
  api_running_.assign(merged.destinations.begin() + config_.destinations.size(),
                      merged.destinations.end());
  api_destinations_ = std::move(api);
  return core::ok_status();
}

http::DestinationEditOutcome App::edit_destination(const http::DestinationEdit& edit) {
  // Under the reload lock: a config reload never sees half of an edit, and the name checks
  // against the file's destinations hold until the edit is applied.
  std::lock_guard lock(reload_mu_);
  return edit_destination_locked(edit);
}

http::DestinationEditOutcome App::edit_destination_locked(const http::DestinationEdit& edit) {
  using Kind = http::DestinationEdit::Kind;
  http::DestinationEditOutcome out;
  auto fail = [&](core::ErrorCode code, std::string message) {
    out.error = core::make_error(code, std::move(message));
    return out;
  };
  auto fail_issues = [&](const std::vector<config::ConfigIssue>& issues) {
    for (const auto& i : issues) out.issues.push_back({i.path, i.message});
    out.error = core::make_error(core::ErrorCode::kConfig,
                                 fmt::format("the destination was not saved ({} issue{})",
                                             issues.size(), issues.size() == 1 ? "" : "s"));
    return out;
  };
  nlohmann::json body = nlohmann::json::object();
  if (edit.kind != Kind::kDelete) {
    body = nlohmann::json::parse(edit.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object()) return fail(core::ErrorCode::kInvalidArgument, "expected a JSON object");
  }
  std::string name = edit.name;
  if (edit.kind == Kind::kCreate) {
    if (const auto n = body.find("name"); n != body.end() && n->is_string()) name = *n;
  }
  for (const auto& d : config_.destinations) {
    if (name.empty() || !same_destination_name(d.name, name)) continue;
    return fail(core::ErrorCode::kConflict,
                fmt::format("destination `{}` is defined in the config file ({}); change it "
                            "there and reload",
                            d.name, config_.source_path.string()));
  }
  GW_CHECK(index_ != nullptr);
  auto listed = index_->list_destinations();
  if (!listed.ok()) return fail(core::ErrorCode::kInternal, listed.error().message);
  std::vector<index::ApiDestination> api = std::move(listed).value();
  auto existing = std::find_if(api.begin(), api.end(), [&](const index::ApiDestination& d) {
    return same_destination_name(d.name, name);
  });
  if (edit.kind != Kind::kCreate && existing == api.end()) {
    return fail(core::ErrorCode::kNotFound, fmt::format("no destination `{}`", name));
  }

  // The new set, merged and checked before anything is written: a write that is not applied
  // at once would run only after the next restart.
  std::optional<index::ApiDestination> stored;
  if (edit.kind == Kind::kDelete) {
    name = existing->name;
    api.erase(existing);
  } else {
    std::vector<config::ConfigIssue> issues;
    if (edit.kind == Kind::kUpdate) {
      // The URL names it; a body's name may only repeat it (no renames: outbox rows keep names).
      if (const auto n = body.find("name"); n != body.end() && !n->is_null()) {
        if (!n->is_string() || !same_destination_name(n->get<std::string>(), existing->name)) {
          issues.push_back({"name", "must be the name in the URL (`" + existing->name +
                                        "`): a destination cannot be renamed"});
        }
      }
      body["name"] = existing->name;
    }
    std::vector<config::ConfigIssue> checked_issues;
    auto checked = check_api_destination(body, config_, "", &checked_issues);
    issues.insert(issues.end(), checked_issues.begin(), checked_issues.end());
    if (!checked.ok() || !issues.empty()) return fail_issues(issues);
    stored = to_stored(body, *checked);
    stored->updated_at_ms = edit.audit.at_ms;
    stored->updated_by = edit.audit.actor;
    if (edit.kind == Kind::kCreate) {
      if (existing != api.end()) {
        return fail(core::ErrorCode::kAlreadyExists,
                    fmt::format("destination `{}` already exists", existing->name));
      }
      stored->created_at_ms = edit.audit.at_ms;
      stored->created_by = edit.audit.actor;
      api.push_back(*stored);
    } else {
      stored->created_at_ms = existing->created_at_ms;
      stored->created_by = existing->created_by;
      *existing = *stored;
    }
    name = stored->name;
    std::sort(api.begin(), api.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  std::vector<config::ConfigIssue> issues;
  auto merged = merge_api_destinations(config_, api, &issues);
  if (!merged.ok()) return fail_issues(issues);

  // The write and its audit row: one transaction.
  core::Status written;
  if (edit.kind == Kind::kDelete) {
    auto dead = index_->delete_destination(name, edit.force, edit.audit.at_ms, &edit.audit);
    if (dead.ok()) out.dead_lettered = *dead;
    if (!dead.ok()) written = dead.error();
  } else if (edit.kind == Kind::kCreate) {
    auto id = index_->create_destination(*stored, &edit.audit);
    if (!id.ok()) written = id.error();
  } else {
    written = index_->update_destination(*stored, &edit.audit);
  }
  if (!written.ok()) {
    out.error = written.error();
    return out;
  }
  if (auto st = apply_destinations_locked(*merged, std::move(api)); !st.ok()) {
    out.error = st.error();
    return out;
  }
  // An instance routed before this delete was applied queues its row after it: the forwarding
  // service dead-letters such rows like the delete did (ForwardingService).
  if (edit.kind == Kind::kDelete) forwarding_->destination_deleted(name);
  log()->info("event=api_destination_{} destination={} dead_lettered={}",
              edit.kind == Kind::kCreate   ? "created"
              : edit.kind == Kind::kUpdate ? "updated"
                                           : "deleted",
              name, out.dead_lettered);
  if (edit.kind != Kind::kDelete) {
    for (std::size_t i = 0; i < api_running_.size(); ++i) {
      if (!same_destination_name(api_running_[i].name, name)) continue;
      out.destination = api_snapshot(api_running_[i], api_destinations_[i]);
    }
  }
  return out;
}

}  // namespace gw::app
