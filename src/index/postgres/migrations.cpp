#include "index/postgres/migrations.h"

namespace gw::index {

const std::vector<PgMigration>& postgres_migrations() {
  // Version 1 is the whole schema the SQLite backend reached in its migrations 1-5 (instances,
  // outbox, users/tokens/audit, the content digest), in PostgreSQL's dialect:
  // - Text columns are NOT NULL DEFAULT '' so that "absent" has one spelling (the C++ side uses
  //   empty strings). Timestamps are Unix epoch milliseconds (BIGINT), as on SQLite.
  // - Columns that are filtered by range or sorted use COLLATE "C": byte order, the same on
  //   every server whatever its locale, and what the prefix filters (>= p AND < p') rely on.
  // - Ids are identities: never handed out again (a deleted user's id keeps meaning that user).
  // - PHI lives in these columns only: patients.patient_id, patient_name, birth_date, sex,
  //   studies.referring_physician and accession_number. The field-encryption migration turns
  //   exactly these into bytea ciphertext (pgp_sym_encrypt, hence pgcrypto here) with keyed
  //   hash columns for the searches; no other table copies them. Audit rows never hold them
  //   (index/auth.h); their details column is the other place that migration covers.
  // - The outbox is shared by every node on this database: claims lock rows with FOR UPDATE
  //   SKIP LOCKED and lease them (lease_owner, lease_expires_at_ms), so a node that dies hands
  //   its rows to the others when the lease expires (postgres_outbox.cpp).
  // - audit is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE from any session.
  //   The table's owner can still disable the trigger; the ATNA syslog export is the copy out
  //   of its reach.
  static const std::vector<PgMigration> kMigrations = {
      {1, R"sql(
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE patients (
  id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  patient_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
  patient_name  TEXT COLLATE "C" NOT NULL DEFAULT '',
  birth_date    TEXT NOT NULL DEFAULT '',
  sex           TEXT NOT NULL DEFAULT '',
  created_at_ms BIGINT NOT NULL DEFAULT 0,
  updated_at_ms BIGINT NOT NULL DEFAULT 0,
  UNIQUE (patient_id, patient_name)
);
CREATE INDEX patients_patient_name ON patients (patient_name);

CREATE TABLE studies (
  id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  study_instance_uid  TEXT NOT NULL UNIQUE,
  patient_pk          BIGINT NOT NULL REFERENCES patients (id),
  study_date          TEXT COLLATE "C" NOT NULL DEFAULT '',
  study_time          TEXT NOT NULL DEFAULT '',
  study_description   TEXT NOT NULL DEFAULT '',
  study_id            TEXT NOT NULL DEFAULT '',
  accession_number    TEXT COLLATE "C" NOT NULL DEFAULT '',
  referring_physician TEXT NOT NULL DEFAULT '',
  created_at_ms       BIGINT NOT NULL DEFAULT 0,
  updated_at_ms       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX studies_patient_pk ON studies (patient_pk);
CREATE INDEX studies_accession_number ON studies (accession_number);
CREATE INDEX studies_study_date ON studies (study_date);
CREATE INDEX studies_updated_at_ms ON studies (updated_at_ms, id);

CREATE TABLE series (
  id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  series_instance_uid TEXT NOT NULL UNIQUE,
  study_pk            BIGINT NOT NULL REFERENCES studies (id),
  modality            TEXT COLLATE "C" NOT NULL DEFAULT '',
  series_description  TEXT NOT NULL DEFAULT '',
  series_number       TEXT COLLATE "C" NOT NULL DEFAULT '',
  body_part_examined  TEXT NOT NULL DEFAULT '',
  created_at_ms       BIGINT NOT NULL DEFAULT 0,
  updated_at_ms       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX series_study_pk ON series (study_pk);
CREATE INDEX series_modality ON series (modality, study_pk);

CREATE TABLE instances (
  id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sop_instance_uid    TEXT NOT NULL UNIQUE,
  series_pk           BIGINT NOT NULL REFERENCES series (id),
  sop_class_uid       TEXT NOT NULL DEFAULT '',
  transfer_syntax_uid TEXT NOT NULL DEFAULT '',
  instance_number     TEXT COLLATE "C" NOT NULL DEFAULT '',
  size_bytes          BIGINT NOT NULL DEFAULT 0,
  storage_path        TEXT NOT NULL,
  digest              TEXT NOT NULL DEFAULT '',
  received_at_ms      BIGINT NOT NULL DEFAULT 0,
  calling_ae          TEXT NOT NULL DEFAULT '',
  called_ae           TEXT NOT NULL DEFAULT '',
  peer_address        TEXT NOT NULL DEFAULT '',
  station_name        TEXT NOT NULL DEFAULT '',
  institution_name    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX instances_series_pk ON instances (series_pk);
CREATE INDEX instances_storage_path ON instances (storage_path);

CREATE TABLE outbox (
  id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance_pk         BIGINT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  destination         TEXT COLLATE "C" NOT NULL,
  state               TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'in_flight', 'delivered', 'dead')),
  attempts            INTEGER NOT NULL DEFAULT 0,
  created_at_ms       BIGINT NOT NULL DEFAULT 0,
  next_attempt_at_ms  BIGINT NOT NULL DEFAULT 0,
  updated_at_ms       BIGINT NOT NULL DEFAULT 0,
  lease_owner         TEXT NOT NULL DEFAULT '',
  lease_expires_at_ms BIGINT NOT NULL DEFAULT 0,
  last_status         INTEGER NOT NULL DEFAULT -1,
  last_error          TEXT NOT NULL DEFAULT '',
  warning             BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX outbox_queue ON outbox (destination, state, id);
CREATE INDEX outbox_state ON outbox (state, id);
CREATE INDEX outbox_pending_due ON outbox (destination, next_attempt_at_ms)
  WHERE state = 'pending';
CREATE INDEX outbox_lease ON outbox (lease_owner) WHERE state = 'in_flight';
CREATE INDEX outbox_instance ON outbox (instance_pk, destination, state);

CREATE TABLE users (
  id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  password_hash TEXT NOT NULL DEFAULT '',
  disabled      BOOLEAN NOT NULL DEFAULT false,
  created_at_ms BIGINT NOT NULL DEFAULT 0,
  updated_at_ms BIGINT NOT NULL DEFAULT 0
);
-- Unique without regard to case (names are ASCII, index/auth.h).
CREATE UNIQUE INDEX users_name ON users ((lower(name)));

-- user_id has no foreign key on purpose: delete_user revokes and keeps the tokens.
CREATE TABLE api_tokens (
  id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         BIGINT NOT NULL,
  token_hash      TEXT NOT NULL UNIQUE,
  description     TEXT NOT NULL DEFAULT '',
  created_at_ms   BIGINT NOT NULL DEFAULT 0,
  expires_at_ms   BIGINT NOT NULL DEFAULT 0,
  revoked_at_ms   BIGINT NOT NULL DEFAULT 0,
  last_used_at_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, id);

-- True for the text of a JSON object; false (not an error) for anything else.
CREATE FUNCTION gw_is_json_object(doc TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN json_typeof(doc::json) = 'object';
EXCEPTION WHEN invalid_text_representation THEN
  RETURN false;
END
$$;

CREATE TABLE audit (
  id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at_ms        BIGINT NOT NULL,
  actor        TEXT COLLATE "C" NOT NULL CHECK (actor <> ''),
  action       TEXT COLLATE "C" NOT NULL CHECK (action <> ''),
  target       TEXT NOT NULL DEFAULT '',
  outcome      TEXT NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'denied', 'failed')),
  peer_address TEXT NOT NULL DEFAULT '',
  details      TEXT NOT NULL DEFAULT '{}' CHECK (gw_is_json_object(details))
);
CREATE INDEX audit_at ON audit (at_ms, id);
CREATE INDEX audit_actor ON audit (actor, at_ms, id);
CREATE INDEX audit_action ON audit (action, at_ms, id);

CREATE FUNCTION gw_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit rows are append-only';
END
$$;
CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION gw_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION gw_audit_append_only();
)sql"},
      // Destinations created through the REST API (index/destinations.h, ADR 005), as SQLite's
      // migration 6. Names are unique without regard to case. retry_*: NULL = the config
      // file's top-level retry value. match: a route's match as a JSON object, '' = none.
      {2, R"sql(
CREATE TABLE api_destinations (
  id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                    TEXT NOT NULL CHECK (name <> ''),
  ae_title                TEXT NOT NULL,
  host                    TEXT NOT NULL,
  port                    INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  calling_ae_title        TEXT NOT NULL DEFAULT '',
  tls_enabled             BOOLEAN NOT NULL DEFAULT false,
  tls_cert_path           TEXT NOT NULL DEFAULT '',
  tls_key_path            TEXT NOT NULL DEFAULT '',
  tls_ca_path             TEXT NOT NULL DEFAULT '',
  verify_hostname         BOOLEAN NOT NULL DEFAULT true,
  max_associations        BIGINT NOT NULL DEFAULT 2,
  tls_profile             TEXT NOT NULL DEFAULT 'bcp195-rfc8996',
  retry_max_attempts      BIGINT,
  retry_max_age_s         BIGINT,
  retry_initial_backoff_s BIGINT,
  retry_max_backoff_s     BIGINT,
  match                   TEXT NOT NULL DEFAULT '',
  created_at_ms           BIGINT NOT NULL DEFAULT 0,
  created_by              TEXT NOT NULL DEFAULT '',
  updated_at_ms           BIGINT NOT NULL DEFAULT 0,
  updated_by              TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX api_destinations_name ON api_destinations ((lower(name)));
)sql"},
      {3, R"sql(
CREATE TABLE encryption_keys (
  version       INTEGER PRIMARY KEY CHECK (version > 0),
  check_value   TEXT NOT NULL UNIQUE,
  created_at_ms BIGINT NOT NULL DEFAULT 0
);
ALTER TABLE patients ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN patient_id_enc BYTEA, ADD COLUMN patient_name_enc BYTEA,
  ADD COLUMN birth_date_enc BYTEA, ADD COLUMN sex_enc BYTEA;
CREATE INDEX patients_key_version ON patients (key_version);
ALTER TABLE studies ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN accession_number_enc BYTEA, ADD COLUMN referring_physician_enc BYTEA;
CREATE INDEX studies_key_version ON studies (key_version);
)sql"},
      {4, R"sql(
ALTER TABLE api_destinations ADD COLUMN max_async_operations BIGINT NOT NULL DEFAULT 1;
)sql"},
      // SQLite's migration 10: an operator's retry restarts the retry.max_age clock of a row.
      {5, R"sql(
ALTER TABLE outbox ADD COLUMN retried_at_ms BIGINT NOT NULL DEFAULT 0;
)sql"},
  };
  return kMigrations;
}

}  // namespace gw::index
