#pragma once
/// How the index keeps patient data (ADR 010): the columns that hold PHI are sealed with the
/// current master key, each row records the key version that sealed it (0 = plaintext, from
/// before encryption was turned on), and the searchable ones keep a keyed hash in their clear
/// column so exact search and uniqueness still work. One codec for both backends; only the
/// cipher differs (AES-256-GCM on SQLite, OpenPGP messages pgcrypto can read on PostgreSQL).
///
/// A PhiCodec is immutable: a keyring reload makes a new one.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "crypto/keyring.h"

namespace gw::index {

struct InstanceRecord;  // index/index.h

using core::Result;
using Blob = std::vector<std::uint8_t>;

enum class CipherFormat {
  kAesGcm,   ///< SQLite: nonce ‖ ciphertext ‖ tag, AAD "table.column"
  kOpenPgp,  ///< PostgreSQL: what pgp_sym_decrypt(col, key) reads
};

/// One PHI column as stored: the clear column's text (the value itself at key version 0; a
/// keyed hash "h1:<hex>" for searchable columns, else '' when sealed) and the ciphertext
/// (nullopt = NULL: plaintext rows and empty values).
struct StoredField {
  std::string clear;
  std::optional<Blob> sealed;
};

struct PatientPhi {
  std::string patient_id;
  std::string patient_name;
  std::string birth_date;
  std::string sex;
  bool operator==(const PatientPhi&) const = default;
};

struct StoredPatient {
  std::uint32_t key_version = 0;
  StoredField patient_id;
  StoredField patient_name;
  StoredField birth_date;
  StoredField sex;
};

struct StudyPhi {
  std::string accession_number;
  std::string referring_physician;
  bool operator==(const StudyPhi&) const = default;
};

struct StoredStudy {
  std::uint32_t key_version = 0;
  StoredField accession_number;
  StoredField referring_physician;
};

/// Non-empty fields of `update` replace those of `base` (the index's coalesce rule).
PatientPhi merge(PatientPhi base, const PatientPhi& update);
StudyPhi merge(StudyPhi base, const StudyPhi& update);

/// The patient and study PHI a received instance carries.
PatientPhi patient_phi(const InstanceRecord& record);
StudyPhi study_phi(const InstanceRecord& record);

/// What an upsert writes into a patient or study row.
template <typename Stored>
struct PhiWrite {
  Stored row;
  /// false: `row` is the stored row as it was (same values, current key): no new ciphertext to
  /// write, only the row's timestamps to touch.
  bool changed = true;
};

class PhiCodec {
 public:
  /// `keyring` must have versions assigned (Index::use_keyring); an empty keyring stores
  /// plaintext, as before encryption existed.
  PhiCodec(CipherFormat format, std::shared_ptr<const crypto::Keyring> keyring);

  bool encrypting() const { return current_ != nullptr; }
  /// The version new values are sealed with; 0 when not encrypting.
  std::uint32_t current_version() const { return current_ ? current_->version : 0; }
  const crypto::Keyring& keyring() const { return *keyring_; }

  Result<StoredPatient> seal(const PatientPhi& phi) const;
  /// A row under a key version newer than current_version() (another node was reloaded with a
  /// new key first, or turned encryption on first): kDatabase, retryable (DIMSE 0xA700), until
  /// this node is reloaded. An older version the keyring lacks: kConfig. A value that fails
  /// authentication: kDatabase.
  Result<PatientPhi> open(const StoredPatient& stored) const;
  Result<StoredStudy> seal(const StudyPhi& phi) const;
  Result<StudyPhi> open(const StoredStudy& stored) const;

  /// The index's upsert rule. A stored row (under any readable key version, or plaintext) is
  /// opened and merged with `update` (non-empty fields replace); the result is sealed with the
  /// current key, unless it equals the stored values and the row is already under the current
  /// key: then the row is kept as it is (`changed` false). No stored row: `update` sealed.
  Result<PhiWrite<StoredPatient>> upsert(const std::optional<StoredPatient>& stored,
                                         const PatientPhi& update) const;
  Result<PhiWrite<StoredStudy>> upsert(const std::optional<StoredStudy>& stored,
                                       const StudyPhi& update) const;
  /// `stored` opened and sealed again with the current key (key rotation).
  Result<StoredPatient> reseal(const StoredPatient& stored) const;
  Result<StoredStudy> reseal(const StoredStudy& stored) const;

  /// The (patient_id, patient_name) clear-column pairs under which this patient can be stored
  /// by a readable key version: current first, then previous, then plaintext.
  std::vector<std::pair<std::string, std::string>> patient_keys(
      std::string_view patient_id, std::string_view patient_name) const;
  /// Clear-column values that an exact search for `value` must match (same order). For a
  /// searchable column only (patient_id, patient_name, accession_number).
  std::vector<std::string> match_values(std::string_view value) const;
  /// A list filter on a sealed, searchable column while encrypting: nullopt for no condition
  /// ("" or "*"), else the values the column may hold (match_values: an IN list).
  /// kInvalidArgument for a prefix search ("Doe*"), naming the field (`column` may carry a
  /// table alias: "p.patient_id" is reported as "patient_id").
  Result<std::optional<std::vector<std::string>>> sealed_filter_values(
      std::string_view column, std::string_view value) const;

 private:
  Result<StoredField> seal_field(std::string_view column, std::string_view value,
                                 bool searchable) const;
  Result<std::string> open_field(std::string_view column, std::uint32_t version,
                                 const StoredField& field) const;
  std::string blind(const crypto::Key256& key, std::string_view value) const;

  CipherFormat format_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  const crypto::MasterKey* current_ = nullptr;
};

}  // namespace gw::index
