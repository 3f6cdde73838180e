#pragma once
/// The requestor side: open an association, C-ECHO, C-STORE a Part 10 file by streaming its data
/// set bytes unchanged (no re-encoding), release. Used by `dicom-gw echo|send` and the forwarder.

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dicom/association.h"
#include "dicom/byte_source.h"
#include "dicom/part10.h"
#include "tls/context.h"

namespace gw::dicom {

/// DICOM TLS for an outgoing association (`--tls`, destinations' tls_* keys).
struct ScuTlsOptions {
  std::filesystem::path cert;  ///< optional: our certificate (chain) for mutual TLS
  std::filesystem::path key;
  std::filesystem::path ca;  ///< the CAs that sign the peer; required unless no_verify
  config::TlsProfile profile = config::TlsProfile::kBcp195Rfc8996;
  bool verify_hostname = true;  ///< the peer's SAN must name the host (or IP) we dial
  bool no_verify = false;       ///< accept any server certificate (loudly warned)
  /// A context built once (make_context) and shared by every association; when null, open()
  /// builds one from the fields above.
  std::shared_ptr<const tls::TlsContext> context;
  /// How error messages name cert, key and ca (tls::ClientTlsOptions).
  std::string cert_name = "--cert";
  std::string key_name = "--key";
  std::string ca_name = "--ca";

  /// The client context for these options.
  Result<std::shared_ptr<const tls::TlsContext>> make_context() const;
};

struct ScuOptions {
  std::string calling_ae = "DICOM_GW";
  std::string called_ae = "ANY-SCP";
  std::string host = "127.0.0.1";
  std::uint16_t port = 104;
  /// Also our own receive limit, so within config::kMinMaxPduLength..kMaxMaxPduLength: 0
  /// (PS3.8's "no limit", DCMTK's --max-pdu 0) would refuse every P-DATA-TF, and a huge value
  /// would let the peer make us allocate that much.
  std::uint32_t max_pdu_length = 262144;
  Clock::duration connect_timeout = std::chrono::seconds(10);
  Clock::duration association_timeout = std::chrono::seconds(30);  ///< waiting for AC/RJ
  Clock::duration response_timeout = std::chrono::seconds(120);    ///< waiting for a DIMSE response
  /// Requests we would have outstanding at once: > 1 proposes an asynchronous operations window
  /// (PS3.7 D.3.3.3) of this size; the acceptor may grant fewer, or none (then 1). 1 proposes
  /// nothing: some devices mishandle the item.
  std::uint32_t async_operations = 1;
  std::optional<ScuTlsOptions> tls;  ///< set: the association runs over DICOM TLS
};

/// A file ready to send: where its data set starts and what it is. The file is opened (through
/// the item's opener) when it is sent; an opener may hand over a reader it kept from reading
/// the header (the forwarder does so for the first few items of a batch, queue/send_batch.h).
struct SendItem {
  std::filesystem::path path;
  Part10Header header;
  std::uint64_t file_size = 0;  ///< content size (the plaintext of an encrypted stored file)
  SourceOpener open;            ///< how to read `path`; empty: a plain file (open_file_source)
};

/// Reads the Part 10 header of a file (size included) through `open` (empty: a plain file).
Result<SendItem> prepare_send_item(const std::filesystem::path& path,
                                   const SourceOpener& open = {});

class ScuAssociation {
 public:
  /// Connects (TLS handshake when options.tls), and negotiates the given presentation contexts.
  /// When the peer answers A-ASSOCIATE-RJ and `rejection` is given, it receives the RJ (its
  /// result tells a transient refusal from a permanent one).
  static asio::awaitable<Result<std::unique_ptr<ScuAssociation>>> open(
      asio::any_io_executor ex, const ScuOptions& options,
      std::vector<PresentationContextRq> contexts, std::optional<AssociateRj>* rejection = nullptr);
  /// Closes the transport if release() or abort() did not.
  ~ScuAssociation();

  /// C-ECHO; returns the response status. Nothing else may be outstanding.
  asio::awaitable<Result<std::uint16_t>> echo();
  /// Requests that may be outstanding at once: the window the acceptor granted (1 without one).
  std::uint32_t window() const { return window_; }
  /// False once a send or a response failed after something went on the wire: the association
  /// is gone (or was aborted). Failures before anything was sent (no context, an unreadable or
  /// changed file) leave it usable.
  bool usable() const { return !lost_; }
  /// Sends a C-STORE-RQ with a file's data set bytes exactly as stored, on the context accepted
  /// for its SOP class and transfer syntax (kUnsupported when there is none), and returns its
  /// Message ID without waiting for the response (collect it with next_response()). The caller
  /// keeps at most window() requests outstanding. When reading the file fails after the data
  /// set has begun (kDataLoss: a stored segment failed authentication; kIo), the association
  /// is aborted (A-ABORT), so the peer never completes a partial instance, and that error is
  /// returned: the association is then unusable. Errors before anything was sent leave it
  /// established.
  asio::awaitable<Result<std::uint16_t>> send_store(const SendItem& item);
  /// The next response to an outstanding request, in whatever order the peer answers (its
  /// message_id_responded_to names the request). A response to no outstanding request aborts.
  asio::awaitable<Result<Command>> next_response();
  asio::awaitable<Status> release();
  asio::awaitable<void> abort();

  Association& association() { return *assoc_; }

 private:
  ScuAssociation(std::unique_ptr<Association> assoc, std::uint32_t async_operations);

  std::unique_ptr<Association> assoc_;
  std::uint32_t window_ = 1;
  bool lost_ = false;
  std::set<std::uint16_t> outstanding_;  ///< Message IDs sent and not yet answered
};

}  // namespace gw::dicom
