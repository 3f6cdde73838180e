#include "app/activity_audit.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/peer_address.h"

namespace gw::app {

namespace {

using Json = nlohmann::json;

std::string ae_actor(const std::string& calling_ae) {
  return calling_ae.empty() ? "anonymous" : "ae:" + calling_ae;
}

/// Who the peer is, as every association row states it.
Json association_json(const dicom::AssociationInfo& info) {
  Json j = {{"listener", info.listener},
            {"calling_ae", info.calling_ae},
            {"called_ae", info.called_ae},
            {"tls", info.tls}};
  if (info.id != 0) j["association"] = info.id;
  if (!info.tls_subject.empty()) j["tls_subject"] = info.tls_subject;
  return j;
}

}  // namespace

std::int64_t ActivityAudit::system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ActivityAudit::ActivityAudit(audit::AuditWriter& writer, std::function<std::int64_t()> now_ms)
    : writer_(writer), now_ms_(std::move(now_ms)) {}

void ActivityAudit::write(std::vector<index::AuditEvent> rows) {
  for (auto& row : rows) writer_.enqueue(std::move(row));
}

bool ActivityAudit::due(std::int64_t first_at_ms, std::size_t size, std::int64_t now) const {
  return size >= kFlushInstances ||
         now - first_at_ms >= std::chrono::milliseconds(kFlushInterval).count();
}

// ---- associations ------------------------------------------------------------------------------

void ActivityAudit::association_accepted(const dicom::AssociationInfo& info) {
  index::AuditEvent e;
  e.at_ms = now_ms_();
  e.actor = ae_actor(info.calling_ae);
  e.action = "association.accepted";
  e.target = "ae:" + info.called_ae;
  e.peer_address = info.peer_address;
  Json d = association_json(info);
  if (info.tls) {
    d["tls_protocol"] = info.tls_protocol;
    d["tls_cipher"] = info.tls_cipher;
  }
  e.details = d.dump();
  {
    std::lock_guard lock(mu_);
    received_[info.id].info = info;
  }
  writer_.enqueue(std::move(e));
}

void ActivityAudit::association_rejected(const dicom::AssociationInfo& info,
                                         dicom::RejectCategory category, const std::string& why) {
  index::AuditEvent e;
  e.at_ms = now_ms_();
  e.actor = ae_actor(info.calling_ae);
  e.action = "association.rejected";
  e.target = "ae:" + info.called_ae;
  e.outcome = "denied";
  e.peer_address = info.peer_address;
  Json d = association_json(info);
  d["stage"] = "associate";
  d["reason"] = dicom::to_string(category);
  d["message"] = why;
  e.details = d.dump();
  refusal("associate|" + core::host_of_peer(info.peer_address) + "|" + info.calling_ae + "|" +
              info.called_ae + "|" + std::string(dicom::to_string(category)),
          std::move(e));
}

void ActivityAudit::tls_handshake_failed(const dicom::AssociationInfo& info,
                                         tls::HandshakeReason reason, const std::string& why) {
  index::AuditEvent e;
  e.at_ms = now_ms_();
  e.actor = "anonymous";  // no A-ASSOCIATE-RQ was read: no AE title yet
  e.action = "association.rejected";
  e.target = "listener:" + info.listener;
  e.outcome = "denied";
  e.peer_address = info.peer_address;
  Json d = {{"listener", info.listener},
            {"tls", true},
            {"stage", "tls_handshake"},
            {"reason", tls::to_string(reason)},
            {"message", why}};
  if (!info.tls_subject.empty()) d["tls_subject"] = info.tls_subject;
  e.details = d.dump();
  refusal("tls|" + core::host_of_peer(info.peer_address) + "|" + info.listener + "|" +
              std::string(tls::to_string(reason)),
          std::move(e));
}

void ActivityAudit::refusal(const std::string& key, index::AuditEvent event) {
  const auto now = event.at_ms;
  auto rows = refusals_.record(key, std::move(event));
  auto due_rows = refusals_.take_due(now);
  rows.insert(rows.end(), std::make_move_iterator(due_rows.begin()),
              std::make_move_iterator(due_rows.end()));
  write(std::move(rows));
}

void ActivityAudit::instance_received(const dicom::AssociationInfo& info,
                                      const dicom::InstanceOutcome& outcome) {
  const auto now = now_ms_();
  std::vector<index::AuditEvent> rows;
  {
    std::lock_guard lock(mu_);
    Received& r = received_[info.id];
    if (r.info.id == 0) r.info = info;
    ReceivedTally& t = r.studies[outcome.study_instance_uid];
    if (t.first_at_ms == 0) t.first_at_ms = now;
    if (outcome.stored) {
      ++t.stored;
      t.bytes += outcome.bytes;
      t.uids.push_back(outcome.sop_instance_uid);
      ++t.sop_classes[outcome.sop_class_uid];
    } else {
      ++t.failed;
      t.failed_uids.push_back(outcome.sop_instance_uid);
    }
    if (due(t.first_at_ms, t.uids.size() + t.failed_uids.size(), now)) {
      rows.push_back(received_row(r, outcome.study_instance_uid, t, "in_progress", true));
      t = ReceivedTally{};
    }
  }
  write(std::move(rows));
}

void ActivityAudit::association_ended(const dicom::AssociationInfo& info,
                                      dicom::AssociationEnd end) {
  std::vector<index::AuditEvent> rows;
  {
    std::lock_guard lock(mu_);
    auto it = received_.find(info.id);
    if (it == received_.end()) return;
    for (const auto& [study, t] : it->second.studies) {
      if (t.stored + t.failed == 0) continue;
      rows.push_back(received_row(it->second, study, t, std::string(dicom::to_string(end)), false));
    }
    received_.erase(it);
  }
  write(std::move(rows));
}

index::AuditEvent ActivityAudit::received_row(const Received& r, const std::string& study,
                                              const ReceivedTally& t, const std::string& end,
                                              bool partial) const {
  index::AuditEvent e;
  e.at_ms = now_ms_();
  e.actor = ae_actor(r.info.calling_ae);
  e.action = "instances.received";
  e.target = study;
  e.outcome = t.failed > 0 ? "failed" : "ok";
  e.peer_address = r.info.peer_address;
  Json d = association_json(r.info);
  d["study_instance_uid"] = study.empty() ? Json(nullptr) : Json(study);
  d["instances"] = t.stored;
  d["failed"] = t.failed;
  d["bytes"] = t.bytes;
  d["sop_classes"] = t.sop_classes;
  d["sop_instance_uids"] = t.uids;
  if (!t.failed_uids.empty()) d["failed_sop_instance_uids"] = t.failed_uids;
  d["end"] = end;
  d["partial"] = partial;
  e.details = d.dump();
  return e;
}

// ---- forwarders --------------------------------------------------------------------------------

void ActivityAudit::association_opened(const queue::ForwardAssociation& association) {
  std::lock_guard lock(mu_);
  Forwarded& f = forwarded_[association.serial];
  f.association = association;
  f.opened = true;
}

void ActivityAudit::row_finished(const std::string& destination, std::uint64_t serial,
                                 const index::OutboxItem& item, const queue::Decision& decision) {
  const auto now = now_ms_();
  std::vector<index::AuditEvent> rows;
  {
    std::lock_guard lock(mu_);
    Forwarded& f = forwarded_[serial];
    f.association.serial = serial;
    f.association.destination = destination;
    ForwardTally& t = f.studies[item.study_instance_uid];
    if (t.first_at_ms == 0) t.first_at_ms = now;
    switch (decision.action) {
      case queue::Decision::Action::kComplete:
        ++t.delivered;
        if (decision.result.warning) ++t.warnings;
        t.bytes += static_cast<std::uint64_t>(std::max<std::int64_t>(0, item.size_bytes));
        t.uids.push_back(item.sop_instance_uid);
        ++t.sop_classes[item.sop_class_uid];
        break;
      case queue::Decision::Action::kReschedule:
        ++t.retried;
        t.failures.emplace_back(item.sop_instance_uid, decision.result.comment);
        break;
      case queue::Decision::Action::kFail:
        ++t.dead;
        t.failures.emplace_back(item.sop_instance_uid, decision.result.comment);
        break;
    }
    // Rows outside any association (serial 0: an unreadable stored file) are written at once.
    if (serial == 0 || due(t.first_at_ms, t.size(), now)) {
      rows.push_back(forwarded_row(f, item.study_instance_uid, t, "", serial != 0));
      t = ForwardTally{};
    }
    if (serial == 0) forwarded_.erase(serial);
  }
  write(std::move(rows));
}

void ActivityAudit::association_ended(const std::string& destination, std::uint64_t serial,
                                      const std::string& error) {
  std::vector<index::AuditEvent> rows;
  {
    std::lock_guard lock(mu_);
    auto it = forwarded_.find(serial);
    if (it == forwarded_.end()) return;  // opened and released without sending anything
    it->second.association.destination = destination;
    for (const auto& [study, t] : it->second.studies) {
      if (t.size() == 0) continue;
      rows.push_back(forwarded_row(it->second, study, t, error, false));
    }
    forwarded_.erase(it);
  }
  write(std::move(rows));
}

index::AuditEvent ActivityAudit::forwarded_row(const Forwarded& f, const std::string& study,
                                               const ForwardTally& t, const std::string& error,
                                               bool partial) const {
  const auto& a = f.association;
  index::AuditEvent e;
  e.at_ms = now_ms_();
  e.actor = "system";
  e.action = "instances.forwarded";
  e.target = study;
  e.outcome = t.retried + t.dead > 0 ? "failed" : "ok";
  if (f.opened) e.peer_address = a.host + ":" + std::to_string(a.port);
  Json d = {{"destination", a.destination}, {"association", a.serial}, {"opened", f.opened}};
  if (f.opened) {
    d["host"] = a.host;
    d["port"] = a.port;
    d["calling_ae"] = a.calling_ae;
    d["called_ae"] = a.called_ae;
    d["tls"] = a.tls;
  }
  d["study_instance_uid"] = study;
  d["instances"] = t.delivered;
  d["warnings"] = t.warnings;
  d["retried"] = t.retried;
  d["dead"] = t.dead;
  d["bytes"] = t.bytes;
  d["sop_classes"] = t.sop_classes;
  d["sop_instance_uids"] = t.uids;
  Json failures = Json::array();
  for (const auto& [uid, reason] : t.failures) {
    failures.push_back({{"sop_instance_uid", uid}, {"reason", reason}});
  }
  d["failures"] = failures;
  if (!error.empty()) d["error"] = error;
  d["partial"] = partial;
  e.details = d.dump();
  return e;
}

void ActivityAudit::flush_all() {
  std::vector<index::AuditEvent> rows;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, r] : received_) {
      for (const auto& [study, t] : r.studies) {
        if (t.stored + t.failed > 0) rows.push_back(received_row(r, study, t, "shutdown", false));
      }
    }
    received_.clear();
    for (const auto& [serial, f] : forwarded_) {
      for (const auto& [study, t] : f.studies) {
        if (t.size() > 0) rows.push_back(forwarded_row(f, study, t, "shutdown", false));
      }
    }
    forwarded_.clear();
  }
  auto folded = refusals_.take_all();
  rows.insert(rows.end(), std::make_move_iterator(folded.begin()),
              std::make_move_iterator(folded.end()));
  write(std::move(rows));
}

}  // namespace gw::app
