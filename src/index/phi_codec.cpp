#include "index/phi_codec.h"

#include <span>

#include "crypto/aead.h"
#include "crypto/openpgp_sym.h"
#include "index/index.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using core::make_error;

constexpr std::string_view kHashPrefix = "h1:";

void take_non_empty(std::string& base, const std::string& update) {
  if (!update.empty()) base = update;
}

std::span<const std::uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

/// PhiCodec::upsert for patients and studies alike.
template <typename Stored, typename Phi>
Result<PhiWrite<Stored>> upsert_row(const PhiCodec& codec, const std::optional<Stored>& stored,
                                    const Phi& update) {
  PhiWrite<Stored> out;
  if (!stored) {
    GW_ASSIGN_OR_RETURN(out.row, codec.seal(update));
    return out;
  }
  GW_ASSIGN_OR_RETURN(auto existing, codec.open(*stored));
  const Phi merged = merge(existing, update);
  if (merged == existing && stored->key_version == codec.current_version()) {
    out.row = *stored;  // unchanged: no new ciphertext
    out.changed = false;
    return out;
  }
  GW_ASSIGN_OR_RETURN(out.row, codec.seal(merged));
  return out;
}

template <typename Stored>
Result<Stored> reseal_row(const PhiCodec& codec, const Stored& stored) {
  GW_ASSIGN_OR_RETURN(auto phi, codec.open(stored));
  return codec.seal(phi);
}

}  // namespace

PatientPhi merge(PatientPhi base, const PatientPhi& update) {
  take_non_empty(base.patient_id, update.patient_id);
  take_non_empty(base.patient_name, update.patient_name);
  take_non_empty(base.birth_date, update.birth_date);
  take_non_empty(base.sex, update.sex);
  return base;
}

StudyPhi merge(StudyPhi base, const StudyPhi& update) {
  take_non_empty(base.accession_number, update.accession_number);
  take_non_empty(base.referring_physician, update.referring_physician);
  return base;
}

PatientPhi patient_phi(const InstanceRecord& record) {
  PatientPhi phi;
  phi.patient_id = record.patient_id;
  phi.patient_name = record.patient_name;
  phi.birth_date = record.patient_birth_date;
  phi.sex = record.patient_sex;
  return phi;
}

StudyPhi study_phi(const InstanceRecord& record) {
  StudyPhi phi;
  phi.accession_number = record.accession_number;
  phi.referring_physician = record.referring_physician;
  return phi;
}

PhiCodec::PhiCodec(CipherFormat format, std::shared_ptr<const crypto::Keyring> keyring)
    : format_(format), keyring_(std::move(keyring)) {
  if (!keyring_) keyring_ = std::make_shared<const crypto::Keyring>();
  if (keyring_->current) current_ = &*keyring_->current;
}

std::string PhiCodec::blind(const crypto::Key256& key, std::string_view value) const {
  return std::string(kHashPrefix) + crypto::hmac_sha256_hex(key, value);
}

Result<StoredField> PhiCodec::seal_field(std::string_view column, std::string_view value,
                                         bool searchable) const {
  StoredField out;
  if (current_ == nullptr) {
    out.clear = std::string(value);
    return out;
  }
  if (value.empty()) return out;  // '' and NULL: an absent value stays absent
  if (searchable) out.clear = blind(current_->derive(crypto::kBlindIndex), value);
  if (format_ == CipherFormat::kOpenPgp) {
    GW_ASSIGN_OR_RETURN(auto sealed, crypto::pgp_sym_encrypt(value, current_->secret()));
    out.sealed = std::move(sealed);
  } else {
    GW_ASSIGN_OR_RETURN(auto sealed, crypto::aes256gcm_seal(current_->derive(crypto::kFieldAead),
                                                            bytes_of(value), column));
    out.sealed = std::move(sealed);
  }
  return out;
}

Result<std::string> PhiCodec::open_field(std::string_view column, std::uint32_t version,
                                         const StoredField& field) const {
  if (version == 0) return field.clear;  // stored before encryption was turned on
  if (!field.sealed) return std::string();
  const crypto::MasterKey* key = keyring_->find(version);
  if (key == nullptr && version > current_version()) {
    // A node-by-node key rollout: another node already writes with a newer key this one has
    // not been reloaded with yet. Retryable (kDatabase: DIMSE 0xA700, the sender tries again),
    // not a final failure; it ends when this node is reloaded with the new keys.
    return make_error(ErrorCode::kDatabase,
                      "index: a value is encrypted with key version " + std::to_string(version) +
                          ", which is not loaded on this node yet (a key rollout in progress: "
                          "reload this gateway with the new key as current and the old one as "
                          "previous); try again later");
  }
  if (key == nullptr) {
    return make_error(ErrorCode::kConfig,
                      "index: a value is encrypted with key version " + std::to_string(version) +
                          ", which is not configured (give it as the current or previous key)");
  }
  if (format_ == CipherFormat::kOpenPgp) {
    auto text = crypto::pgp_sym_decrypt(*field.sealed, key->secret());
    if (!text.ok()) {
      return make_error(ErrorCode::kDatabase, "index: cannot decrypt " + std::string(column) +
                                                  " (key version " + std::to_string(version) +
                                                  "): " + text.error().message);
    }
    return std::move(text).value();
  }
  auto plain = crypto::aes256gcm_open(key->derive(crypto::kFieldAead), *field.sealed, column);
  if (!plain.ok()) {
    return make_error(ErrorCode::kDatabase, "index: cannot decrypt " + std::string(column) +
                                                " (key version " + std::to_string(version) +
                                                "): " + plain.error().message);
  }
  return std::string(plain.value().begin(), plain.value().end());
}

Result<StoredPatient> PhiCodec::seal(const PatientPhi& phi) const {
  StoredPatient s;
  s.key_version = current_version();
  GW_ASSIGN_OR_RETURN(s.patient_id, seal_field("patients.patient_id", phi.patient_id, true));
  GW_ASSIGN_OR_RETURN(s.patient_name, seal_field("patients.patient_name", phi.patient_name, true));
  GW_ASSIGN_OR_RETURN(s.birth_date, seal_field("patients.birth_date", phi.birth_date, false));
  GW_ASSIGN_OR_RETURN(s.sex, seal_field("patients.sex", phi.sex, false));
  return s;
}

Result<PatientPhi> PhiCodec::open(const StoredPatient& s) const {
  PatientPhi phi;
  GW_ASSIGN_OR_RETURN(phi.patient_id,
                      open_field("patients.patient_id", s.key_version, s.patient_id));
  GW_ASSIGN_OR_RETURN(phi.patient_name,
                      open_field("patients.patient_name", s.key_version, s.patient_name));
  GW_ASSIGN_OR_RETURN(phi.birth_date,
                      open_field("patients.birth_date", s.key_version, s.birth_date));
  GW_ASSIGN_OR_RETURN(phi.sex, open_field("patients.sex", s.key_version, s.sex));
  return phi;
}

Result<StoredStudy> PhiCodec::seal(const StudyPhi& phi) const {
  StoredStudy s;
  s.key_version = current_version();
  GW_ASSIGN_OR_RETURN(s.accession_number,
                      seal_field("studies.accession_number", phi.accession_number, true));
  GW_ASSIGN_OR_RETURN(s.referring_physician,
                      seal_field("studies.referring_physician", phi.referring_physician, false));
  return s;
}

Result<StudyPhi> PhiCodec::open(const StoredStudy& s) const {
  StudyPhi phi;
  GW_ASSIGN_OR_RETURN(phi.accession_number,
                      open_field("studies.accession_number", s.key_version, s.accession_number));
  GW_ASSIGN_OR_RETURN(phi.referring_physician, open_field("studies.referring_physician",
                                                          s.key_version, s.referring_physician));
  return phi;
}

Result<PhiWrite<StoredPatient>> PhiCodec::upsert(const std::optional<StoredPatient>& stored,
                                                 const PatientPhi& update) const {
  return upsert_row(*this, stored, update);
}

Result<PhiWrite<StoredStudy>> PhiCodec::upsert(const std::optional<StoredStudy>& stored,
                                               const StudyPhi& update) const {
  return upsert_row(*this, stored, update);
}

Result<StoredPatient> PhiCodec::reseal(const StoredPatient& stored) const {
  return reseal_row(*this, stored);
}

Result<StoredStudy> PhiCodec::reseal(const StoredStudy& stored) const {
  return reseal_row(*this, stored);
}

Result<std::optional<std::vector<std::string>>> PhiCodec::sealed_filter_values(
    std::string_view column, std::string_view value) const {
  using Values = std::optional<std::vector<std::string>>;
  if (value.empty() || value == "*") return Values();  // no condition: everything matches
  if (value.back() == '*') {
    column.remove_prefix(column.find('.') + 1);  // "p.patient_id" -> "patient_id"
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            std::string(column) +
                                ": prefix search is not available on an encrypted field; search "
                                "the exact value");
  }
  return Values(match_values(value));
}

std::vector<std::string> PhiCodec::match_values(std::string_view value) const {
  std::vector<std::string> out;
  if (value.empty()) {
    out.emplace_back();
    return out;
  }
  if (keyring_->current)
    out.push_back(blind(keyring_->current->derive(crypto::kBlindIndex), value));
  if (keyring_->previous) {
    out.push_back(blind(keyring_->previous->derive(crypto::kBlindIndex), value));
  }
  out.emplace_back(value);  // rows from before encryption was turned on
  return out;
}

std::vector<std::pair<std::string, std::string>> PhiCodec::patient_keys(
    std::string_view patient_id, std::string_view patient_name) const {
  const auto ids = match_values(patient_id);
  const auto names = match_values(patient_name);
  std::vector<std::pair<std::string, std::string>> out;
  // match_values gives one entry per version (or a single '' for an empty value, which is the
  // same under every version); pair them version by version.
  const std::size_t n = std::max(ids.size(), names.size());
  for (std::size_t i = 0; i < n; ++i) {
    out.emplace_back(ids[std::min(i, ids.size() - 1)], names[std::min(i, names.size() - 1)]);
  }
  return out;
}

}  // namespace gw::index
