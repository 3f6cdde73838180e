// Encryption at rest of the index's patient data (ADR 010), on SQLite and on a real
// PostgreSQL: sealed values read back, exact search through keyed hashes, the key registry's
// refusals (wrong key, no key), rotation in batches, plaintext rows from before encryption, and
// what a stolen database shows (SQLite file bytes, pg_dump, pgp_sym_decrypt in plain SQL).

#include <fstream>
#include <iterator>
#include <sstream>

#include "e2e/index_contract.h"

namespace gw::index {
namespace {

using core::ErrorCode;

constexpr const char* kKeyA = "key-A-0123456789abcdefghijklmnopqrstuvwxyz";
constexpr const char* kKeyB = "key-B-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";

InstanceRecord record(int n, const std::string& patient = "DOE^JANE") {
  const std::string s = std::to_string(n);
  InstanceRecord r;
  r.sop_instance_uid = "1.2.826.0.1.3680043.10.1." + s;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.storage_path = "storage/ab/" + s + ".dcm";
  r.received_at_ms = 1000 + n;
  r.series_instance_uid = "1.2.826.0.1.3680043.10.2." + s;
  r.study_instance_uid = "1.2.826.0.1.3680043.10.3." + s;
  r.modality = "CT";
  r.accession_number = "ACCSECRET" + s;
  r.referring_physician = "REFERRER^SECRET";
  r.patient_id = "PIDSECRET-" + patient;
  r.patient_name = patient;
  r.patient_birth_date = "19700101";
  r.patient_sex = "F";
  return r;
}

crypto::Keyring keyring(const char* current, const char* previous = nullptr) {
  crypto::Keyring k;
  if (current != nullptr) k.current = crypto::MasterKey::from_secret(current).value();
  if (previous != nullptr) k.previous = crypto::MasterKey::from_secret(previous).value();
  return k;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class IndexEncryption : public IndexContract {
 protected:
  /// Reopens the index (a restart) with these keys; the error when they are refused.
  Result<std::shared_ptr<const crypto::Keyring>> reopen(crypto::Keyring keys) {
    index_.reset();
    index_ = open();
    return index_->use_keyring(std::move(keys));
  }

  void insert(const InstanceRecord& r) {
    auto result = index_->insert_instance(r, DuplicatePolicy::kKeepFirst);
    ASSERT_TRUE(result.ok()) << result.error().message;
  }

  std::int64_t rows_of_version(std::uint32_t version) {
    auto status = index_->encryption_status();
    EXPECT_TRUE(status.ok());
    for (const auto& [v, n] : status->rows_by_version) {
      if (v == version) return n;
    }
    return 0;
  }

  /// Everything a thief of the database sees, as text.
  std::string stolen_database() {
    if (postgres()) {
      auto dump = server_->pg_dump(database_);
      EXPECT_TRUE(dump.ok()) << dump.err;
      return dump.out;
    }
    index_.reset();  // checkpoints the WAL into the file
    std::string bytes = read_all(dir_.path() / "index.db");
    index_ = open();
    return bytes;
  }
};

TEST_P(IndexEncryption, WithoutAKeyValuesArePlaintextAsBefore) {
  auto ring = index_->use_keyring(keyring(nullptr));
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_TRUE((*ring)->empty());
  insert(record(1));
  auto found = index_->find_instance(record(1).sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->patient_name, "DOE^JANE");
  EXPECT_EQ(rows_of_version(0), 2);  // one patient, one study
  EXPECT_EQ(index_->encryption_status()->current_key_version, 0u);
  // Prefix search works on plaintext.
  StudyQuery q;
  q.patient_name = "DOE*";
  EXPECT_EQ(index_->list_studies(q)->size(), 1u);
}

TEST_P(IndexEncryption, SealedValuesReadBackAndAreSearchableExactly) {
  auto ring = index_->use_keyring(keyring(kKeyA));
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ((*ring)->current->version, 1u);
  const auto r = record(1);
  insert(r);
  auto found = index_->find_instance(r.sop_instance_uid);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, r);  // every field, PHI included, as inserted

  StudyQuery q;
  q.patient_id = r.patient_id;
  auto by_id = index_->list_studies(q);
  ASSERT_TRUE(by_id.ok()) << by_id.error().message;
  ASSERT_EQ(by_id->size(), 1u);
  EXPECT_EQ(by_id->front().patient_name, "DOE^JANE");
  EXPECT_EQ(by_id->front().accession_number, r.accession_number);
  q = {};
  q.patient_name = "DOE^JANE";
  EXPECT_EQ(index_->list_studies(q)->size(), 1u);
  q = {};
  q.accession_number = r.accession_number;
  EXPECT_EQ(index_->list_studies(q)->size(), 1u);
  q = {};
  q.patient_name = "DOE^JAN";
  EXPECT_TRUE(index_->list_studies(q)->empty());
  // A prefix cannot be searched on a sealed column: a clear error, not a silent empty list.
  q = {};
  q.patient_name = "DOE*";
  auto prefix = index_->list_studies(q);
  ASSERT_FALSE(prefix.ok());
  EXPECT_EQ(prefix.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(prefix.error().message.find("encrypted"), std::string::npos);

  auto study = index_->find_study(r.study_instance_uid);
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->patient_id, r.patient_id);
  EXPECT_EQ(rows_of_version(1), 2);
}

TEST_P(IndexEncryption, AStolenDatabaseShowsNoPatientData) {
  ASSERT_TRUE(index_->use_keyring(keyring(kKeyA)).ok());
  for (int i = 1; i <= 3; ++i) insert(record(i, "SMITH^JOHN" + std::to_string(i)));
  const std::string dump = stolen_database();
  ASSERT_FALSE(dump.empty());
  for (const char* secret :
       {"SMITH^JOHN", "PIDSECRET", "ACCSECRET", "REFERRER^SECRET", "19700101"}) {
    EXPECT_EQ(dump.find(secret), std::string::npos) << secret;
  }
  EXPECT_EQ(dump.find(kKeyA), std::string::npos);
  if (postgres()) {
    // The operator's way (seed 004): plain SQL with pgcrypto and the key.
    auto names =
        server_->psql(database_, std::string("SELECT pgp_sym_decrypt(patient_name_enc, '") + kKeyA +
                                     "') FROM patients ORDER BY id");
    ASSERT_TRUE(names.ok()) << names.err;
    EXPECT_EQ(names.out, "SMITH^JOHN1\nSMITH^JOHN2\nSMITH^JOHN3\n");
    auto ids = server_->psql(database_, std::string("SELECT pgp_sym_decrypt(patient_id_enc, '") +
                                            kKeyA + "') FROM patients ORDER BY id LIMIT 1");
    ASSERT_TRUE(ids.ok()) << ids.err;
    EXPECT_EQ(ids.out, "PIDSECRET-SMITH^JOHN1\n");
    // And the other way: a value pgcrypto sealed (its defaults: iterated S2K, AES-128, partial
    // lengths) is read by the gateway, e.g. after seed 004's rotation by SQL.
    auto sealed_by_sql = server_->psql(
        database_, std::string("UPDATE patients SET patient_name_enc = pgp_sym_encrypt("
                               "'SQL^SEALED', '") +
                       kKeyA + "') WHERE id = (SELECT min(id) FROM patients)");
    ASSERT_TRUE(sealed_by_sql.ok()) << sealed_by_sql.err;
    auto read_back = index_->find_instance(record(1).sop_instance_uid);
    ASSERT_TRUE(read_back.ok()) << read_back.error().message;
    EXPECT_EQ((*read_back)->patient_name, "SQL^SEALED");
    auto wrong = server_->psql(database_, std::string("SELECT pgp_sym_decrypt(patient_id_enc, '") +
                                              kKeyB + "') FROM patients LIMIT 1");
    EXPECT_FALSE(wrong.ok());
  }
}

TEST_P(IndexEncryption, NewValuesMergeWithSealedOnes) {
  ASSERT_TRUE(index_->use_keyring(keyring(kKeyA)).ok());
  insert(record(1));
  auto second = record(2);
  second.study_instance_uid = record(1).study_instance_uid;  // same study, same patient
  second.patient_birth_date.clear();                         // not sent this time
  second.patient_sex = "O";                                  // corrected
  second.accession_number.clear();
  insert(second);
  auto found = index_->find_instance(second.sop_instance_uid);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->patient_birth_date, "19700101");
  EXPECT_EQ((*found)->patient_sex, "O");
  EXPECT_EQ((*found)->accession_number, record(1).accession_number);
  EXPECT_EQ(rows_of_version(1), 2);  // still one patient and one study
}

TEST_P(IndexEncryption, AWrongKeyOrNoKeyIsRefusedAtStart) {
  ASSERT_TRUE(index_->use_keyring(keyring(kKeyA)).ok());
  insert(record(1));
  auto wrong = reopen(keyring(kKeyB));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kConfig);
  EXPECT_NE(wrong.error().message.find("wrong encryption key"), std::string::npos);
  EXPECT_EQ(wrong.error().message.find(kKeyB), std::string::npos);
  auto none = reopen(keyring(nullptr));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no encryption key is configured"), std::string::npos);
  auto unknown_previous = reopen(keyring(kKeyA, kKeyB));
  ASSERT_FALSE(unknown_previous.ok());
  EXPECT_NE(unknown_previous.error().message.find("previous"), std::string::npos);
  // The right key still works after all that.
  auto right = reopen(keyring(kKeyA));
  ASSERT_TRUE(right.ok()) << right.error().message;
  EXPECT_EQ((*index_->find_instance(record(1).sop_instance_uid))->patient_name, "DOE^JANE");
}

TEST_P(IndexEncryption, RotationInBatchesLeavesOnlyTheNewKey) {
  ASSERT_TRUE(index_->use_keyring(keyring(kKeyA)).ok());
  for (int i = 1; i <= 7; ++i) insert(record(i, "PATIENT^" + std::to_string(i)));
  // The new key with the old one as previous: version 2, and everything still reads.
  auto ring = reopen(keyring(kKeyB, kKeyA));
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ((*ring)->current->version, 2u);
  EXPECT_EQ((*ring)->previous->version, 1u);
  EXPECT_EQ((*index_->find_instance(record(3).sop_instance_uid))->patient_name, "PATIENT^3");
  // Searching finds rows of both keys.
  insert(record(8, "PATIENT^8"));
  StudyQuery q;
  q.patient_name = "PATIENT^3";
  EXPECT_EQ(index_->list_studies(q)->size(), 1u);
  q.patient_name = "PATIENT^8";
  EXPECT_EQ(index_->list_studies(q)->size(), 1u);
  // One batch, then "the process dies": a new index object carries on.
  auto first = index_->reencrypt_batch(3);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, 3);
  ASSERT_TRUE(reopen(keyring(kKeyB, kKeyA)).ok());
  std::int64_t total = *first;
  for (int i = 0; i < 20; ++i) {
    auto n = index_->reencrypt_batch(3);
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    total += *n;
  }
  EXPECT_EQ(total, 14);  // 7 patients and 7 studies of key 1; the 8th was sealed with key 2
  EXPECT_EQ(rows_of_version(1), 0);
  EXPECT_EQ(rows_of_version(2), 16);
  // The old key is no longer needed; alone it is now a wrong key.
  ASSERT_TRUE(reopen(keyring(kKeyB)).ok());
  for (int i = 1; i <= 8; ++i) {
    auto found = index_->find_instance(record(i).sop_instance_uid);
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ((*found)->patient_name, "PATIENT^" + std::to_string(i));
    EXPECT_EQ((*found)->accession_number, record(i).accession_number);
  }
  q.patient_name = "PATIENT^3";
  EXPECT_EQ(index_->list_studies(q)->size(), 1u);
  EXPECT_FALSE(reopen(keyring(kKeyA)).ok());
  if (postgres()) {
    auto names = server_->psql(database_, std::string("SELECT count(*) FROM patients WHERE "
                                                      "pgp_sym_decrypt(patient_name_enc, '") +
                                              kKeyB + "') LIKE 'PATIENT^%'");
    ASSERT_TRUE(names.ok()) << names.err;
    EXPECT_EQ(names.out, "8\n");
  }
}

TEST_P(IndexEncryption, PlaintextRowsFromBeforeAreReadAndEncryptedByRotation) {
  insert(record(1));  // no key yet
  ASSERT_TRUE(reopen(keyring(kKeyA)).ok());
  insert(record(2));  // the same patient: its row is found and re-sealed with the key
  EXPECT_EQ(rows_of_version(0), 1);  // the first study
  EXPECT_EQ(rows_of_version(1), 2);  // the patient and the second study
  // Both are found by exact search, and the same patient is one row.
  StudyQuery q;
  q.patient_id = record(1).patient_id;
  EXPECT_EQ(index_->list_studies(q)->size(), 2u);
  for (int i = 0; i < 5 && *index_->reencrypt_batch(10) > 0; ++i) {
  }
  EXPECT_EQ(rows_of_version(0), 0);
  EXPECT_EQ((*index_->find_instance(record(1).sop_instance_uid))->patient_name, "DOE^JANE");
  EXPECT_EQ(index_->list_studies(q)->size(), 2u);
}

INSTANTIATE_INDEX_CONTRACT(IndexEncryption);

}  // namespace
}  // namespace gw::index
