#include "dicom/scu.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "config/config.h"
#include "core/check.h"
#include "core/unique_fd.h"
#include "dicom/negotiation.h"
#include "dicom/tls_channel.h"
#include "dicom/uids.h"

namespace gw::dicom {

using core::ErrorCode;
using core::make_error;

Result<SendItem> prepare_send_item(const std::filesystem::path& path, const SourceOpener& open) {
  auto source = open ? open(path) : open_file_source(path);
  if (!source.ok()) {
    return make_error(source.error().code, path.string() + ": " + source.error().message);
  }
  const std::uint64_t size = (*source)->size();
  auto header = read_part10_header(**source);
  if (!header.ok()) {
    return make_error(header.error().code, path.string() + ": " + header.error().message);
  }
  if (header->meta.media_storage_sop_class_uid.empty() ||
      header->meta.media_storage_sop_instance_uid.empty() ||
      header->meta.transfer_syntax_uid.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      path.string() + ": file meta lacks SOP class, instance or transfer syntax");
  }
  if (header->data_set_offset > size) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + ": truncated file");
  }
  return SendItem{path, std::move(header).value(), size, open};
}

Result<std::shared_ptr<const tls::TlsContext>> ScuTlsOptions::make_context() const {
  tls::ClientTlsOptions o;
  o.cert = cert;
  o.key = key;
  o.ca = ca;
  o.profile = profile;
  o.verify_peer = !no_verify;
  o.cert_name = cert_name;
  o.key_name = key_name;
  o.ca_name = ca_name;
  return tls::make_client_context(o);
}

namespace {

/// TLS handshake on a connected socket; the error names the peer.
asio::awaitable<Result<std::shared_ptr<Channel>>> open_tls(asio::ip::tcp::socket socket,
                                                           const ScuOptions& options) {
  auto context = options.tls->context;
  if (!context) {
    auto made = options.tls->make_context();
    if (!made.ok()) co_return made.error();
    context = std::move(made).value();
  }
  auto channel = TlsChannel::create(std::move(socket), std::move(context));
  if (!channel.ok()) co_return channel.error();
  auto st = co_await (*channel)->handshake_client(options.host, options.tls->verify_hostname,
                                                  options.connect_timeout);
  if (!st.ok()) {
    (*channel)->close();
    co_return make_error(st.error().code, "TLS handshake with " + options.host + ":" +
                                              std::to_string(options.port) +
                                              " failed: " + st.error().message);
  }
  co_return std::shared_ptr<Channel>(std::move(channel).value());
}

}  // namespace

ScuAssociation::ScuAssociation(std::unique_ptr<Association> assoc, std::uint32_t async_operations)
    : assoc_(std::move(assoc)),
      window_(granted_async_window(assoc_->accepted_async_window(), async_operations)) {}

ScuAssociation::~ScuAssociation() {
  if (assoc_) assoc_->close();
}

asio::awaitable<Result<std::unique_ptr<ScuAssociation>>> ScuAssociation::open(
    asio::any_io_executor ex, const ScuOptions& options,
    std::vector<PresentationContextRq> contexts, std::optional<AssociateRj>* rejection) {
  if (options.max_pdu_length < config::kMinMaxPduLength ||
      options.max_pdu_length > config::kMaxMaxPduLength) {
    co_return make_error(ErrorCode::kInvalidArgument,
                         "maximum PDU length " + std::to_string(options.max_pdu_length) +
                             " is outside " + std::to_string(config::kMinMaxPduLength) + ".." +
                             std::to_string(config::kMaxMaxPduLength));
  }
  auto socket = co_await connect_tcp(ex, options.host, options.port, options.connect_timeout);
  if (!socket.ok()) co_return socket.error();
  std::shared_ptr<Channel> channel;
  if (options.tls) {
    auto tls_channel = co_await open_tls(std::move(socket).value(), options);
    if (!tls_channel.ok()) co_return tls_channel.error();
    channel = std::move(tls_channel).value();
  } else {
    channel = TcpChannel::create(std::move(socket).value());
  }
  AssociationLimits limits;
  limits.max_pdu_length = options.max_pdu_length;
  limits.idle = options.response_timeout;
  auto assoc = std::make_unique<Association>(channel, Role::kRequestor, limits);

  AssociateRq rq;
  rq.called_ae = options.called_ae;
  rq.calling_ae = options.calling_ae;
  rq.contexts = std::move(contexts);
  rq.user_info.max_pdu_length = options.max_pdu_length;
  rq.user_info.implementation_class_uid = std::string(kImplementationClassUid);
  rq.user_info.implementation_version_name = std::string(kImplementationVersionName);
  if (options.async_operations > 1) {
    rq.user_info.async_ops_window = AsyncOpsWindow{async_window_field(options.async_operations), 1};
  }
  if (auto st = co_await assoc->request(rq, options.association_timeout); !st.ok()) {
    if (rejection != nullptr) *rejection = assoc->rejection();
    channel->close();  // else the channel's watchdog keeps the executor busy until its deadline
    co_return st.error();
  }
  co_return std::unique_ptr<ScuAssociation>(
      new ScuAssociation(std::move(assoc), options.async_operations));
}

asio::awaitable<Result<Command>> ScuAssociation::next_response() {
  Command rsp;
  std::uint8_t pcid = 0;
  lost_ = true;  // until a whole response has arrived
  auto incoming = co_await assoc_->receive_command(rsp, pcid);
  if (!incoming.ok()) co_return incoming.error();
  if (*incoming != Incoming::kCommand) {
    co_return make_error(ErrorCode::kRejected, *incoming == Incoming::kAbort
                                                   ? "peer aborted the association"
                                                   : "peer asked to release mid-operation");
  }
  if (!rsp.message_id_responded_to || outstanding_.erase(*rsp.message_id_responded_to) == 0) {
    co_await assoc_->abort(AbortSource::kServiceUser, abort_reason::kNotSpecified);
    co_return make_error(ErrorCode::kProtocol, "response to an unknown message id");
  }
  if (rsp.has_data_set()) {
    auto drained = co_await assoc_->receive_data_set(pcid, [](auto) {});
    if (!drained.ok()) co_return drained.error();
  }
  lost_ = false;
  co_return rsp;
}

asio::awaitable<Result<std::uint16_t>> ScuAssociation::echo() {
  GW_CHECK(outstanding_.empty());
  const PresentationContext* pc = nullptr;
  for (const auto& c : assoc_->contexts()) {
    if (c.abstract_syntax == kVerificationSopClass) pc = &c;
  }
  if (pc == nullptr)
    co_return make_error(ErrorCode::kUnsupported, "peer did not accept Verification");
  const auto id = assoc_->next_message_id();
  lost_ = true;  // until the response has arrived
  GW_CO_RETURN_IF_ERROR(co_await assoc_->send_command(pc->id, make_c_echo_rq(id)));
  outstanding_.insert(id);
  auto rsp = co_await next_response();  // (the only request outstanding)
  if (!rsp.ok()) co_return rsp.error();
  co_return rsp->status.value_or(0xFFFF);
}

asio::awaitable<Result<std::uint16_t>> ScuAssociation::send_store(const SendItem& item) {
  const auto& meta = item.header.meta;
  const PresentationContext* pc =
      assoc_->find_context(meta.media_storage_sop_class_uid, meta.transfer_syntax_uid);
  if (pc == nullptr) {
    co_return make_error(ErrorCode::kUnsupported,
                         "peer accepted no presentation context for " +
                             sop_class_name(meta.media_storage_sop_class_uid) + " in " +
                             meta.transfer_syntax_uid);
  }
  auto opened = item.open ? item.open(item.path) : open_file_source(item.path);
  if (!opened.ok()) {
    co_return make_error(opened.error().code, item.path.string() + ": " + opened.error().message);
  }
  const std::unique_ptr<ByteSource> file = std::move(opened).value();
  if (file->size() != item.file_size) {
    co_return make_error(ErrorCode::kInvalidArgument,
                         item.path.string() + ": file changed since it was prepared");
  }
  std::uint64_t offset = item.header.data_set_offset;
  const std::uint64_t on_disk = item.file_size - item.header.data_set_offset;
  // PDVs carry even lengths. A deflate stream may end on an odd byte; PS3.5 A.5 pads it with one
  // trailing NUL, which inflaters ignore. Any other odd-length data set is a broken file.
  const bool pad = on_disk % 2 == 1;
  if (pad && meta.transfer_syntax_uid != kDeflatedExplicitVrLittleEndian) {
    co_return make_error(ErrorCode::kInvalidArgument,
                         item.path.string() + ": data set has an odd length (invalid encoding)");
  }
  const std::uint64_t total = on_disk + (pad ? 1 : 0);
  bool pad_sent = false;
  std::optional<core::Error> read_error;  // the file failed us, not the network
  DataSource source = [&](std::span<std::uint8_t> buf) -> Result<std::size_t> {
    auto n = file->read_at(offset, buf);
    if (!n.ok()) {
      read_error = make_error(n.error().code, item.path.string() + ": " + n.error().message);
      return *read_error;
    }
    if (*n == 0 && pad && !pad_sent && !buf.empty()) {
      buf[0] = 0;
      pad_sent = true;
      return std::size_t{1};
    }
    if (*n == 0 && !buf.empty()) {
      // Shorter now than when its size was taken (cut while being sent): the file's fault.
      read_error = make_error(ErrorCode::kDataLoss,
                              item.path.string() + ": the file ended before its data set did");
      return *read_error;
    }
    offset += *n;
    return *n;
  };
  const auto id = assoc_->next_message_id();
  lost_ = true;  // from here on a failure leaves the association unusable
  GW_CO_RETURN_IF_ERROR(co_await assoc_->send_command(
      pc->id,
      make_c_store_rq(id, meta.media_storage_sop_class_uid, meta.media_storage_sop_instance_uid)));
  auto sent = co_await assoc_->send_data_set(pc->id, total, source);
  if (!sent.ok() && read_error) {
    // Part of the data set is on the wire without its last fragment: only an A-ABORT ends
    // that instance for the peer without it being stored.
    co_await abort();
    co_return std::move(*read_error);
  }
  GW_CO_RETURN_IF_ERROR(std::move(sent));
  lost_ = false;
  outstanding_.insert(id);
  co_return id;
}

asio::awaitable<Status> ScuAssociation::release() { co_return co_await assoc_->release(); }

asio::awaitable<void> ScuAssociation::abort() {
  lost_ = true;
  co_await assoc_->abort(AbortSource::kServiceUser, abort_reason::kNotSpecified);
}

}  // namespace gw::dicom
