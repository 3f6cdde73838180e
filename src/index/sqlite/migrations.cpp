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
  };
  return kMigrations;
}

}  // namespace gw::index
