#pragma once
/// What the forwarders do, for the audit trail (the app implements it; the queue module knows
/// nothing of how audit rows are written). Every association attempt of a forwarder has a
/// serial number, unique in the process: the rows sent on it are reported under that serial,
/// and association_ended() comes once per attempt, however it ended (released, lost, refused),
/// after its last row_finished().
///
/// Called on the forwarder's strand (an I/O thread): an implementation must return at once
/// (queue the work) and must not fail.

#include <cstdint>
#include <string>

#include "index/outbox.h"
#include "queue/retry_policy.h"

namespace gw::queue {

/// An association a forwarder opened.
struct ForwardAssociation {
  std::uint64_t serial = 0;
  std::string destination;
  std::string host;
  std::uint16_t port = 0;
  std::string calling_ae;
  std::string called_ae;
  bool tls = false;
};

class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  virtual void association_opened(const ForwardAssociation& association) = 0;
  /// One row's result. `serial`: its association attempt; 0 when none was involved (a stored
  /// file that could not be read).
  virtual void row_finished(const std::string& destination, std::uint64_t serial,
                            const index::OutboxItem& item, const Decision& decision) = 0;
  /// `error`: empty after a normal release; otherwise why the attempt failed or broke off.
  virtual void association_ended(const std::string& destination, std::uint64_t serial,
                                 const std::string& error) = 0;
};

}  // namespace gw::queue
