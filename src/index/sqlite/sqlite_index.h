#pragma once
/// The embedded index backend: one SQLite database (WAL, synchronous=FULL, foreign keys on;
/// NORMAL for unflushed ingest transactions, ADR 012, and with storage.fsync off).
/// SQL lives in this folder only; callers see the backend-neutral Index interface.

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/batcher.h"
#include "index/index.h"
#include "index/phi_codec.h"

struct sqlite3;
struct sqlite3_stmt;

namespace gw::index {

class SqliteIndex : public Index {
 public:
  /// Opens (creating if needed) the database file, or an in-memory database for ":memory:", sets
  /// the connection pragmas and applies pending migrations. The parent directory must exist.
  /// `synchronous`: fsync the WAL on every commit (FULL) but insert_instances_unflushed's;
  /// false gives NORMAL (storage.fsync: false).
  static Result<std::unique_ptr<SqliteIndex>> open(const std::filesystem::path& db_path_or_memory,
                                                   bool synchronous = true);

  ~SqliteIndex() override;
  SqliteIndex(const SqliteIndex&) = delete;
  SqliteIndex& operator=(const SqliteIndex&) = delete;

  Result<InsertResult> insert_instance(const InstanceRecord& record,
                                       DuplicatePolicy policy) override;
  std::vector<Result<InsertResult>> insert_instances(const std::vector<InstanceRecord>& records,
                                                     DuplicatePolicy policy) override;
  Result<std::optional<InstanceRecord>> find_instance(const std::string& sop_uid) override;
  std::optional<std::filesystem::path> local_file() const override;
  std::vector<Result<InsertResult>> insert_instances_unflushed(
      const std::vector<InstanceRecord>& records, DuplicatePolicy policy) override;
  void confirm_unflushed(std::int64_t marker) override;
  Result<std::vector<UnconfirmedInstance>> list_unconfirmed() override;
  Status settle_unconfirmed(std::span<const std::int64_t> broken,
                            std::int64_t through_marker_id) override;
  Result<std::vector<StudySummary>> list_studies(const StudyQuery& query) override;
  Result<std::optional<StudySummary>> find_study(const std::string& study_uid) override;
  Result<std::vector<SeriesSummary>> list_series(const std::string& study_uid) override;
  Result<std::vector<InstanceRecord>> list_instances(const std::string& series_uid,
                                                     std::int64_t limit,
                                                     std::int64_t offset) override;
  Result<std::int64_t> count_instances() override;
  Result<bool> references_file(const std::string& storage_path) override;
  Result<int> schema_version() override;

  Result<std::vector<OutboxItem>> claim_outbox(const std::string& destination,
                                               std::size_t max_items, const std::string& owner,
                                               std::int64_t now_ms, std::int64_t lease_ms) override;
  Status renew_outbox_leases(const std::string& owner, std::span<const std::int64_t> ids,
                             std::int64_t now_ms, std::int64_t lease_ms) override;
  Status complete_outbox(std::int64_t id, const std::string& owner, const OutboxResult& result,
                         std::int64_t now_ms) override;
  Status reschedule_outbox(std::int64_t id, const std::string& owner,
                           std::int64_t next_attempt_at_ms, const OutboxResult& result,
                           std::int64_t now_ms) override;
  Status fail_outbox(std::int64_t id, const std::string& owner, const OutboxResult& result,
                     std::int64_t now_ms) override;
  std::vector<Status> finish_outbox_rows(std::span<const OutboxFinish> rows,
                                         const std::string& owner, std::int64_t now_ms) override;
  Status release_outbox_leases(const std::string& owner, std::int64_t now_ms) override;
  Status retry_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) override;
  Result<std::int64_t> retry_dead_outbox(const std::string& destination, std::int64_t now_ms,
                                         const AuditEvent* audit) override;
  Status delete_outbox(std::int64_t id, std::int64_t now_ms, const AuditEvent* audit) override;
  Result<std::optional<OutboxItem>> find_outbox(std::int64_t id) override;
  Result<std::vector<OutboxItem>> list_outbox(const OutboxQuery& query) override;
  Result<std::vector<QueueDepth>> queue_depths() override;
  Result<std::optional<std::int64_t>> newer_outbox_row(std::int64_t id) override;
  Result<std::int64_t> dead_letter_deleted_outbox(std::span<const std::string> destinations,
                                                  std::int64_t now_ms) override;
  Result<std::int64_t> dead_letter_expired_outbox(const std::string& destination,
                                                  std::int64_t queued_before_ms,
                                                  std::int64_t max_rows, const std::string& reason,
                                                  std::int64_t now_ms) override;
  Result<std::optional<std::int64_t>> next_outbox_due(const std::string& destination) override;

  Result<std::int64_t> create_user(const User& user, const AuditEvent* audit) override;
  Status update_user(const User& user, const AuditEvent* audit, bool revoke_tokens) override;
  Result<bool> replace_password_hash(std::int64_t user_id, const std::string& old_hash,
                                     const std::string& new_hash) override;
  Status delete_user(std::int64_t user_id, const AuditEvent* audit) override;
  Result<std::optional<User>> find_user(const std::string& name) override;
  Result<std::optional<User>> find_user_by_id(std::int64_t user_id) override;
  Result<std::vector<User>> list_users() override;
  Result<std::int64_t> count_users() override;
  Result<std::int64_t> create_token(const ApiToken& token, const AuditEvent* audit) override;
  Result<std::optional<TokenOwner>> find_token(const std::string& token_hash) override;
  Status revoke_token(std::int64_t token_id, std::int64_t now_ms, const AuditEvent* audit) override;
  Status touch_token(std::int64_t token_id, std::int64_t now_ms) override;
  Result<std::vector<ApiToken>> list_tokens(std::int64_t user_id) override;
  Result<std::int64_t> append_audit(const AuditEvent& event) override;
  Result<std::vector<AuditEvent>> list_audit(const AuditQuery& query) override;
  Result<AuditPage> list_audit_after(std::int64_t after_id, std::int64_t limit) override;

  Result<std::int64_t> create_destination(const ApiDestination& destination,
                                          const AuditEvent* audit) override;
  Status update_destination(const ApiDestination& destination, const AuditEvent* audit) override;
  Result<std::int64_t> delete_destination(const std::string& name, bool force, std::int64_t now_ms,
                                          const AuditEvent* audit) override;
  Result<std::optional<ApiDestination>> find_destination(const std::string& name) override;
  Result<std::vector<ApiDestination>> list_destinations() override;

  Result<std::shared_ptr<const crypto::Keyring>> use_keyring(crypto::Keyring keyring) override;
  Result<EncryptionStatus> encryption_status() override;
  Result<std::int64_t> reencrypt_batch(std::int64_t max_rows) override;
  Result<std::vector<StoredFileRow>> list_stored_files(std::int64_t after_id,
                                                       std::int64_t limit) override;

 private:
  struct DbDeleter {
    void operator()(sqlite3* db) const;
  };
  struct StmtDeleter {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;
  class Statement;
  class Transaction;

  /// One record of a batch.
  struct PendingInsert {
    const InstanceRecord* record;
    DuplicatePolicy policy;
  };
  using Batcher = core::Batcher<PendingInsert, Result<InsertResult>>;

  SqliteIndex(DbPtr db, std::filesystem::path path, bool synchronous);
  /// Writes the records in one transaction (takes mu_), a savepoint each; one result per record.
  /// `flushed` false: insert_instances_unflushed.
  std::vector<Result<InsertResult>> write_batch(const std::vector<PendingInsert>& items,
                                                bool flushed = true);
  /// `mark`: a new instance row gets an unconfirmed marker (ADR 012, InsertResult::marker),
  /// and a kept duplicate of a row with an unconfirmed marker is refused.
  Result<InsertResult> insert_one_locked(const InstanceRecord& record, DuplicatePolicy policy,
                                         bool mark = false);
  /// In a write transaction: clears the markers confirm_unflushed() confirmed since the last
  /// call (sqlite_unconfirmed.cpp). Returns the id cleared through, for after the commit.
  Result<std::int64_t> clear_confirmed_locked();
  /// Deletes the markers up to `through` (in the caller's transaction).
  Status delete_markers_locked(std::int64_t through);
  /// The markers up to which all are confirmed.
  std::int64_t confirmed_through();
  /// After a commit: its markers are now unconfirmed ones of this process.
  void add_unconfirmed(const std::vector<std::int64_t>& markers);
  /// Whether instance `instance_pk` has a marker not confirmed yet (kept duplicates).
  Result<bool> has_unconfirmed_marker_locked(std::int64_t instance_pk);

  // The *_locked helpers expect mu_ to be held by the caller.
  Status configure_locked(bool in_memory);
  Status migrate_locked();
  Result<int> user_version_locked();
  Status exec_locked(const char* sql);
  /// The cached prepared statement for `sql`, reset and with bindings cleared when released.
  Result<Statement> statement_locked(const std::string& sql);
  core::Error error_locked(int rc, const char* what) const;
  Result<std::vector<StudySummary>> query_studies_locked(const std::string& where,
                                                         const std::vector<std::string>& args,
                                                         std::int64_t limit, std::int64_t offset);
  /// A filter on a text column: exact, or a prefix when `value` ends with '*'. On a sealed
  /// column (ADR 010) exact values match their keyed hashes; a prefix is kInvalidArgument.
  Status add_text_filter_locked(const char* column, const std::string& value, bool sealed,
                                std::string& where, std::vector<std::string>& args) const;
  // Encryption at rest (sqlite_phi.cpp).
  /// The patient row for the record (found under any readable key version, re-sealed with the
  /// current key when it changes), inserted when there is none. Returns its id.
  Result<std::int64_t> upsert_sealed_patient_locked(const InstanceRecord& record);
  /// The study row with sealed PHI, upserted as the plaintext statement does. Returns its id.
  Result<std::int64_t> upsert_sealed_study_locked(const InstanceRecord& record,
                                                  std::int64_t patient_pk);
  Result<std::vector<std::uint32_t>> key_versions_in_use_locked();
  // Outbox helpers (sqlite_outbox.cpp).
  /// A pending row per record.destinations for the instance row `instance_pk`, skipping those
  /// that already have a pending one, or an in-flight one unless `replaced_file` (the record
  /// replaced the instance's file: the in-flight row is sending the old one).
  Status enqueue_outbox_locked(std::int64_t instance_pk, const InstanceRecord& record,
                               bool replaced_file = false);
  /// Moves a row `owner` holds out of kInFlight to `to` (complete/reschedule/fail); the row keeps
  /// its next_attempt_at_ms unless one is given. kNotFound, or kConflict when the lease is lost.
  Status finish_outbox_locked(std::int64_t id, const std::string& owner, OutboxState to,
                              std::optional<std::int64_t> next_attempt_at_ms,
                              const OutboxResult& result, std::int64_t now_ms);
  Result<std::optional<OutboxItem>> find_outbox_locked(std::int64_t id);
  /// The error for an update of row `id` that changed nothing: kNotFound when there is no such
  /// row, else kConflict with `conflict` as the reason.
  core::Error outbox_unchanged_locked(std::int64_t id, const std::string& conflict);
  // Users, tokens and audit helpers (sqlite_auth.cpp).
  /// Inserts `event` (validated) inside the caller's transaction; returns its id.
  Result<std::int64_t> insert_audit_locked(const AuditEvent& event);
  /// Inserts `audit` when it is not null (the audited writes' last step before commit).
  Status maybe_audit_locked(const AuditEvent* audit);

  /// Locking rule: mu_ guards db_ and statements_. Every public method holds it for its whole
  /// duration, so one connection serves all threads and a transaction is never interleaved
  /// with another thread's statements. Nothing called with mu_ held calls back into this class.
  std::mutex mu_;
  const std::filesystem::path path_;  ///< empty for an in-memory database
  bool synchronous_ = true;
  /// A Transaction could not set synchronous back to FULL after an unflushed commit: the next
  /// flushed transaction, and any statement outside one (statement_locked), sets it first, or
  /// fails rather than write unflushed.
  bool synchronous_restore_failed_ = false;
  // Unconfirmed markers (ADR 012), by marker id. marks_mu_ guards unconfirmed_ (committed in
  // this process, not confirmed yet) and last_marker_; it is taken with mu_ held or alone, never
  // the other way round, and never while waiting for the disk.
  std::mutex marks_mu_;
  std::set<std::int64_t> unconfirmed_;
  std::int64_t last_marker_ = 0;  ///< the newest committed (marks_mu_)
  /// Deleted from ingest_unconfirmed up to here (mu_).
  std::int64_t cleared_through_ = 0;
  /// Markers of the group write_batch is writing (mu_): not committed yet, so unconfirmed to a
  /// duplicate later in the same group.
  std::vector<std::int64_t> batch_markers_;
  /// Group commit of concurrent insert_instance calls (its mutex is never held with mu_).
  Batcher batcher_;
  DbPtr db_;  // declared before statements_: statements are finalized before the close
  std::unordered_map<std::string, StmtPtr> statements_;
  /// How PHI columns are sealed and opened; replaced by use_keyring.
  std::shared_ptr<const PhiCodec> codec_;
};

}  // namespace gw::index
