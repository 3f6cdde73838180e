#include "index/sqlite/migrations.h"

namespace gw::index {

const std::vector<Migration>& sqlite_migrations() {
  // Text columns are NOT NULL DEFAULT '' so that "absent" has one spelling (the C++ side uses
  // empty strings). Timestamps are Unix epoch milliseconds taken from the received instances.
  static const std::vector<Migration> kMigrations = {
      {1, R"sql(
CREATE TABLE patients (
  id            INTEGER PRIMARY KEY,
  patient_id    TEXT NOT NULL DEFAULT '',
  patient_name  TEXT NOT NULL DEFAULT '',
  birth_date    TEXT NOT NULL DEFAULT '',
  sex           TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL DEFAULT 0,
  updated_at_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE (patient_id, patient_name)
);
CREATE INDEX patients_patient_name ON patients (patient_name);

CREATE TABLE studies (
  id                  INTEGER PRIMARY KEY,
  study_instance_uid  TEXT NOT NULL UNIQUE,
  patient_pk          INTEGER NOT NULL REFERENCES patients (id),
  study_date          TEXT NOT NULL DEFAULT '',
  study_time          TEXT NOT NULL DEFAULT '',
  study_description   TEXT NOT NULL DEFAULT '',
  accession_number    TEXT NOT NULL DEFAULT '',
  study_id            TEXT NOT NULL DEFAULT '',
  referring_physician TEXT NOT NULL DEFAULT '',
  created_at_ms       INTEGER NOT NULL DEFAULT 0,
  updated_at_ms       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX studies_patient_pk ON studies (patient_pk);
CREATE INDEX studies_accession_number ON studies (accession_number);
CREATE INDEX studies_study_date ON studies (study_date);
CREATE INDEX studies_updated_at_ms ON studies (updated_at_ms);

CREATE TABLE series (
  id                  INTEGER PRIMARY KEY,
  series_instance_uid TEXT NOT NULL UNIQUE,
  study_pk            INTEGER NOT NULL REFERENCES studies (id),
  modality            TEXT NOT NULL DEFAULT '',
  series_description  TEXT NOT NULL DEFAULT '',
  series_number       TEXT NOT NULL DEFAULT '',
  body_part_examined  TEXT NOT NULL DEFAULT '',
  created_at_ms       INTEGER NOT NULL DEFAULT 0,
  updated_at_ms       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX series_study_pk ON series (study_pk);
CREATE INDEX series_modality ON series (modality, study_pk);

CREATE TABLE instances (
  id                  INTEGER PRIMARY KEY,
  sop_instance_uid    TEXT NOT NULL UNIQUE,
  series_pk           INTEGER NOT NULL REFERENCES series (id),
  sop_class_uid       TEXT NOT NULL DEFAULT '',
  transfer_syntax_uid TEXT NOT NULL DEFAULT '',
  instance_number     TEXT NOT NULL DEFAULT '',
  size_bytes          INTEGER NOT NULL DEFAULT 0,
  storage_path        TEXT NOT NULL,
  sha256              TEXT NOT NULL DEFAULT '',
  received_at_ms      INTEGER NOT NULL DEFAULT 0,
  calling_ae          TEXT NOT NULL DEFAULT '',
  called_ae           TEXT NOT NULL DEFAULT '',
  peer_address        TEXT NOT NULL DEFAULT '',
  station_name        TEXT NOT NULL DEFAULT '',
  institution_name    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX instances_series_pk ON instances (series_pk);
)sql"},
      // Crash recovery looks files up by path (Index::references_file).
      {2, R"sql(
CREATE INDEX instances_storage_path ON instances (storage_path);
)sql"},
      // The outbox (index/outbox.h): one row per (instance, destination). A row refers to the
      // instance row, which overwrite updates in place, so the forwarder always reads the file
      // the index points at now; deleting an instance deletes its deliveries.
      // outbox_queue: claim (destination + state, oldest id first, next attempt read from the
      // index), listing and counting per destination. outbox_state: listing by state across
      // destinations, and finding a lease owner's rows among the few in flight.
      // outbox_pending_due: next_outbox_due in O(log n) however long the backlog.
      // outbox_instance: the "already queued?" check when a duplicate arrives.
      {3, R"sql(
CREATE TABLE outbox (
  id                  INTEGER PRIMARY KEY,
  instance_pk         INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  destination         TEXT NOT NULL,
  state               TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'in_flight', 'delivered', 'dead')),
  attempts            INTEGER NOT NULL DEFAULT 0,
  created_at_ms       INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms  INTEGER NOT NULL DEFAULT 0,
  updated_at_ms       INTEGER NOT NULL DEFAULT 0,
  lease_owner         TEXT NOT NULL DEFAULT '',
  lease_expires_at_ms INTEGER NOT NULL DEFAULT 0,
  last_status         INTEGER NOT NULL DEFAULT -1,
  last_error          TEXT NOT NULL DEFAULT '',
  warning             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_queue ON outbox (destination, state, id, next_attempt_at_ms);
CREATE INDEX outbox_state ON outbox (state, id);
CREATE INDEX outbox_pending_due ON outbox (destination, next_attempt_at_ms)
  WHERE state = 'pending';
CREATE INDEX outbox_instance ON outbox (instance_pk, destination, state);
)sql"},
      // Users, API tokens and the audit trail (index/auth.h).
      // users: names are unique without regard to case (COLLATE NOCASE; names are ASCII), so
      // "Alice" and "alice" can never be two accounts that read alike in the audit trail, and
      // a login matches whatever case was typed. AUTOINCREMENT: an id is never handed out
      // again, so a deleted user's id in api_tokens keeps meaning that user.
      // api_tokens: token_hash only (SHA-256 hex), never the token. user_id has no foreign key
      // on purpose: delete_user revokes and keeps the tokens, and the row keeps saying whose
      // they were (ids are not reused; find_token only returns tokens of existing users).
      // audit: append-only; the triggers refuse UPDATE and DELETE from any connection (they
      // also turn off SQLite's truncate optimisation, so DELETE without WHERE is refused too),
      // and an INSERT that reuses an id: REPLACE deletes the old row without firing DELETE
      // triggers. Someone who can write the file can still drop them; the ATNA syslog export
      // is the copy out of their reach.
      // audit_at serves the unfiltered newest-first listing and since/until; audit_actor and
      // audit_action serve the actor filter and the action filter (exact or prefix).
      {4, R"sql(
CREATE TABLE users (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT NOT NULL COLLATE NOCASE UNIQUE,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  password_hash TEXT NOT NULL DEFAULT '',
  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at_ms INTEGER NOT NULL DEFAULT 0,
  updated_at_ms INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id         INTEGER NOT NULL,
  token_hash      TEXT NOT NULL UNIQUE,
  description     TEXT NOT NULL DEFAULT '',
  created_at_ms   INTEGER NOT NULL DEFAULT 0,
  expires_at_ms   INTEGER NOT NULL DEFAULT 0,
  revoked_at_ms   INTEGER NOT NULL DEFAULT 0,
  last_used_at_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, id);

CREATE TABLE audit (
  id           INTEGER PRIMARY KEY,
  at_ms        INTEGER NOT NULL,
  actor        TEXT NOT NULL CHECK (actor <> ''),
  action       TEXT NOT NULL CHECK (action <> ''),
  target       TEXT NOT NULL DEFAULT '',
  outcome      TEXT NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'denied', 'failed')),
  peer_address TEXT NOT NULL DEFAULT '',
  details      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
);
CREATE INDEX audit_at ON audit (at_ms, id);
CREATE INDEX audit_actor ON audit (actor, at_ms, id);
CREATE INDEX audit_action ON audit (action, at_ms, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'audit rows are append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'audit rows are append-only');
END;
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
BEGIN
  SELECT RAISE(ABORT, 'audit rows are append-only');
END;
)sql"},
      // The content digest became XXH3-128 ("xxh128:<hex>", storage/content_digest.h); rows
      // written before keep their SHA-256, now labelled as such.
      {5, R"sql(
ALTER TABLE instances RENAME COLUMN sha256 TO digest;
UPDATE instances SET digest = 'sha256:' || digest WHERE digest <> '' AND digest NOT LIKE '%:%';
)sql"},
      // Destinations created through the REST API (index/destinations.h, ADR 005). Names are
      // unique without regard to case (COLLATE NOCASE; they appear in URLs and audit targets).
      // retry_*: NULL = the config file's top-level retry value. match: a route's match as a
      // JSON object, '' = none.
      {6, R"sql(
CREATE TABLE api_destinations (
  id                      INTEGER PRIMARY KEY AUTOINCREMENT,
  name                    TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (name <> ''),
  ae_title                TEXT NOT NULL,
  host                    TEXT NOT NULL,
  port                    INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  calling_ae_title        TEXT NOT NULL DEFAULT '',
  tls_enabled             INTEGER NOT NULL DEFAULT 0 CHECK (tls_enabled IN (0, 1)),
  tls_cert_path           TEXT NOT NULL DEFAULT '',
  tls_key_path            TEXT NOT NULL DEFAULT '',
  tls_ca_path             TEXT NOT NULL DEFAULT '',
  verify_hostname         INTEGER NOT NULL DEFAULT 1 CHECK (verify_hostname IN (0, 1)),
  max_associations        INTEGER NOT NULL DEFAULT 2,
  tls_profile             TEXT NOT NULL DEFAULT 'bcp195-rfc8996',
  retry_max_attempts      INTEGER,
  retry_max_age_s         INTEGER,
  retry_initial_backoff_s INTEGER,
  retry_max_backoff_s     INTEGER,
  match                   TEXT NOT NULL DEFAULT '',
  created_at_ms           INTEGER NOT NULL DEFAULT 0,
  created_by              TEXT NOT NULL DEFAULT '',
  updated_at_ms           INTEGER NOT NULL DEFAULT 0,
  updated_by              TEXT NOT NULL DEFAULT ''
);
)sql"},
      {7, R"sql(
CREATE TABLE encryption_keys (
  version       INTEGER PRIMARY KEY CHECK (version > 0),
  check_value   TEXT NOT NULL UNIQUE,
  created_at_ms INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE patients ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN patient_id_enc BLOB;
ALTER TABLE patients ADD COLUMN patient_name_enc BLOB;
ALTER TABLE patients ADD COLUMN birth_date_enc BLOB;
ALTER TABLE patients ADD COLUMN sex_enc BLOB;
CREATE INDEX patients_key_version ON patients (key_version);
ALTER TABLE studies ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN accession_number_enc BLOB;
ALTER TABLE studies ADD COLUMN referring_physician_enc BLOB;
CREATE INDEX studies_key_version ON studies (key_version);
)sql"},
      // One flush for a file and its row (ADR 012): a new instance committed before the syncfs
      // that makes it and its file durable has a marker here until that flush is confirmed.
      // AUTOINCREMENT: marker ids never go back, so "cleared through id N" stays true.
      {8, R"sql(
CREATE TABLE ingest_unconfirmed (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_pk INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE
);
CREATE INDEX ingest_unconfirmed_instance ON ingest_unconfirmed (instance_pk);
)sql"},
      {9, R"sql(
ALTER TABLE api_destinations ADD COLUMN max_async_operations INTEGER NOT NULL DEFAULT 1;
)sql"},
      // An operator's retry restarts the retry.max_age clock of a row (0: never retried: it
      // counts from created_at_ms). created_at_ms stays when it was queued.
      {10, R"sql(
ALTER TABLE outbox ADD COLUMN retried_at_ms INTEGER NOT NULL DEFAULT 0;
)sql"},
  };
  return kMigrations;
}

}  // namespace gw::index
