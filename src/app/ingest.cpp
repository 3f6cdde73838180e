#include "app/ingest.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

#include "core/log.h"
#include "dicom/dimse.h"
#include "dicom/instance_info.h"
#include "dicom/part10.h"
#include "dicom/uids.h"
#include "storage/sha256.h"

namespace gw::app {

using core::ErrorCode;
using dicom::StoreOutcome;
namespace status = dicom::status;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("ingest"); }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// "10.1.2.3:4567" -> "10.1.2.3"; "[fe80::1]:4567" -> "fe80::1".
std::string_view peer_ip(std::string_view address) {
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    return close == std::string_view::npos ? address.substr(1) : address.substr(1, close - 1);
  }
  const auto colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
}

index::InstanceRecord make_record(const dicom::InstanceInfo& info,
                                  const dicom::StoreRequest& request) {
  index::InstanceRecord r;
  r.sop_instance_uid = info.sop_instance_uid;
  r.sop_class_uid = info.sop_class_uid;
  r.transfer_syntax_uid = request.transfer_syntax_uid;
  r.instance_number = info.instance_number;
  r.received_at_ms = now_ms();
  r.calling_ae = request.association->calling_ae;
  r.called_ae = request.association->called_ae;
  r.peer_address = request.association->peer_address;
  r.series_instance_uid = info.series_instance_uid;
  r.modality = info.modality;
  r.series_description = info.series_description;
  r.series_number = info.series_number;
  r.body_part_examined = info.body_part_examined;
  r.study_instance_uid = info.study_instance_uid;
  r.study_date = info.study_date;
  r.study_time = info.study_time;
  r.study_description = info.study_description;
  r.accession_number = info.accession_number;
  r.study_id = info.study_id;
  r.referring_physician = info.referring_physician;
  r.patient_id = info.patient_id;
  r.patient_name = info.patient_name;
  r.patient_birth_date = info.patient_birth_date;
  r.patient_sex = info.patient_sex;
  r.station_name = info.station_name;
  r.institution_name = info.institution_name;
  return r;
}

/// Hashes a spool file behind its writer, on the worker pool, so the I/O thread never spends
/// its time on SHA-256. It reads through its own descriptor, which stays valid even if the
/// session is gone (an aborted association); mu_ serializes the hashing, and the session's
/// finish() hashes whatever tail is left.
class BackgroundDigest {
 public:
  BackgroundDigest(core::UniqueFd fd, storage::Sha256 sha)
      : fd_(std::move(fd)), sha_(std::move(sha)) {}

  /// Hashes the file up to `end` (bytes the writer has already written). Thread-safe.
  void hash_to(std::uint64_t end) {
    std::lock_guard lock(mu_);
    if (buffer_.empty() && hashed_ < end) buffer_.resize(kChunk);
    while (hashed_ < end && error_.ok()) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, end - hashed_));
      const ssize_t n = ::pread(fd_.get(), buffer_.data(), want, static_cast<off_t>(hashed_));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = core::make_error(ErrorCode::kIo, "read back spool file for its digest");
        break;
      }
      error_ = sha_.update({buffer_.data(), static_cast<std::size_t>(n)});
      hashed_ += static_cast<std::uint64_t>(n);
    }
  }

  core::Result<std::string> finish(std::uint64_t end) {
    hash_to(end);
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_.error();
    return sha_.hex();
  }

 private:
  static constexpr std::size_t kChunk = 256 * 1024;
  std::mutex mu_;  // guards everything below
  core::UniqueFd fd_;
  storage::Sha256 sha_;
  std::uint64_t hashed_ = 0;
  std::vector<std::uint8_t> buffer_;
  core::Status error_;
};

class IngestSession final : public dicom::StoreSession {
 public:
  IngestSession(IngestService& service, storage::SpoolFile spool,
                std::shared_ptr<BackgroundDigest> digest, dicom::StoreRequest request,
                std::uint64_t association_id)
      : service_(service),
        spool_(std::move(spool)),
        digest_(std::move(digest)),
        request_(std::move(request)),
        association_id_(association_id) {}

  void write(std::span<const std::uint8_t> fragment) override {
    if (error_) return;
    auto st = spool_.write(fragment);
    if (!st.ok()) {
      error_ = std::move(st).error();
      return;
    }
    if (spool_.size() - hash_scheduled_ >= kHashStep) {
      hash_scheduled_ = spool_.size();
      asio::post(service_.worker_pool(),
                 [digest = digest_, end = hash_scheduled_]() { digest->hash_to(end); });
    }
  }

  StoreOutcome finish() override {
    auto outcome = finish_inner();
    if (outcome.status != status::kSuccess) service_.counters().failed++;
    return outcome;
  }

 private:
  StoreOutcome fail(std::uint16_t code, std::string why) { return {code, std::move(why)}; }

  StoreOutcome finish_inner() {
    if (error_) return fail(core::dimse_status(error_->code), error_->message);
    // One snapshot of the rules for this instance, even if a reload swaps them meanwhile.
    const auto routing = service_.routing();
    auto info = dicom::read_instance_info(
        spool_.path(), routing ? std::span<const std::uint32_t>(routing->required_tags())
                               : std::span<const std::uint32_t>());
    if (!info.ok()) {
      return fail(status::kCannotUnderstand, "cannot parse data set: " + info.error().message);
    }
    if (info->sop_instance_uid != request_.sop_instance_uid) {
      return fail(status::kDataSetDoesNotMatchSopClass,
                  "SOP Instance UID in the data set differs from the C-STORE command");
    }
    if (info->sop_class_uid != request_.sop_class_uid) {
      return fail(status::kDataSetDoesNotMatchSopClass,
                  "SOP Class UID in the data set differs from the C-STORE command");
    }
    const auto size = static_cast<std::int64_t>(spool_.size());
    auto record = make_record(*info, request_);
    record.size_bytes = size;
    if (routing && !routing->empty()) {
      const auto& assoc = *request_.association;
      record.destinations = routing->route({.calling_ae = assoc.calling_ae,
                                            .called_ae = assoc.called_ae,
                                            .listener = assoc.listener,
                                            .peer_ip = peer_ip(assoc.peer_address),
                                            .modality = info->modality,
                                            .sop_class_uid = info->sop_class_uid,
                                            .tags = &info->extra_tags});
    }
    auto sha = digest_->finish(spool_.size());
    if (!sha.ok()) return fail(core::dimse_status(sha.error().code), sha.error().message);
    record.sha256 = std::move(sha).value();
    auto path = service_.store().publish(std::move(spool_));
    if (!path.ok()) return fail(core::dimse_status(path.error().code), path.error().message);
    record.storage_path = *path;

    auto inserted = service_.commit(record);
    if (!inserted.ok()) {
      (void)service_.store().remove(*path);
      if (inserted.error().code == ErrorCode::kAlreadyExists) {
        service_.counters().duplicates++;
        return fail(status::kDuplicateSopInstance,
                    "duplicate SOP Instance UID refused (storage.duplicates: reject)");
      }
      return fail(core::dimse_status(inserted.error().code),
                  "index commit failed: " + inserted.error().message);
    }
    switch (inserted->outcome) {
      case index::InsertOutcome::kInserted:
        break;
      case index::InsertOutcome::kDuplicateKept:
        service_.counters().duplicates++;
        (void)service_.store().remove(inserted->replaced_path);
        break;
      case index::InsertOutcome::kReplaced:
        service_.counters().duplicates++;
        (void)service_.store().remove(inserted->replaced_path);
        break;
    }
    service_.counters().stored++;
    service_.counters().bytes_stored += static_cast<std::uint64_t>(size);
    service_.counters().routed += record.destinations.size();
    service_.notify_enqueued(record.destinations);
    log()->debug("assoc={} event=instance_stored sop_instance_uid={} size={} duplicate={}",
                 association_id_, record.sop_instance_uid, size,
                 inserted->outcome != index::InsertOutcome::kInserted);
    return {status::kSuccess, {}};
  }

  static constexpr std::uint64_t kHashStep = 256 * 1024;  ///< hand work to the hasher this often

  IngestService& service_;
  storage::SpoolFile spool_;
  std::shared_ptr<BackgroundDigest> digest_;
  std::uint64_t hash_scheduled_ = 0;
  dicom::StoreRequest request_;
  std::uint64_t association_id_;
  std::optional<core::Error> error_;
};

}  // namespace

IngestService::IngestService(storage::Store& store, index::Index& index,
                             config::DuplicatePolicy duplicates, asio::any_io_executor worker_pool)
    : worker_pool_(std::move(worker_pool)),
      store_(store),
      index_(index),
      duplicates_(duplicates),
      committer_([this](const auto& batch) {
        counters_.commit_groups++;
        std::vector<std::string> paths;
        std::vector<index::InstanceRecord> records;
        paths.reserve(batch.size());
        records.reserve(batch.size());
        for (const auto* slot : batch) {
          paths.push_back(slot->request->storage_path);
          records.push_back(*slot->request);
        }
        // Directory entries first: a committed row must never point at a name a crash can lose.
        if (auto synced = store_.sync_directories(paths); !synced.ok()) {
          for (auto* slot : batch) slot->response = synced.error();
          return;
        }
        auto results = index_.insert_instances(records, duplicate_policy());
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->response = std::move(results[i]);
      }) {}

void IngestService::set_routing(std::shared_ptr<const queue::RoutingTable> routing) {
  std::lock_guard lock(routing_mu_);
  routing_ = std::move(routing);
}

std::shared_ptr<const queue::RoutingTable> IngestService::routing() const {
  std::lock_guard lock(routing_mu_);
  return routing_;
}

core::Result<index::InsertResult> IngestService::commit(const index::InstanceRecord& record) {
  return committer_.run(&record);
}

index::DuplicatePolicy IngestService::duplicate_policy() const {
  switch (duplicates_) {
    case config::DuplicatePolicy::kOverwrite:
      return index::DuplicatePolicy::kOverwrite;
    case config::DuplicatePolicy::kReject:
      return index::DuplicatePolicy::kReject;
    case config::DuplicatePolicy::kKeepFirst:
      break;
  }
  return index::DuplicatePolicy::kKeepFirst;
}

core::Result<std::unique_ptr<dicom::StoreSession>> IngestService::begin(
    const dicom::StoreRequest& request) {
  if (!dicom::is_storage_sop_class(request.sop_class_uid)) {
    return core::make_error(ErrorCode::kUnsupported, "not a storage SOP class");
  }
  GW_ASSIGN_OR_RETURN(auto spool, store_.begin(/*inline_digest=*/false));
  GW_ASSIGN_OR_RETURN(auto fd, spool.dup_fd());
  GW_ASSIGN_OR_RETURN(auto sha, storage::Sha256::create());
  auto digest = std::make_shared<BackgroundDigest>(std::move(fd), std::move(sha));
  dicom::FileMeta meta;
  meta.media_storage_sop_class_uid = request.sop_class_uid;
  meta.media_storage_sop_instance_uid = request.sop_instance_uid;
  meta.transfer_syntax_uid = request.transfer_syntax_uid;
  meta.implementation_class_uid = std::string(dicom::kImplementationClassUid);
  meta.implementation_version_name = std::string(dicom::kImplementationVersionName);
  meta.source_application_entity_title = request.association->calling_ae;
  GW_RETURN_IF_ERROR(spool.write(dicom::encode_file_meta(meta)));
  dicom::StoreRequest copy = request;
  return std::unique_ptr<dicom::StoreSession>(new IngestSession(
      *this, std::move(spool), std::move(digest), std::move(copy), request.association->id));
}

}  // namespace gw::app
