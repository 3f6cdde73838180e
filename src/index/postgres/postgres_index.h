#pragma once
/// The production index backend: PostgreSQL through libpq, selected by
/// `database.url: postgresql://…`. Several gateway nodes may share one database: outbox claims
/// lock rows with FOR UPDATE SKIP LOCKED and lease them, migrations run under an advisory lock,
/// and every method borrows a connection from a small pool, so threads do not queue behind one
/// mutex. SQL lives in this folder only; callers see the backend-neutral Index interface.

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/batcher.h"
#include "index/index.h"
#include "index/phi_codec.h"

namespace gw::index {
namespace pg {
class PgPool;
class PgConnection;
class Params;
}  // namespace pg

struct PostgresOptions {
  std::string url;            ///< postgresql://user@host:port/dbname?… (libpq URI)
  std::string password;       ///< overrides the URL's (database.password_file); never logged
  bool synchronous = true;    ///< false: synchronous_commit=off (storage.fsync: false)
  std::size_t pool_size = 8;  ///< connections at most
};

class PostgresIndex : public Index {
 public:
  /// Connects (a wrong URL or an unreachable server fails here, naming host:port, never the
  /// password) and applies pending migrations.
  static Result<std::unique_ptr<PostgresIndex>> open(const PostgresOptions& options);

  ~PostgresIndex() override;
  PostgresIndex(const PostgresIndex&) = delete;
  PostgresIndex& operator=(const PostgresIndex&) = delete;

  Result<InsertResult> insert_instance(const InstanceRecord& record,
                                       DuplicatePolicy policy) override;
  std::vector<Result<InsertResult>> insert_instances(const std::vector<InstanceRecord>& records,
                                                     DuplicatePolicy policy) override;
  Result<std::optional<InstanceRecord>> find_instance(const std::string& sop_uid) override;
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
  struct PendingInsert {
    const InstanceRecord* record;
    DuplicatePolicy policy;
  };
  using Batcher = core::Batcher<PendingInsert, Result<InsertResult>>;

  explicit PostgresIndex(std::unique_ptr<pg::PgPool> pool);
  Status migrate();
  /// Logs once per process when the connection may travel in plaintext over a network
  /// (pg::may_use_plaintext_over_network); the default behaviour is left as it is.
  Status warn_if_plaintext_possible();
  /// The records in one transaction, a savepoint each; one result per record.
  std::vector<Result<InsertResult>> write_batch(const std::vector<PendingInsert>& items);
  Result<InsertResult> insert_one(pg::PgConnection& conn, const InstanceRecord& record,
                                  DuplicatePolicy policy);
  Result<InsertResult> try_insert_one(pg::PgConnection& conn, const InstanceRecord& record,
                                      DuplicatePolicy policy, bool& lost_race);
  /// `where` refers to `params` by placeholder; limit and offset are appended.
  Result<std::vector<StudySummary>> query_studies(pg::PgConnection& conn, const std::string& where,
                                                  pg::Params params, std::int64_t limit,
                                                  std::int64_t offset);
  /// Exact or prefix filter; on a sealed column (ADR 010) exact values match their keyed
  /// hashes and a prefix is kInvalidArgument.
  static Status add_text_filter(const PhiCodec& codec, const char* column, const std::string& value,
                                bool sealed, std::string& where, pg::Params& params);
  // Encryption at rest (postgres_phi.cpp).
  std::shared_ptr<const PhiCodec> codec() const;
  Result<std::int64_t> upsert_sealed_patient(pg::PgConnection& conn, const PhiCodec& codec,
                                             const InstanceRecord& record);
  Result<std::int64_t> upsert_sealed_study(pg::PgConnection& conn, const PhiCodec& codec,
                                           const InstanceRecord& record, std::int64_t patient_pk);
  // Outbox helpers (postgres_outbox.cpp).
  /// A pending row per record.destinations, skipping those that already have a pending one,
  /// or an in-flight one unless `replaced_file` (the record replaced the instance's file: the
  /// in-flight row is sending the old one).
  Status enqueue_outbox(pg::PgConnection& conn, std::int64_t instance_pk,
                        const InstanceRecord& record, bool replaced_file = false);
  Status finish_outbox(std::int64_t id, const std::string& owner, OutboxState to,
                       std::optional<std::int64_t> next_attempt_at_ms, const OutboxResult& result,
                       std::int64_t now_ms);
  Status finish_outbox_on(pg::PgConnection& conn, std::int64_t id, const std::string& owner,
                          OutboxState to, std::optional<std::int64_t> next_attempt_at_ms,
                          const OutboxResult& result, std::int64_t now_ms);
  core::Error outbox_unchanged(pg::PgConnection& conn, std::int64_t id,
                               const std::string& conflict);
  // Audit helpers (postgres_auth.cpp).
  Result<std::int64_t> insert_audit(pg::PgConnection& conn, const AuditEvent& event);
  Status maybe_audit(pg::PgConnection& conn, const AuditEvent* audit);

  std::unique_ptr<pg::PgPool> pool_;
  /// Group commit of concurrent insert_instance calls: one transaction (one WAL flush on the
  /// server) for every instance that arrived while the previous one was committing.
  Batcher batcher_;
  mutable std::mutex codec_mu_;
  std::shared_ptr<const PhiCodec> codec_;  ///< guarded by codec_mu_; replaced by use_keyring
};

}  // namespace gw::index
