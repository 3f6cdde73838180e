#pragma once
/// The Storage and Verification SCP: listeners that accept connections concurrently, negotiate
/// associations, answer C-ECHO and hand C-STORE data sets to a StoreService.
///
/// Threads: every connection is one coroutine on its own strand of the I/O context. The
/// StoreService's blocking work (fsync, database commit) runs on the worker pool given in
/// ScpContext, never on an I/O thread.

#include <array>
#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dicom/association.h"
#include "dicom/negotiation.h"
#include "tls/context.h"
#include "tls/handshake_reason.h"
#include "tls/peer_identity.h"

namespace gw::dicom {

class IoPool;

/// Who is on the other end of an association (for policy, audit and the index).
struct AssociationInfo {
  std::uint64_t id = 0;
  std::string listener;
  std::string calling_ae;
  std::string called_ae;
  std::string peer_address;
  bool tls = false;
  /// Stores it may have in progress at once: the asynchronous operations window we granted
  /// (1: synchronous, each request answered before the next is read).
  std::uint32_t async_window = 1;
  std::string tls_subject;            ///< the peer certificate's RFC 2253 subject ("" without one)
  std::string tls_protocol;           ///< "TLSv1.3"
  std::string tls_cipher;             ///< "TLS_AES_256_GCM_SHA384"
  tls::CertificateIdentity tls_peer;  ///< CN, SANs, SHA-256 of the peer certificate
};

struct StoreRequest {
  const AssociationInfo* association = nullptr;
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string transfer_syntax_uid;
  /// Another store of the same association was still in progress when this request arrived
  /// (the sender pipelines, in an asynchronous operations window): this session's finish()
  /// will run alongside others of the association.
  bool overlapped = false;
};

struct StoreOutcome {
  StoreOutcome() = default;
  StoreOutcome(std::uint16_t status_, std::string comment)
      : status(status_), error_comment(std::move(comment)) {}

  std::uint16_t status = 0;
  std::string error_comment;  ///< for failures: plain words, no patient data
  /// The stored instance's study (success only; for the audit trail's per-study summary).
  std::string study_instance_uid;
};

/// One incoming instance. write() is called on the I/O thread for every fragment (it must be
/// quick: appending to a file); finish() is called once on the worker pool. With an
/// asynchronous operations window, several sessions of one association may be finishing at
/// once (on different workers) while begin() and write() serve the next instance.
class StoreSession {
 public:
  virtual ~StoreSession() = default;
  /// After the first failure, further writes are ignored and finish() reports it.
  virtual void write(std::span<const std::uint8_t> fragment) = 0;
  /// Verify, make durable, index. Blocking.
  virtual StoreOutcome finish() = 0;
};

class StoreService {
 public:
  virtual ~StoreService() = default;
  /// Called when a C-STORE-RQ arrives. An error is answered with its DIMSE status (the data set
  /// is still read and discarded to keep the association in step).
  virtual Result<std::unique_ptr<StoreSession>> begin(const StoreRequest& request) = 0;
  /// True when StoreSession::finish() never waits for the disk (no fdatasync/fsync): it then
  /// runs on the association's own I/O thread instead of hopping to the worker pool and back,
  /// which costs more than the work itself, and even with a window a store is finished before
  /// the next request is read (there is nothing to overlap). False (the default): finish()
  /// runs on the workers.
  virtual bool finish_is_quick() const { return false; }
};

struct ScpPolicy {
  std::string ae_title = "DICOM_GW";
  std::vector<std::string> calling_ae_titles;  ///< allow-list, empty = anyone
  std::vector<std::string> called_ae_titles;   ///< empty = any
  std::vector<std::string> require_tls_for;
  std::vector<config::Peer> peers;  ///< AE title <-> certificate bindings (tls/peer_identity.h)
  std::uint32_t max_associations = 64;
  /// Connections allowed beyond max_associations (handshakes, RQs not read yet, rejections);
  /// over the sum a new connection is closed at once, before any read or allocation.
  std::uint32_t max_pending_connections = 64;
  /// Stores one association may have in progress when its peer proposes an asynchronous
  /// operations window (1: always synchronous).
  std::uint32_t max_async_operations = 16;
  AssociationLimits limits;
  NegotiationPolicy negotiation;
};

/// Why an association was refused, as a fixed label (metric dicom_gw_associations_rejected_total
/// and the audit row). The A-ASSOCIATE-RJ result/source/reason say it in PS3.8's terms.
enum class RejectCategory {
  kCallingAeNotAllowed,  ///< accept.calling_ae_titles
  kCalledAeUnknown,      ///< not our AE title (accept.called_ae_titles)
  kTlsRequired,          ///< accept.require_tls_for, over plain TCP
  kPeerBinding,          ///< `peers:`: the certificate may not use this calling AE title
  kLocalLimit,           ///< max_associations reached
  kOther,                ///< application context, protocol version, shutting down
};
inline constexpr std::size_t kRejectCategoryCount = 6;
inline constexpr std::array<RejectCategory, kRejectCategoryCount> kRejectCategories = {
    RejectCategory::kCallingAeNotAllowed, RejectCategory::kCalledAeUnknown,
    RejectCategory::kTlsRequired,         RejectCategory::kPeerBinding,
    RejectCategory::kLocalLimit,          RejectCategory::kOther};
/// "calling_ae_not_allowed", "called_ae_unknown", "tls_required", "peer_binding",
/// "local_limit", "other".
std::string_view to_string(RejectCategory category);

/// How an accepted association ended.
enum class AssociationEnd { kReleased, kAborted, kError };
/// "released" | "aborted" | "error".
std::string_view to_string(AssociationEnd end);

/// One C-STORE's result, as the audit trail summarises it (no patient data).
struct InstanceOutcome {
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string study_instance_uid;  ///< "" when the data set was not understood
  std::uint64_t bytes = 0;         ///< data set bytes received
  std::uint16_t status = 0;        ///< the DIMSE status answered
  bool stored = false;             ///< success or warning: the instance is kept
};

/// What happens on the listeners, for the audit trail (the app implements it; the dicom module
/// knows nothing of the index). Called on I/O threads, from the association's strand: an
/// implementation must return at once (queue the work), never wait for a disk or a database,
/// and must not fail: nothing here may delay or fail a C-STORE.
class AssociationObserver {
 public:
  virtual ~AssociationObserver() = default;
  virtual void association_accepted(const AssociationInfo& info) = 0;
  /// `info.calling_ae`/`called_ae` are set; `why`: plain words.
  virtual void association_rejected(const AssociationInfo& info, RejectCategory category,
                                    const std::string& why) = 0;
  /// No association exists yet: `info` holds the listener, the peer address and, when the
  /// peer sent a certificate that failed verification, its subject.
  virtual void tls_handshake_failed(const AssociationInfo& info, tls::HandshakeReason reason,
                                    const std::string& why) = 0;
  /// After each C-STORE-RQ's outcome is known (before its response is sent).
  virtual void instance_received(const AssociationInfo& info, const InstanceOutcome& outcome) = 0;
  /// Once per accepted association, however it ended.
  virtual void association_ended(const AssociationInfo& info, AssociationEnd end) = 0;
};

/// Counters the listener keeps (exported as metrics later).
struct ScpCounters {
  std::atomic<std::uint64_t> associations_accepted{0};
  std::atomic<std::uint64_t> associations_rejected{0};
  /// Of those, refused by the `peers:` bindings (certificate vs calling AE title).
  std::atomic<std::uint64_t> associations_rejected_identity{0};
  std::atomic<std::uint64_t> associations_aborted{0};
  /// Connections closed at accept: max_associations + max_pending_connections were open.
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> echoes{0};
  std::atomic<std::uint64_t> stores_ok{0};
  std::atomic<std::uint64_t> stores_failed{0};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> tls_handshake_failures{0};  ///< includes plain DICOM on a TLS port
  /// The two above by label, indexed by the enums' values.
  std::array<std::atomic<std::uint64_t>, kRejectCategoryCount> rejected_by_category{};
  std::array<std::atomic<std::uint64_t>, tls::kHandshakeReasonCount> tls_failures_by_reason{};
};

/// Shared by every listener: policy, the store service, the worker pool, the live associations.
class ScpContext {
 public:
  ScpContext(ScpPolicy policy, StoreService& store, asio::any_io_executor worker_pool)
      : policy_(std::make_shared<const ScpPolicy>(std::move(policy))),
        store_(store),
        worker_pool_(std::move(worker_pool)) {}

  /// The policy now in force. A connection takes one snapshot when it starts and keeps it, so a
  /// reload applies to new associations and never changes one half-way.
  std::shared_ptr<const ScpPolicy> policy() const { return policy_.load(); }
  /// A reload: the access rules, bindings and limits for associations that start from now on.
  void set_policy(ScpPolicy policy) {
    policy_.store(std::make_shared<const ScpPolicy>(std::move(policy)));
  }
  StoreService& store() { return store_; }
  asio::any_io_executor worker_pool() { return worker_pool_; }
  ScpCounters& counters() { return counters_; }
  /// Set once before the listeners start (null: nothing observes). Not owned.
  void set_observer(AssociationObserver* observer) { observer_ = observer; }
  AssociationObserver* observer() const { return observer_; }

  /// Stops new associations and asks live ones to finish their in-flight message and end.
  void begin_shutdown();
  bool stopping() const { return stopping_; }
  std::size_t active() const { return active_; }

  // Used by the connection coroutine.
  std::uint64_t register_connection(std::shared_ptr<Channel> channel, std::atomic<bool>* idle);
  void unregister_connection(std::uint64_t id);
  /// Reserves an association slot; false when `max_associations` are already running.
  bool try_acquire_slot(std::uint32_t max_associations);
  /// Counts an accepted connection until close_connection(); false (nothing counted) when
  /// max_associations + max_pending_connections are already open.
  bool try_open_connection();
  void close_connection() { open_connections_.fetch_sub(1); }
  void release_slot();

 private:
  std::atomic<std::shared_ptr<const ScpPolicy>> policy_;
  StoreService& store_;
  asio::any_io_executor worker_pool_;
  ScpCounters counters_;
  AssociationObserver* observer_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> active_{0};
  std::atomic<std::uint32_t> slots_{0};
  std::atomic<std::uint32_t> open_connections_{0};
  std::mutex mu_;  // guards connections_ and next_id_
  struct Live {
    std::weak_ptr<Channel> channel;
    std::atomic<bool>* idle;
  };
  std::map<std::uint64_t, Live> connections_;
  std::uint64_t next_id_ = 0;
};

class Listener {
 public:
  /// Binds and listens. Port 0 picks an ephemeral port (see port()). With `tls`, every
  /// connection does the TLS handshake (under ARTIM) with the holder's current snapshot first.
  static Result<std::unique_ptr<Listener>> create(
      asio::io_context& io, std::string name, const std::string& bind, std::uint16_t port,
      ScpContext& context, std::shared_ptr<tls::TlsContextHolder> tls = nullptr);
  /// Accepted connections run on `pool` (not owned; set before start()). Without one they run
  /// on strands of the listener's io_context.
  void set_io_pool(IoPool* pool) { pool_ = pool; }
  void start();
  void stop();
  std::uint16_t port() const { return port_; }
  const std::string& name() const { return name_; }

 private:
  Listener(asio::io_context& io, std::string name, asio::ip::tcp::acceptor acceptor,
           ScpContext& context, std::shared_ptr<tls::TlsContextHolder> tls);
  asio::awaitable<void> accept_loop();

  asio::io_context& io_;
  std::string name_;
  asio::ip::tcp::acceptor acceptor_;
  ScpContext& context_;
  std::shared_ptr<tls::TlsContextHolder> tls_;  ///< null: plain DICOM
  IoPool* pool_ = nullptr;
  Clock::time_point last_refusal_log_{};  ///< accept_loop only
  std::uint16_t port_ = 0;
};

/// Serves one accepted connection to the end. Exposed for tests.
asio::awaitable<void> serve_connection(std::shared_ptr<Channel> channel, std::string listener,
                                       ScpContext& context);
/// TLS handshake (first byte checked, under ARTIM) with `snapshot`, then serve_connection.
/// A failed handshake is logged (event=tls_handshake_failed) and counted.
asio::awaitable<void> serve_tls_connection(asio::ip::tcp::socket socket,
                                           std::shared_ptr<const tls::TlsContext> snapshot,
                                           std::string listener, ScpContext& context);

}  // namespace gw::dicom
