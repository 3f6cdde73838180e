#include "app/ingest.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

#include "app/content_source.h"
#include "core/clock.h"
#include "core/log.h"
#include "dicom/dimse.h"
#include "dicom/instance_info.h"
#include "dicom/part10.h"
#include "dicom/uids.h"

namespace gw::app {

using core::ErrorCode;
using dicom::StoreOutcome;
namespace status = dicom::status;

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("ingest"); }

/// "10.1.2.3:4567" -> "10.1.2.3"; "[fe80::1]:4567" -> "fe80::1".
std::string_view peer_ip(std::string_view address) {
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    return close == std::string_view::npos ? address.substr(1) : address.substr(1, close - 1);
  }
  const auto colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
}

/// The per-file flush: the file's content and its new directory entry are flushed at the same
/// time (this thread and the directory syncer's); both are durable when it returns ok.
core::Status flush_published(storage::Store& store, const storage::PublishedFile& file) {
  const auto dir_synced = store.directory_syncer().request(store.absolute(file.path).parent_path());
  auto synced = store.sync_data(file);
  auto dir_status = store.directory_syncer().wait(dir_synced);
  if (synced.ok()) synced = std::move(dir_status);
  return synced;
}

index::InstanceRecord make_record(const dicom::InstanceInfo& info,
                                  const dicom::StoreRequest& request) {
  index::InstanceRecord r;
  r.sop_instance_uid = info.sop_instance_uid;
  r.sop_class_uid = info.sop_class_uid;
  r.transfer_syntax_uid = request.transfer_syntax_uid;
  r.instance_number = info.instance_number;
  r.received_at_ms = core::wall_clock_ms();
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

class IngestSession final : public dicom::StoreSession {
 public:
  IngestSession(IngestService& service, storage::SpoolFile spool, dicom::StoreRequest request,
                std::uint64_t association_id)
      : service_(service),
        spool_(std::move(spool)),
        request_(std::move(request)),
        association_id_(association_id) {}

  void write(std::span<const std::uint8_t> fragment) override {
    if (error_) return;
    if (auto st = spool_.write(fragment); !st.ok()) {
      error_ = std::move(st).error();
      return;
    }
    // A large instance, or many at once, begun just above the reserve: the free space is
    // checked again every kReserveCheckBytes, and the instance given up below half of it.
    unchecked_bytes_ += fragment.size();
    if (unchecked_bytes_ >= kReserveCheckBytes) {
      unchecked_bytes_ = 0;
      if (auto st = service_.check_reserve_floor(); !st.ok()) error_ = std::move(st).error();
    }
  }

  StoreOutcome finish() override {
    auto outcome = finish_inner();
    if (outcome.status != status::kSuccess) service_.counters().failed++;
    return outcome;
  }

 private:
  static constexpr std::uint64_t kReserveCheckBytes = 16u << 20;

  StoreOutcome fail(std::uint16_t code, std::string why) { return {code, std::move(why)}; }

  /// keep-first kept the row of an earlier copy (in another file), or reject refused this one.
  static bool kept_another_copy(const core::Result<index::InsertResult>& inserted) {
    if (!inserted.ok()) return inserted.error().code == ErrorCode::kAlreadyExists;
    return inserted->outcome == index::InsertOutcome::kDuplicateKept &&
           !inserted->replaced_path.empty();
  }

  StoreOutcome finish_inner() {
    if (error_) return fail(core::dimse_status(error_->code), error_->message);
    // One snapshot of the rules for this instance, even if a reload swaps them meanwhile.
    const auto routing = service_.routing();
    // Through the store's reader: with storage.encrypt the spool file holds ciphertext.
    auto content = spool_.content();
    if (!content.ok()) {
      return fail(core::dimse_status(content.error().code), content.error().message);
    }
    ContentByteSource source(std::move(content).value());
    auto info = dicom::read_instance_info(
        source, routing ? std::span<const std::uint32_t>(routing->required_tags())
                        : std::span<const std::uint32_t>());
    if (!info.ok()) {
      // Only a data set DCMTK cannot parse is the sender's fault (0xC000, final); a spool read
      // error or a lack of memory is ours, and the sender may try again (0xA7xx).
      const auto code = info.error().code;
      return fail(code == ErrorCode::kInvalidArgument ? status::kCannotUnderstand
                                                      : core::dimse_status(code),
                  "cannot parse data set: " + info.error().message);
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
    record.digest = spool_.digest();
    auto& store = service_.store();
    auto published = store.publish(std::move(spool_));
    if (!published.ok()) {
      return fail(core::dimse_status(published.error().code), published.error().message);
    }
    const bool shared = service_.takes_shared_flush(request_);
    if (!shared) {
      // The file and its directory entry are durable before the row naming it commits.
      auto synced = flush_published(store, *published);
      if (!synced.ok()) {
        published->fd.reset();
        if (!store.remove(published->path).ok()) store.keep_for_recovery(*published);
        return fail(core::dimse_status(synced.error().code), synced.error().message);
      }
    }
    const std::string path = published->path;
    record.storage_path = path;

    auto inserted = service_.commit(record, *published, shared);
    if (kept_another_copy(inserted)) {
      // keep-first and reject answer "already stored": true only while that copy is there.
      auto replaced = service_.replace_lost_copy(record, *published);
      if (!replaced.ok()) {
        inserted = std::move(replaced).error();
      } else if (*replaced) {
        inserted = index::InsertResult{index::InsertOutcome::kReplaced, {}};
      }
    }
    published->fd.reset();
    if (!inserted.ok()) {
      // After a failed flush the row may name this file: the next start checks both. So may a
      // commit whose connection broke (kOutcomeUnknown): a row naming a removed file is a lost
      // instance, a file no row names only disk space, which the next start (unclean) reclaims.
      if (inserted.error().code == ErrorCode::kOutcomeUnknown) {
        service_.store().keep_for_recovery(*published);
        log()->warn(
            "assoc={} event=index_commit_outcome_unknown sop_instance_uid={} "
            "storage_path={} action=file_kept",
            association_id_, record.sop_instance_uid, path);
      } else if (service_.flush_failed() || !service_.store().remove(path).ok()) {
        service_.store().keep_for_recovery(*published);
      }
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
        if (!inserted->replaced_path.empty()) {
          (void)service_.store().remove(inserted->replaced_path);
        }
        break;
    }
    service_.counters().stored++;
    service_.counters().bytes_stored += static_cast<std::uint64_t>(size);
    service_.counters().routed += record.destinations.size();
    service_.notify_enqueued(record.destinations);
    log()->debug("assoc={} event=instance_stored sop_instance_uid={} size={} duplicate={} flush={}",
                 association_id_, record.sop_instance_uid, size,
                 inserted->outcome != index::InsertOutcome::kInserted,
                 !store.options().fsync ? "none"
                 : shared               ? "shared"
                                        : "per_file");
    StoreOutcome done{status::kSuccess, {}};
    done.study_instance_uid = record.study_instance_uid;  // the audit trail's per-study summary
    return done;
  }

  IngestService& service_;
  storage::SpoolFile spool_;
  dicom::StoreRequest request_;
  std::uint64_t association_id_;
  std::optional<core::Error> error_;
  std::uint64_t unchecked_bytes_ = 0;
};

core::Error flush_failed_error() {
  return core::make_error(ErrorCode::kIo, "a storage flush failed: the gateway needs a restart");
}

bool can_share_flush(const storage::Store& store, const index::Index& index,
                     config::DuplicatePolicy duplicates) {
  const auto file = index.local_file();
  if (!store.options().fsync || !file || duplicates == config::DuplicatePolicy::kOverwrite) {
    return false;
  }
  auto same = store.on_storage_filesystem(*file);
  if (!same.ok()) {
    log()->warn("event=flush_mode_check_failed error={}", same.error().message);
    return false;
  }
  return *same;
}

}  // namespace

IngestService::IngestService(storage::Store& store, index::Index& index,
                             config::DuplicatePolicy duplicates, std::uint64_t min_free_bytes)
    : store_(store),
      index_(index),
      duplicates_(duplicates),
      shared_flush_(can_share_flush(store, index, duplicates)),
      min_free_bytes_(min_free_bytes),
      committer_([this](const auto& batch) { commit_group(batch, /*flushed=*/true); }),
      unflushed_committer_([this](const auto& batch) { commit_group(batch, /*flushed=*/false); }) {
  log()->info("event=ingest_durability fsync={} flush={}", store.options().fsync,
              shared_flush_ ? "shared" : "per_file");
}

void IngestService::commit_group(const std::vector<Committer::Slot*>& batch, bool flushed) {
  counters_.commit_groups++;
  std::vector<index::InstanceRecord> records;
  records.reserve(batch.size());
  for (const auto* slot : batch) records.push_back(*slot->request);
  auto results = flushed ? index_.insert_instances(records, duplicate_policy())
                         : index_.insert_instances_unflushed(records, duplicate_policy());
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->response = std::move(results[i]);
}

core::Result<index::InsertResult> IngestService::flush_shared(index::InsertResult inserted,
                                                              const storage::PublishedFile& file) {
  // Through this file's own descriptor, so the flush vouches for this instance only: its row
  // and its file (a kept duplicate's row was confirmed by its own flush, or is refused).
  auto flushed = store_.sync_filesystem(file);
  if (!flushed.ok()) {
    // A write-back error anywhere on the file system may be this file's or a row's, and Linux
    // reports it once per descriptor: no flush is trusted after it. Nothing is deleted now; the
    // rows stay unconfirmed and the next start reads their files back from the disk.
    if (!flush_failed_.exchange(true)) {
      store_.mark_unclean();
      log()->error(
          "event=ingest_stopped reason=\"storage flush failed; check the disk, then restart the "
          "gateway: its start-up check removes what did not reach the disk\" error={}",
          flushed.error().message);
    }
    return flushed.error();
  }
  if (flush_failed_) return flush_failed_error();
  if (inserted.marker != 0) index_.confirm_unflushed(inserted.marker);
  return inserted;
}

core::Result<bool> IngestService::replace_lost_copy(const index::InstanceRecord& record,
                                                    const storage::PublishedFile& file) {
  auto row = index_.find_instance(record.sop_instance_uid);
  if (!row.ok() || !row->has_value() || (*row)->storage_path == record.storage_path) {
    return false;  // nothing to compare with: the duplicate policy's answer stands
  }
  const auto& kept = **row;
  // Size and content digest: a copy cut short, gone, or changed on disk (bit rot, a bad
  // restore) is no copy to keep. The digest costs a read of the whole kept file, on duplicates
  // only, and only on the worker pool: with storage.fsync off this runs on the association's
  // I/O thread, which serves other connections too (finish_is_quick), so there the size alone
  // decides and `dicom-gw storage verify` finds changed content.
  const std::string digest = finish_is_quick() ? std::string() : kept.digest;
  auto intact = store_.check_stored(kept.storage_path, kept.size_bytes, digest);
  if (!intact.ok()) {
    log()->warn("event=duplicate_kept_copy_unreadable sop_instance_uid={} storage_path={} error={}",
                record.sop_instance_uid, kept.storage_path, intact.error().message);
    return false;
  }
  if (*intact) return false;
  // The stored copy is gone, cut short or changed (deleted by hand, a partial restore, a disk
  // fault): this copy takes its place, durable before the row names it, as with
  // storage.duplicates: overwrite. The row keeps its id, so its outbox rows (and any this insert
  // adds) send it.
  log()->warn("event=duplicate_replaces_lost_copy sop_instance_uid={} lost_path={} storage_path={}",
              record.sop_instance_uid, kept.storage_path, record.storage_path);
  GW_RETURN_IF_ERROR(flush_published(store_, file));
  GW_ASSIGN_OR_RETURN(auto replaced,
                      index_.insert_instance(record, index::DuplicatePolicy::kOverwrite));
  if (!replaced.replaced_path.empty()) (void)store_.remove(replaced.replaced_path);
  return true;
}

void IngestService::set_routing(std::shared_ptr<const queue::RoutingTable> routing) {
  std::lock_guard lock(routing_mu_);
  routing_ = std::move(routing);
}

std::shared_ptr<const queue::RoutingTable> IngestService::routing() const {
  std::lock_guard lock(routing_mu_);
  return routing_;
}

core::Result<index::InsertResult> IngestService::commit(const index::InstanceRecord& record,
                                                        const storage::PublishedFile& file,
                                                        bool shared) {
  if (!shared) return committer_.run(&record);
  auto inserted = unflushed_committer_.run(&record);
  if (!inserted.ok()) return inserted;
  // Outside the group commit: the next group's transaction runs while this flush does.
  return flush_shared(std::move(inserted).value(), file);
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

core::Status IngestService::check_free_space(std::uint64_t floor, bool may_clear, const char* why) {
  if (min_free_bytes_ == 0) return core::ok_status();
  const auto free = store_.free_bytes();
  if (!free.ok()) return core::ok_status();  // not known: the write itself will tell
  constexpr std::uint64_t kMiB = 1024 * 1024;
  if (*free >= floor) {
    if (may_clear && below_reserve_.exchange(false)) {
      log()->info("event=storage_reserve_cleared free_mb={} min_free_mb={}", *free / kMiB,
                  min_free_bytes_ / kMiB);
    }
    return core::ok_status();
  }
  if (!below_reserve_.exchange(true)) {
    log()->error(
        "event=storage_reserve_reached free_mb={} min_free_mb={} action=refusing_new_instances",
        *free / kMiB, min_free_bytes_ / kMiB);
  }
  counters_.refused_low_space++;
  // (The C-STORE-RSP's Error Comment holds 64 characters: the numbers are in the log.)
  return core::make_error(ErrorCode::kResourceExhausted, why);
}

core::Status IngestService::check_reserve() {
  return check_free_space(min_free_bytes_, /*may_clear=*/true,
                          "storage below its free-space reserve (storage.min_free_mb)");
}

core::Status IngestService::check_reserve_floor() {
  return check_free_space(min_free_bytes_ / 2, /*may_clear=*/false,
                          "storage fell below its free-space reserve while receiving");
}

core::Result<std::unique_ptr<dicom::StoreSession>> IngestService::begin(
    const dicom::StoreRequest& request) {
  if (flush_failed_) return flush_failed_error();
  if (!dicom::is_storage_sop_class(request.sop_class_uid)) {
    return core::make_error(ErrorCode::kUnsupported, "not a storage SOP class");
  }
  GW_RETURN_IF_ERROR(check_reserve());
  GW_ASSIGN_OR_RETURN(auto spool, store_.begin());
  dicom::FileMeta meta;
  meta.media_storage_sop_class_uid = request.sop_class_uid;
  meta.media_storage_sop_instance_uid = request.sop_instance_uid;
  meta.transfer_syntax_uid = request.transfer_syntax_uid;
  meta.implementation_class_uid = std::string(dicom::kImplementationClassUid);
  meta.implementation_version_name = std::string(dicom::kImplementationVersionName);
  meta.source_application_entity_title = request.association->calling_ae;
  GW_RETURN_IF_ERROR(spool.write(dicom::encode_file_meta(meta)));
  dicom::StoreRequest copy = request;
  return std::unique_ptr<dicom::StoreSession>(
      new IngestSession(*this, std::move(spool), std::move(copy), request.association->id));
}

}  // namespace gw::app
