#pragma once
/// The index: what the gateway has stored, searchable by the fields an operator uses. One
/// interface, two backends: SQLite (embedded default) and PostgreSQL (later). Every write is one
/// transaction. An instance row is committed after its file's flush, or (ADR 012) committed
/// unflushed with a marker and made durable with its file by one syncfs; a row whose flush was
/// never confirmed is checked against its file at start-up.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "crypto/keyring.h"
#include "index/auth.h"
#include "index/destinations.h"
#include "index/outbox.h"

namespace gw::index {

using core::Result;
using core::Status;

struct InstanceRecord {
  // Instance
  std::string sop_instance_uid;
  std::string sop_class_uid;
  std::string transfer_syntax_uid;
  std::string instance_number;
  std::int64_t size_bytes = 0;  ///< stored file size
  std::string storage_path;     ///< relative to data_dir
  std::string digest;           ///< of the stored file, "xxh128:<hex>" (storage/content_digest.h)
  std::int64_t received_at_ms = 0;  ///< Unix epoch milliseconds
  std::string calling_ae;
  std::string called_ae;
  std::string peer_address;  ///< "ip:port"
  // Series
  std::string series_instance_uid;
  std::string modality;
  std::string series_description;
  std::string series_number;
  std::string body_part_examined;
  // Study
  std::string study_instance_uid;
  std::string study_date;
  std::string study_time;
  std::string study_description;
  std::string accession_number;
  std::string study_id;
  std::string referring_physician;
  // Patient
  std::string patient_id;
  std::string patient_name;
  std::string patient_birth_date;
  std::string patient_sex;
  // Source
  std::string station_name;
  std::string institution_name;
  // Routing (insert only, never read back): one outbox row per destination is written in the
  // same transaction as the instance row, due at received_at_ms. Empty = not forwarded.
  std::vector<std::string> destinations;

  bool operator==(const InstanceRecord&) const = default;
};

enum class DuplicatePolicy { kKeepFirst, kOverwrite, kReject };

enum class InsertOutcome {
  kInserted,       ///< a new instance
  kDuplicateKept,  ///< keep-first: the existing row stays; the caller removes the new file
  kReplaced,       ///< overwrite: row now points at the new file; caller removes replaced_path
};

struct InsertResult {
  InsertOutcome outcome = InsertOutcome::kInserted;
  /// The file the caller should remove: kReplaced: the old storage_path; kDuplicateKept: the new
  /// one. Empty when that would be the file the row points to (same storage_path re-inserted).
  std::string replaced_path;
  /// insert_instances_unflushed: the new row's unconfirmed marker, for confirm_unflushed(); 0
  /// when the insert made none (a kept duplicate).
  std::int64_t marker = 0;
};

/// An instance row committed unflushed whose flush was never confirmed (ADR 012): after a power
/// loss its row may be on disk while its file is not. Checked at start-up.
struct UnconfirmedInstance {
  std::int64_t marker_id = 0;    ///< settle_unconfirmed() clears markers up to the largest
  std::int64_t instance_id = 0;  ///< the instance row
  std::string storage_path;
  std::int64_t size_bytes = 0;
  std::string digest;
};

struct StudySummary {
  std::string study_instance_uid;
  std::string study_date;
  std::string study_time;
  std::string study_description;
  std::string accession_number;
  std::string patient_id;
  std::string patient_name;
  std::string modalities;  ///< distinct modalities, backslash-separated ("CT\\SR")
  std::int64_t series_count = 0;
  std::int64_t instance_count = 0;
  std::int64_t size_bytes = 0;
  std::int64_t last_received_at_ms = 0;
};

struct SeriesSummary {
  std::string series_instance_uid;
  std::string study_instance_uid;
  std::string modality;
  std::string series_description;
  std::string series_number;
  std::int64_t instance_count = 0;
  std::int64_t size_bytes = 0;
};

/// Filters for list_studies; empty strings mean "no filter". Text filters match exactly, or as
/// a prefix when they end with '*'. Dates are YYYYMMDD, inclusive (studies without a date do not
/// match a date filter). Results are newest first: by the last instance received.
struct StudyQuery {
  std::string patient_id;
  std::string patient_name;
  std::string accession_number;
  std::string modality;
  std::string study_date_from;
  std::string study_date_to;
  std::int64_t limit = 100;
  std::int64_t offset = 0;
};

/// Encryption of the PHI columns (ADR 010), for /status and `dicom-gw db rotate-key`.
struct EncryptionStatus {
  std::uint32_t current_key_version = 0;           ///< 0: no key, values are stored in plaintext
  std::vector<std::uint32_t> registered_versions;  ///< the key registry, ascending
  /// Patient and study rows per key version (0 = plaintext), ascending by version.
  std::vector<std::pair<std::uint32_t, std::int64_t>> rows_by_version;
  std::optional<bool> pgcrypto;  ///< PostgreSQL: whether the extension is installed
};

/// One stored file as its instance row describes it (Index::list_stored_files): what a
/// re-encryption or a storage check needs, no patient data.
struct StoredFileRow {
  std::int64_t id = 0;
  std::string sop_instance_uid;
  std::string storage_path;  ///< relative to data_dir
  std::int64_t size_bytes = 0;
  std::string digest;
  std::int64_t received_at_ms = 0;

  bool operator==(const StoredFileRow&) const = default;
};

class Index {
 public:
  virtual ~Index() = default;

  /// Inserts (or, by policy, keeps/replaces) an instance and its study/series/patient fields in
  /// one transaction; concurrent callers may share one (group commit), each with its own result.
  /// kReject on an existing SOP Instance UID -> kAlreadyExists error.
  virtual Result<InsertResult> insert_instance(const InstanceRecord& record,
                                               DuplicatePolicy policy) = 0;
  /// Several instances in one transaction (group commit by the caller); one result per record,
  /// in order. A record's failure does not affect the others; a failed commit fails them all.
  /// A kept duplicate of a row whose unflushed insert is not confirmed yet (below) is refused
  /// (kConflict), as there.
  virtual std::vector<Result<InsertResult>> insert_instances(
      const std::vector<InstanceRecord>& records, DuplicatePolicy policy) = 0;
  virtual Result<std::optional<InstanceRecord>> find_instance(const std::string& sop_uid) = 0;

  // ---- One flush for the file and its row (ADR 012) ----
  /// The file that holds the index when a flush of its file system (syncfs) makes a commit
  /// durable: SQLite's database file. nullopt: PostgreSQL, an in-memory database.
  virtual std::optional<std::filesystem::path> local_file() const { return std::nullopt; }
  /// insert_instances whose transaction is committed without being flushed: each new instance
  /// row gets a marker (InsertResult::marker) in the same transaction. The caller flushes the
  /// file system holding local_file() and the record's file (syncfs) and then confirms the
  /// marker. kOverwrite is refused (kInvalidArgument): a replaced row could not be restored if
  /// its new file were lost. A kept duplicate of a row whose marker is not confirmed yet is
  /// refused (kConflict): its success would rest on another instance's flush. Backends without
  /// local_file(): kUnsupported.
  virtual std::vector<Result<InsertResult>> insert_instances_unflushed(
      const std::vector<InstanceRecord>& records, DuplicatePolicy /*policy*/) {
    return std::vector<Result<InsertResult>>(
        records.size(), core::make_error(core::ErrorCode::kUnsupported, "unflushed insert"));
  }
  /// The flush of the row that carries `marker` succeeded, through that instance's own file
  /// descriptor. Markers confirmed with every older one are deleted in the next write
  /// transaction; one never confirmed (its flush failed) keeps itself and every later marker
  /// for the start-up check.
  virtual void confirm_unflushed(std::int64_t /*marker*/) {}
  /// The markers above those confirmed together with every older one: at start-up, every
  /// marker left (a crash or a power loss before the flush, or a run that ended before its
  /// markers were cleared). Oldest marker first.
  virtual Result<std::vector<UnconfirmedInstance>> list_unconfirmed() {
    return std::vector<UnconfirmedInstance>();
  }
  /// Deletes the `broken` instance rows (their markers and outbox rows with them, and the series,
  /// study and patient rows that no longer have an instance) and clears every marker up to
  /// `through_marker_id` (0: none but theirs), in one durable transaction.
  virtual Status settle_unconfirmed(std::span<const std::int64_t> broken,
                                    std::int64_t /*through_marker_id*/) {
    if (broken.empty()) return core::ok_status();
    return core::make_error(core::ErrorCode::kUnsupported, "unconfirmed instances");
  }

  virtual Result<std::vector<StudySummary>> list_studies(const StudyQuery& query) = 0;
  virtual Result<std::optional<StudySummary>> find_study(const std::string& study_uid) = 0;
  virtual Result<std::vector<SeriesSummary>> list_series(const std::string& study_uid) = 0;
  virtual Result<std::vector<InstanceRecord>> list_instances(const std::string& series_uid,
                                                             std::int64_t limit,
                                                             std::int64_t offset) = 0;
  virtual Result<std::int64_t> count_instances() = 0;
  /// Whether any instance row points at this stored file (relative path).
  virtual Result<bool> references_file(const std::string& storage_path) = 0;
  // ---- Outbox (index/outbox.h) ----
  // On insert, every record's `destinations` get a pending row due now. A duplicate that is kept
  // or replaced still enqueues, except for destinations that already have a pending row for that
  // SOP Instance UID (it reads the instance's storage_path when claimed, so it sends the current
  // file), or an in-flight one when the duplicate was kept (it is sending that very file): a
  // resend forwards again; it never doubles a queue. A replaced instance (kOverwrite, another
  // file) gets a fresh row beside an in-flight one, which is sending the replaced version.

  /// Claims up to `max_items` rows of `destination` that are due: pending with
  /// next_attempt_at_ms <= now_ms, or in flight with an expired lease (lease_expires_at_ms <=
  /// now_ms: the lease covers [claim, expiry)). Oldest first (by id), so a study goes out in the
  /// order it came in. Each claimed row becomes kInFlight for `owner` until now_ms + lease_ms,
  /// and its attempts count goes up by one. The whole claim is one transaction.
  virtual Result<std::vector<OutboxItem>> claim_outbox(const std::string& destination,
                                                       std::size_t max_items,
                                                       const std::string& owner,
                                                       std::int64_t now_ms,
                                                       std::int64_t lease_ms) = 0;
  /// Extends to now_ms + lease_ms the leases of the rows among `ids` that `owner` holds (a long
  /// transfer): only the rows its batches are working on. A row it still holds but no longer
  /// works on (its result could not be written) keeps its lease, so it returns to the queue when
  /// the lease expires. One statement, whatever the number of ids.
  virtual Status renew_outbox_leases(const std::string& owner, std::span<const std::int64_t> ids,
                                     std::int64_t now_ms, std::int64_t lease_ms) = 0;
  /// kInFlight -> kDelivered. kConflict when `owner` no longer holds the row.
  virtual Status complete_outbox(std::int64_t id, const std::string& owner,
                                 const OutboxResult& result, std::int64_t now_ms) = 0;
  /// kInFlight -> kPending, due at next_attempt_at_ms, with the reason. kConflict as above.
  virtual Status reschedule_outbox(std::int64_t id, const std::string& owner,
                                   std::int64_t next_attempt_at_ms, const OutboxResult& result,
                                   std::int64_t now_ms) = 0;
  /// kInFlight -> kDead, with the reason. kConflict as above.
  virtual Status fail_outbox(std::int64_t id, const std::string& owner, const OutboxResult& result,
                             std::int64_t now_ms) = 0;
  /// complete/reschedule/fail for several rows `owner` holds, in one transaction (one flush).
  /// One Status per row, in order: kConflict for a row whose lease was lost (the others still
  /// change); a database failure fails every row (nothing changed).
  virtual std::vector<Status> finish_outbox_rows(std::span<const OutboxFinish> rows,
                                                 const std::string& owner, std::int64_t now_ms) = 0;
  /// Graceful stop: every row `owner` holds goes back to kPending, due now, attempts count
  /// restored (the attempt never happened).
  virtual Status release_outbox_leases(const std::string& owner, std::int64_t now_ms) = 0;
  // The operator's writes below take an optional AuditEvent inserted in the same transaction
  // (null = not audited), as the user writes do: when the change fails, so does its row.

  /// Operator: a pending, dead or delivered row is made pending and due now, with its attempts
  /// count reset and retried_at_ms set to now_ms (retry.max_age counts from there). last_status/
  /// last_error stay (why it failed) until the next attempt replaces them. kNotFound for no such
  /// row; kConflict while it is in flight.
  virtual Status retry_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) = 0;
  /// Operator: retry_outbox for every dead row of `destination` (all destinations when empty),
  /// in one transaction. Returns how many rows were retried.
  virtual Result<std::int64_t> retry_dead_outbox(const std::string& destination,
                                                 std::int64_t now_ms, const AuditEvent* audit) = 0;
  /// Operator: removes a row that is not in flight (an in-flight row whose lease expired by
  /// `now_ms` is not: nobody is sending it). kNotFound / kConflict as above.
  virtual Status delete_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) = 0;
  virtual Result<std::optional<OutboxItem>> find_outbox(std::int64_t id) = 0;
  virtual Result<std::vector<OutboxItem>> list_outbox(const OutboxQuery& query) = 0;
  /// One entry per destination that has any row, sorted by name.
  virtual Result<std::vector<QueueDepth>> queue_depths() = 0;
  /// The newest row for the same instance and destination as row `id` that was queued after it
  /// was queued or last retried (an overwrite while `id` was in flight queues one, see above);
  /// nullopt when there is none or no row `id`.
  virtual Result<std::optional<std::int64_t>> newer_outbox_row(std::int64_t id) = 0;
  /// Rows of destinations deleted through the API (ADR 005) that were queued after the delete:
  /// an instance routed with the routing of before the delete, or by another node that still
  /// ran the destination. Each pending row of `destinations`, and each in-flight one whose lease
  /// has expired (nobody is sending it), becomes kDead with the reason "destination deleted",
  /// as a forced delete_destination leaves its rows; in-flight rows under a live lease are left
  /// to their sender. One transaction. Returns how many rows changed.
  virtual Result<std::int64_t> dead_letter_deleted_outbox(std::span<const std::string> destinations,
                                                          std::int64_t now_ms) = 0;
  /// Rows of a paused `destination` (circuit breaker open: nothing is claimed, so no attempt
  /// ends and retry.max_age is never checked): each of its oldest `max_rows` pending rows (by
  /// id) queued, or last retried, at or before `queued_before_ms` becomes kDead with `reason`.
  /// One statement; returns how many rows changed.
  virtual Result<std::int64_t> dead_letter_expired_outbox(const std::string& destination,
                                                          std::int64_t queued_before_ms,
                                                          std::int64_t max_rows,
                                                          const std::string& reason,
                                                          std::int64_t now_ms) = 0;
  /// When `destination` next has a row to claim: the earliest next_attempt_at_ms of its pending
  /// rows or lease_expires_at_ms of its in-flight ones; nullopt when it has neither.
  virtual Result<std::optional<std::int64_t>> next_outbox_due(const std::string& destination) = 0;

  // ---- Users, tokens, audit (index/auth.h) ----
  // Every write below takes an optional AuditEvent that is inserted in the same transaction
  // (null = not audited, e.g. last_used_at bookkeeping). When the write fails, so does the
  // audit row: record a failed attempt with append_audit. An invalid AuditEvent (see
  // append_audit) fails the write with kInvalidArgument.

  /// kInvalidArgument for a name valid_user_name refuses; kAlreadyExists when the name is taken
  /// (names are unique without regard to case). Returns the new id; ids are never reused.
  virtual Result<std::int64_t> create_user(const User& user, const AuditEvent* audit) = 0;
  /// Role, password_hash, disabled and updated_at_ms of the user with user.id (the name does
  /// not change). `revoke_tokens` also revokes (keeps) every token of the user, at
  /// user.updated_at_ms, in the same transaction: a password set by a person shuts out whoever
  /// held the old credentials (a rehash at login does not). kNotFound when there is none.
  virtual Status update_user(const User& user, const AuditEvent* audit, bool revoke_tokens) = 0;
  /// Sets the password hash of user `user_id` to `new_hash` only if it still is `old_hash`
  /// (nothing else changes, updated_at_ms included): a rehash at login, which must not undo a
  /// change made since the user was read. false when the hash changed or the user is gone.
  virtual Result<bool> replace_password_hash(std::int64_t user_id, const std::string& old_hash,
                                             const std::string& new_hash) = 0;
  /// Removes the user and revokes (keeps) their tokens, revoked at audit->at_ms (now without
  /// an audit event); list_tokens(user_id) still shows them. kNotFound when there is none.
  virtual Status delete_user(std::int64_t user_id, const AuditEvent* audit) = 0;
  /// By name, whatever its case ("Alice" finds alice). nullopt when unknown or not a valid name.
  virtual Result<std::optional<User>> find_user(const std::string& name) = 0;
  virtual Result<std::optional<User>> find_user_by_id(std::int64_t user_id) = 0;
  virtual Result<std::vector<User>> list_users() = 0;
  virtual Result<std::int64_t> count_users() = 0;

  /// Stores a token (its hash). Returns the new id. kInvalidArgument when token_hash is not 64
  /// lower-case hex digits (the token itself is never stored), kNotFound when token.user_id is
  /// no user, kAlreadyExists for a hash already stored. An audit event without a target gets
  /// "token:<new id>" (the id exists only inside the transaction).
  virtual Result<std::int64_t> create_token(const ApiToken& token, const AuditEvent* audit) = 0;
  /// The token with this hash and its user, whatever its state (the caller checks expiry,
  /// revocation and a disabled user). nullopt when unknown or when its user was deleted.
  virtual Result<std::optional<TokenOwner>> find_token(const std::string& token_hash) = 0;
  /// Sets revoked_at_ms (kept for the record; revoking again keeps the first time).
  /// kNotFound when there is no such token.
  virtual Status revoke_token(std::int64_t token_id, std::int64_t now_ms,
                              const AuditEvent* audit) = 0;
  /// Not audited; at most one write per token per minute is enough (the caller throttles).
  /// last_used_at_ms never moves backwards. kNotFound when there is no such token.
  virtual Status touch_token(std::int64_t token_id, std::int64_t now_ms) = 0;
  /// All tokens of a user (0 = of every user, including deleted users'), newest first.
  virtual Result<std::vector<ApiToken>> list_tokens(std::int64_t user_id) = 0;

  /// An audit row on its own (login attempts, associations, reloads…). Returns its id.
  /// kInvalidArgument without actor or action, for an outcome other than ok/denied/failed, or
  /// details that are not a JSON object ("" is stored as "{}"). at_ms 0 = now.
  virtual Result<std::int64_t> append_audit(const AuditEvent& event) = 0;
  /// Newest first (at_ms, then id). limit 0 returns nothing; a negative limit or offset is
  /// kInvalidArgument.
  virtual Result<std::vector<AuditEvent>> list_audit(const AuditQuery& query) = 0;
  /// Rows with id > after_id in ascending id order, at most `limit` (0: none, only last_id),
  /// for the syslog exporter's cursor. A negative limit is kInvalidArgument.
  virtual Result<AuditPage> list_audit_after(std::int64_t after_id, std::int64_t limit) = 0;

  // ---- API destinations (index/destinations.h) ----
  // Writes take an optional AuditEvent inserted in the same transaction, as the user writes do.

  /// Returns the new id. kAlreadyExists when the name is taken (without regard to case).
  virtual Result<std::int64_t> create_destination(const ApiDestination& destination,
                                                  const AuditEvent* audit) = 0;
  /// Replaces every field of the destination with this name (found without regard to case)
  /// except name, created_at_ms and created_by. kNotFound when there is none.
  virtual Status update_destination(const ApiDestination& destination, const AuditEvent* audit) = 0;
  /// Removes it. Its pending and in-flight outbox rows: kConflict (nothing changes) unless
  /// `force`, which makes them kDead with the reason "destination deleted" at now_ms. Returns
  /// how many rows were made dead. kNotFound when there is no such destination.
  virtual Result<std::int64_t> delete_destination(const std::string& name, bool force,
                                                  std::int64_t now_ms, const AuditEvent* audit) = 0;
  /// By name, without regard to case.
  virtual Result<std::optional<ApiDestination>> find_destination(const std::string& name) = 0;
  /// All, sorted by name.
  virtual Result<std::vector<ApiDestination>> list_destinations() = 0;

  // ---- Encryption at rest (ADR 010, index/phi_codec.h) ----

  /// Gives the keys their registry versions (registering the first key, or a new current key
  /// that comes with a registered previous one) and seals PHI with the current key from now
  /// on; rows of either key stay readable. kConfig for a wrong key, encrypted rows and no key,
  /// an unknown previous key, or rows of a version the keyring cannot read. Safe while serving
  /// (a reload); returns the keyring with its versions.
  virtual Result<std::shared_ptr<const crypto::Keyring>> use_keyring(crypto::Keyring keyring) = 0;
  virtual Result<EncryptionStatus> encryption_status() = 0;
  /// Re-seals with the current key up to `max_rows` patient and study rows of any other
  /// version (plaintext included), in one transaction, skipping rows another writer holds.
  /// Returns how many rows it changed: 0 when none is left.
  virtual Result<std::int64_t> reencrypt_batch(std::int64_t max_rows) = 0;
  /// Stored files, by instance id after `after_id`, at most `limit`.
  virtual Result<std::vector<StoredFileRow>> list_stored_files(std::int64_t after_id,
                                                               std::int64_t limit) = 0;

  /// The schema version after migrations ran.
  virtual Result<int> schema_version() = 0;
};

/// Opens the index named by database.url: "" or "sqlite://" (index.db in data_dir),
/// "sqlite:///abs/path.db", ":memory:" for tests, or "postgresql://…" (index/open.h has the
/// options, e.g. a password file). Runs pending migrations. Other schemes are kUnsupported.
/// `synchronous`: every commit is on stable storage before it returns (storage.fsync).
Result<std::unique_ptr<Index>> open_index(const std::string& url,
                                          const std::filesystem::path& data_dir,
                                          bool synchronous = true);

}  // namespace gw::index
