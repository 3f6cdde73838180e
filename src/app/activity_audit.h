#pragma once
/// ActivityAudit: the audit trail of DICOM activity (ADR 006). It observes the listeners
/// (dicom::AssociationObserver) and the forwarders (queue::ForwardObserver) and turns what they
/// report into audit rows, queued to the background AuditWriter so that no I/O thread ever
/// waits for the database:
///
/// - association.accepted, and association.rejected (refused A-ASSOCIATE-RQ, or a failed TLS
///   handshake on a DICOM TLS listener: details.stage "associate" | "tls_handshake",
///   details.reason the metric's label). Refusals repeated by one peer are folded into one row
///   per minute with the number of attempts (audit::AuditThrottle); the first is written at once.
/// - instances.received: one row per (association, study) when the association ends, with
///   counts, bytes and the SOP Instance UIDs (never patient names or IDs).
/// - instances.forwarded: one row per (forwarder association, study) when it ends, with the
///   destination, counts, UIDs and each failure's reason.
///
/// A long association is summarised in parts: a (association, study) tally is written early
/// ("partial": true) once it holds kFlushInstances instances or its oldest one is kFlushInterval
/// old (checked as instances arrive), so a crash loses at most that window of the summary —
/// never an instance: the instance and outbox rows committed before the C-STORE response are
/// the durable record.
///
/// Thread-safe: every callback takes one mutex for a few map operations and returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "audit/throttle.h"
#include "audit/writer.h"
#include "dicom/scp.h"
#include "queue/forward_observer.h"

namespace gw::app {

class ActivityAudit final : public dicom::AssociationObserver, public queue::ForwardObserver {
 public:
  static constexpr std::size_t kFlushInstances = 500;
  static constexpr std::chrono::seconds kFlushInterval{60};

  /// `now_ms`: Unix milliseconds (tests inject a clock).
  explicit ActivityAudit(audit::AuditWriter& writer,
                         std::function<std::int64_t()> now_ms = system_now_ms);

  // dicom::AssociationObserver
  void association_accepted(const dicom::AssociationInfo& info) override;
  void association_rejected(const dicom::AssociationInfo& info, dicom::RejectCategory category,
                            const std::string& why) override;
  void tls_handshake_failed(const dicom::AssociationInfo& info, tls::HandshakeReason reason,
                            const std::string& why) override;
  void instance_received(const dicom::AssociationInfo& info,
                         const dicom::InstanceOutcome& outcome) override;
  void association_ended(const dicom::AssociationInfo& info, dicom::AssociationEnd end) override;

  // queue::ForwardObserver
  void association_opened(const queue::ForwardAssociation& association) override;
  void row_finished(const std::string& destination, std::uint64_t serial,
                    const index::OutboxItem& item, const queue::Decision& decision) override;
  void association_ended(const std::string& destination, std::uint64_t serial,
                         const std::string& error) override;

  /// Writes every summary still open (associations cut off by the shutdown: "end": "shutdown")
  /// and every folded refusal. Call before stopping the writer.
  void flush_all();

  static std::int64_t system_now_ms();

 private:
  struct ReceivedTally {
    std::int64_t stored = 0;
    std::int64_t failed = 0;
    std::uint64_t bytes = 0;
    std::vector<std::string> uids;
    std::vector<std::string> failed_uids;
    std::map<std::string, std::int64_t> sop_classes;  ///< of the stored ones: UID -> count
    std::int64_t first_at_ms = 0;
  };
  struct Received {
    dicom::AssociationInfo info;
    std::map<std::string, ReceivedTally> studies;  ///< by Study Instance UID ("" = unknown)
  };
  struct ForwardTally {
    std::int64_t delivered = 0;
    std::int64_t warnings = 0;
    std::int64_t retried = 0;
    std::int64_t dead = 0;
    std::uint64_t bytes = 0;
    std::vector<std::string> uids;                              ///< delivered
    std::vector<std::pair<std::string, std::string>> failures;  ///< (SOP Instance UID, reason)
    std::map<std::string, std::int64_t> sop_classes;            ///< of the delivered ones
    std::int64_t first_at_ms = 0;
    std::size_t size() const { return uids.size() + failures.size(); }
  };
  struct Forwarded {
    queue::ForwardAssociation association;  ///< destination and serial only when not opened
    bool opened = false;
    std::map<std::string, ForwardTally> studies;
  };

  index::AuditEvent received_row(const Received& r, const std::string& study,
                                 const ReceivedTally& t, const std::string& end,
                                 bool partial) const;
  index::AuditEvent forwarded_row(const Forwarded& f, const std::string& study,
                                  const ForwardTally& t, const std::string& error,
                                  bool partial) const;
  /// A refusal through the throttle (key: what repeats), plus any folded rows now due.
  void refusal(const std::string& key, index::AuditEvent event);
  bool due(std::int64_t first_at_ms, std::size_t size, std::int64_t now) const;
  void write(std::vector<index::AuditEvent> rows);

  audit::AuditWriter& writer_;
  std::function<std::int64_t()> now_ms_;
  audit::AuditThrottle refusals_;
  std::mutex mu_;                                 // guards received_ and forwarded_
  std::map<std::uint64_t, Received> received_;    ///< by association id
  std::map<std::uint64_t, Forwarded> forwarded_;  ///< by forwarder association serial
};

}  // namespace gw::app
