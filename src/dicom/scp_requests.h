#pragma once
/// The DIMSE side of one accepted association (internal to the SCP): requests are read in
/// order; each C-STORE's data set streams into a StoreSession; the session is finished (made
/// durable, indexed) on the worker pool and answered.
///
/// With an asynchronous operations window (PS3.7 D.3.3.3) of N > 1, up to N stores are finished
/// and answered while the next requests are read: the sender's next data set arrives while the
/// last one's finish() (durable storage) runs. Responses then go out in the order the stores
/// finish, each naming its request's Message ID. The loop stops reading when N stores are in
/// progress, and before it answers an A-RELEASE-RQ, aborts at shutdown or returns, it waits for
/// every store in progress, so each one is answered (or, with the transport gone, at least
/// finished) first. An abort that goes out at once (idle timeout, protocol violation) leaves their
/// responses unsent: the stores finish, and the sender, which heard no success, sends them again.

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <memory>

#include "dicom/association.h"
#include "dicom/scp.h"
#include "dicom/strand_signal.h"

namespace gw::dicom {

/// One connection's state, shared by its coroutine and the stores in progress on it (each holds
/// a reference, so a store that finishes after the connection's coroutine was destroyed at
/// shutdown still finds it). Used only from the connection's strand, except `idle`.
struct AssociationRun {
  AssociationRun(std::shared_ptr<Channel> channel_, const AssociationLimits& limits)
      : channel(channel_), assoc(std::move(channel_), Role::kAcceptor, limits) {}

  std::shared_ptr<Channel> channel;
  Association assoc;
  AssociationInfo info;
  /// True while the loop waits for a request with nothing in progress; read by
  /// ScpContext::begin_shutdown from another thread to wake such a connection.
  std::atomic<bool> idle{true};
  std::uint32_t in_progress = 0;  ///< stores beside the loop; at most info.async_window
  bool reading = false;           ///< the loop is waiting for the next request
  StrandSignal store_ended;
};

/// Serves requests until the association ends and nothing is in progress; returns how it ended.
asio::awaitable<AssociationEnd> serve_requests(std::shared_ptr<AssociationRun> run,
                                               ScpContext& ctx);

}  // namespace gw::dicom
