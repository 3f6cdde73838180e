#pragma once
/// OutboxWriter: the row updates of one batch (delivered, rescheduled, dead), written on the
/// worker pool while the next items are being sent: a commit (and its fsync) per row would
/// otherwise sit between every two C-STOREs. The updates that pile up while one write is under
/// way go together in the next, as one transaction (group commit: one flush for all of them).

#include <asio.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dicom/strand_signal.h"
#include "index/index.h"
#include "queue/retry_policy.h"

namespace gw::queue {

/// Strand only (push and flush on `strand`, the writes on `pool`); flush() before destroying.
/// A row whose lease was lost (kConflict: this node was too slow and another claimed it) keeps
/// the other node's result; every failed update is logged, none is retried.
class OutboxWriter {
 public:
  /// `owner`: the lease owner of the rows; `destination` names them in the log. `index` must
  /// outlive the writer.
  OutboxWriter(index::Index& index, asio::any_io_executor pool, asio::any_io_executor strand,
               std::string owner, std::string destination)
      : index_(index),
        pool_(std::move(pool)),
        strand_(std::move(strand)),
        owner_(std::move(owner)),
        destination_(std::move(destination)) {}
  OutboxWriter(const OutboxWriter&) = delete;
  OutboxWriter& operator=(const OutboxWriter&) = delete;

  /// Queues row `id`'s next state; the write starts at once unless one is under way.
  void push(std::int64_t id, Decision decision);

  /// A row whose stored file was missing (Classification::file_missing): its next state waits
  /// until the forwarder has asked the index whether its instance was overwritten meanwhile.
  struct Held {
    std::uint64_t serial = 0;  ///< the association attempt it was sent on (ForwardObserver)
    index::OutboxItem item;
    Classification classification;
  };
  void hold(Held held) { held_.push_back(std::move(held)); }
  /// The rows held so far (and no longer).
  std::vector<Held> take_held() { return std::exchange(held_, {}); }
  /// Returns once every queued update has been written.
  asio::awaitable<void> flush();

 private:
  struct Update {
    std::int64_t id;
    Decision decision;
  };

  void start_write();
  /// Worker pool: the batch's updates, in one transaction.
  void write(const std::vector<Update>& batch);

  index::Index& index_;
  asio::any_io_executor pool_;
  asio::any_io_executor strand_;
  const std::string owner_;
  const std::string destination_;
  std::vector<Update> pending_;
  std::vector<Held> held_;
  bool writing_ = false;
  dicom::StrandSignal done_;
};

}  // namespace gw::queue
