// The index contract, instances: insert with the duplicate policies, group insert, study /
// series / instance queries, concurrency, reopen. Ported from tests/unit/index/
// sqlite_index_test.cpp; runs on SQLite and on PostgreSQL (index_contract.h).
#include <atomic>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "index_contract.h"

namespace gw::index {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;

/// A record with every field set to a distinct value (no patient data: all synthetic).
InstanceRecord make_record(const std::string& sop, const std::string& series,
                           const std::string& study, std::int64_t received_at_ms = 1000) {
  InstanceRecord r;
  r.sop_instance_uid = sop;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.instance_number = "7";
  r.size_bytes = 1234;
  r.storage_path = "storage/ab/" + sop + ".dcm";
  r.digest = "xxh128:99aa06d3014798d86001c324468d497f";
  r.received_at_ms = received_at_ms;
  r.calling_ae = "CT1";
  r.called_ae = "DICOM_GW";
  r.peer_address = "127.0.0.1:40000";
  r.series_instance_uid = series;
  r.modality = "CT";
  r.series_description = "Axial 5mm";
  r.series_number = "3";
  r.body_part_examined = "CHEST";
  r.study_instance_uid = study;
  r.study_date = "20240115";
  r.study_time = "101500";
  r.study_description = "CT Chest";
  r.accession_number = "ACC-" + study;
  r.study_id = "S1";
  r.referring_physician = "REF^DOCTOR";
  r.patient_id = "PID-TEST-1";
  r.patient_name = "TEST^PATIENT";
  r.patient_birth_date = "19700101";
  r.patient_sex = "O";
  r.station_name = "STATION1";
  r.institution_name = "Test Institution";
  return r;
}

/// A StudyQuery with the given text fields set (GCC warns on partial designated initializers).
StudyQuery query(std::initializer_list<std::pair<std::string StudyQuery::*, std::string>> fields,
                 std::int64_t limit = 100, std::int64_t offset = 0) {
  StudyQuery q;
  for (const auto& [field, value] : fields) q.*field = value;
  q.limit = limit;
  q.offset = offset;
  return q;
}

class IndexInstances : public IndexContract {
 protected:
  void insert(const InstanceRecord& r) {
    auto result = index_->insert_instance(r, DuplicatePolicy::kKeepFirst);
    ASSERT_TRUE(result.ok()) << result.error().message;
    ASSERT_EQ(result->outcome, InsertOutcome::kInserted);
  }

  std::vector<std::string> study_uids(const StudyQuery& q) {
    auto studies = index_->list_studies(q);
    EXPECT_TRUE(studies.ok()) << (studies.ok() ? "" : studies.error().message);
    std::vector<std::string> out;
    if (studies.ok()) {
      for (const auto& s : *studies) out.push_back(s.study_instance_uid);
    }
    return out;
  }
};

INSTANTIATE_INDEX_CONTRACT(IndexInstances);

TEST_P(IndexInstances, MigratesFromScratch) {
  auto version = index_->schema_version();
  ASSERT_TRUE(version.ok()) << version.error().message;
  EXPECT_GE(*version, 1);
  EXPECT_EQ(*index_->count_instances(), 0);
  // Opening again finds nothing to do and the same version.
  auto again = open();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(*again->schema_version(), *version);
}

TEST_P(IndexInstances, InsertAndFindRoundTripEveryField) {
  auto r = make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000");
  insert(r);
  auto found = index_->find_instance(r.sop_instance_uid);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, r);
  EXPECT_EQ(*index_->count_instances(), 1);

  auto missing = index_->find_instance("9.9.9");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  // Non-ASCII text survives as UTF-8 bytes.
  auto u = make_record("1.2.3.2", "1.2.3.100", "1.2.3.1000");
  u.institution_name =
      "Klinik \xC3\x9C"
      "berlingen";
  insert(u);
  EXPECT_EQ((*index_->find_instance("1.2.3.2"))->institution_name, u.institution_name);
}

TEST_P(IndexInstances, RejectsRecordsWithoutKeys) {
  auto r = make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000");
  r.storage_path.clear();
  auto result = index_->insert_instance(r, DuplicatePolicy::kKeepFirst);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IndexInstances, DuplicateKeepFirst) {
  auto first = make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000");
  insert(first);
  auto second = first;
  second.storage_path = "storage/cd/second.dcm";
  second.size_bytes = 99;
  auto result = index_->insert_instance(second, DuplicatePolicy::kKeepFirst);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->outcome, InsertOutcome::kDuplicateKept);
  EXPECT_EQ(result->replaced_path, second.storage_path) << "the caller removes the new file";
  EXPECT_EQ(**index_->find_instance(first.sop_instance_uid), first);
  EXPECT_EQ(*index_->count_instances(), 1);

  // Re-inserting the very same file must never tell the caller to delete it.
  auto same = index_->insert_instance(first, DuplicatePolicy::kKeepFirst);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->outcome, InsertOutcome::kDuplicateKept);
  EXPECT_EQ(same->replaced_path, "");
}

TEST_P(IndexInstances, DuplicateOverwrite) {
  auto first = make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000");
  insert(first);
  auto second = make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000", 2000);
  second.storage_path = "storage/cd/second.dcm";
  second.size_bytes = 99;
  second.calling_ae = "CT2";
  auto result = index_->insert_instance(second, DuplicatePolicy::kOverwrite);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->outcome, InsertOutcome::kReplaced);
  EXPECT_EQ(result->replaced_path, first.storage_path) << "the caller removes the old file";
  EXPECT_EQ(**index_->find_instance(first.sop_instance_uid), second);
  EXPECT_EQ(*index_->count_instances(), 1);

  auto study = index_->find_study(first.study_instance_uid);
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->instance_count, 1);
  EXPECT_EQ((*study)->size_bytes, 99);
  EXPECT_EQ((*study)->last_received_at_ms, 2000);
}

/// Later instances of a known study: a changed value is taken at once; the study's
/// last_received_at may lag by under a second (SQLite skips rewriting an unchanged row within a
/// second of its last update) but never goes backwards, and a second later it is exact.
TEST_P(IndexInstances, LaterInstancesUpdateTheStudyAndSeries) {
  insert(make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000", 1000));
  insert(make_record("1.2.3.2", "1.2.3.100", "1.2.3.1000", 1500));
  auto study = index_->find_study("1.2.3.1000");
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_GE((*study)->last_received_at_ms, 1000);
  EXPECT_LE((*study)->last_received_at_ms, 1500);
  EXPECT_EQ((*study)->instance_count, 2);

  auto changed = make_record("1.2.3.3", "1.2.3.100", "1.2.3.1000", 1600);
  changed.study_description = "CT Chest with contrast";
  changed.series_description = "Axial 1mm";
  insert(changed);
  study = index_->find_study("1.2.3.1000");
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->study_description, "CT Chest with contrast");
  EXPECT_EQ((*study)->series_count, 1);
  EXPECT_GE((*study)->last_received_at_ms, 1000);
  EXPECT_LE((*study)->last_received_at_ms, 1600);

  insert(make_record("1.2.3.4", "1.2.3.100", "1.2.3.1000", 2700));
  study = index_->find_study("1.2.3.1000");
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->last_received_at_ms, 2700);
  EXPECT_EQ((*study)->instance_count, 4);
  // Every instance hangs off the same series row, which holds the latest non-empty values.
  for (const char* sop : {"1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"}) {
    auto found = index_->find_instance(sop);
    ASSERT_TRUE(found.ok() && found->has_value()) << sop;
    EXPECT_EQ((*found)->series_instance_uid, "1.2.3.100");
    EXPECT_EQ((*found)->series_description, "Axial 5mm") << sop;
  }
}

TEST_P(IndexInstances, DuplicateRejectWritesNothing) {
  auto first = make_record("1.2.3.1", "1.2.3.100", "1.2.3.1000");
  insert(first);
  auto second = make_record("1.2.3.1", "1.2.3.200", "1.2.3.2000");
  second.storage_path = "storage/cd/second.dcm";
  auto result = index_->insert_instance(second, DuplicatePolicy::kReject);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(**index_->find_instance(first.sop_instance_uid), first);
  // The new record's study was not created either.
  EXPECT_FALSE(index_->find_study("1.2.3.2000")->has_value());
  EXPECT_EQ(study_uids({}).size(), 1u);
}

TEST_P(IndexInstances, StudySummaryAggregates) {
  auto a = make_record("1.1", "1.2.3.100", "1.2.3.1000", 1000);
  auto b = make_record("1.2", "1.2.3.100", "1.2.3.1000", 3000);
  auto c = make_record("1.3", "1.2.3.101", "1.2.3.1000", 2000);
  c.modality = "SR";
  c.size_bytes = 10;
  auto d = make_record("1.4", "1.2.3.102", "1.2.3.1000", 2500);
  d.modality = "CT";
  for (const auto& r : {a, b, c, d}) insert(r);

  auto study = index_->find_study("1.2.3.1000");
  ASSERT_TRUE(study.ok()) << study.error().message;
  ASSERT_TRUE(study->has_value());
  const StudySummary& s = **study;
  EXPECT_EQ(s.study_instance_uid, "1.2.3.1000");
  EXPECT_EQ(s.study_date, "20240115");
  EXPECT_EQ(s.study_time, "101500");
  EXPECT_EQ(s.study_description, "CT Chest");
  EXPECT_EQ(s.accession_number, "ACC-1.2.3.1000");
  EXPECT_EQ(s.patient_id, "PID-TEST-1");
  EXPECT_EQ(s.patient_name, "TEST^PATIENT");
  EXPECT_EQ(s.modalities, "CT\\SR");
  EXPECT_EQ(s.series_count, 3);
  EXPECT_EQ(s.instance_count, 4);
  EXPECT_EQ(s.size_bytes, 1234 * 3 + 10);
  EXPECT_EQ(s.last_received_at_ms, 3000);

  EXPECT_FALSE(index_->find_study("no.such.study")->has_value());
}

TEST_P(IndexInstances, ListStudiesFilters) {
  struct Spec {
    std::string study, patient_id, patient_name, accession, modality, date;
    std::int64_t received;
  };
  const std::vector<Spec> specs = {
      {"9.1", "PID-A1", "ALPHA^ONE", "ACC100", "CT", "20240101", 1000},
      {"9.2", "PID-A2", "ALPHA^TWO", "ACC101", "MR", "20240215", 2000},
      {"9.3", "PID-B1", "BETA^ONE", "ACC200", "CT", "20240320", 3000},
      {"9.4", "PID-A1", "ALPHA^ONE", "XYZ", "US", "", 4000},
      {"9.5", "PID-A10", "ALPHABET", "ACC1", "SR", "20231231", 5000},
  };
  int n = 0;
  for (const auto& sp : specs) {
    auto r = make_record("2." + std::to_string(++n), sp.study + ".1", sp.study, sp.received);
    r.patient_id = sp.patient_id;
    r.patient_name = sp.patient_name;
    r.accession_number = sp.accession;
    r.modality = sp.modality;
    r.study_date = sp.date;
    insert(r);
  }
  using V = std::vector<std::string>;
  using Q = StudyQuery;
  // No filter: all, newest first.
  EXPECT_EQ(study_uids({}), (V{"9.5", "9.4", "9.3", "9.2", "9.1"}));
  // Exact matches.
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "PID-A1"}})), (V{"9.4", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::patient_name, "BETA^ONE"}})), (V{"9.3"}));
  EXPECT_EQ(study_uids(query({{&Q::accession_number, "ACC1"}})), (V{"9.5"}));
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "PID-A"}})), V{});
  // Prefix matches with a trailing '*'.
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "PID-A1*"}})), (V{"9.5", "9.4", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::patient_name, "ALPHA^*"}})), (V{"9.4", "9.2", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::accession_number, "ACC10*"}})), (V{"9.2", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "*"}})).size(), 5u);
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "PID-A1*"}, {&Q::patient_name, "ALPHA^ONE"}})),
            (V{"9.4", "9.1"}));
  // '%' and '_' are literal characters, not wildcards.
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "PID_A*"}})), V{});
  EXPECT_EQ(study_uids(query({{&Q::patient_id, "%"}})), V{});
  // Modality: exact and prefix.
  EXPECT_EQ(study_uids(query({{&Q::modality, "CT"}})), (V{"9.3", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::modality, "S*"}})), (V{"9.5"}));
  // Date range, inclusive; undated studies never match a date filter.
  EXPECT_EQ(study_uids(query({{&Q::study_date_from, "20240101"}, {&Q::study_date_to, "20240215"}})),
            (V{"9.2", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::study_date_from, "20240201"}})), (V{"9.3", "9.2"}));
  EXPECT_EQ(study_uids(query({{&Q::study_date_to, "20240101"}})), (V{"9.5", "9.1"}));
  EXPECT_EQ(study_uids(query({{&Q::modality, "CT"}, {&Q::study_date_from, "20240301"}})),
            (V{"9.3"}));
  // Paging.
  EXPECT_EQ(study_uids(query({}, 2)), (V{"9.5", "9.4"}));
  EXPECT_EQ(study_uids(query({}, 2, 2)), (V{"9.3", "9.2"}));
  EXPECT_EQ(study_uids(query({}, 2, 4)), (V{"9.1"}));
  EXPECT_EQ(study_uids(query({}, 2, 10)), V{});
  EXPECT_EQ(study_uids(query({}, 0)), V{});
  auto bad = index_->list_studies(query({}, -1));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(IndexInstances, ListSeriesAndInstances) {
  for (int i = 1; i <= 12; ++i) {
    auto r = make_record("3." + std::to_string(i), "3.100", "3.1000", 1000 + i);
    r.instance_number = std::to_string(13 - i);  // numeric order, not text order
    insert(r);
  }
  for (int i = 1; i <= 3; ++i) {
    auto r = make_record("4." + std::to_string(i), "3.101", "3.1000");
    r.series_number = "10";
    r.modality = "SR";
    r.size_bytes = 5;
    insert(r);
  }
  insert(make_record("5.1", "5.100", "5.1000"));  // another study

  auto series = index_->list_series("3.1000");
  ASSERT_TRUE(series.ok()) << series.error().message;
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ((*series)[0].series_instance_uid, "3.100");
  EXPECT_EQ((*series)[0].study_instance_uid, "3.1000");
  EXPECT_EQ((*series)[0].modality, "CT");
  EXPECT_EQ((*series)[0].series_number, "3");
  EXPECT_EQ((*series)[0].series_description, "Axial 5mm");
  EXPECT_EQ((*series)[0].instance_count, 12);
  EXPECT_EQ((*series)[0].size_bytes, 12 * 1234);
  EXPECT_EQ((*series)[1].series_instance_uid, "3.101");
  EXPECT_EQ((*series)[1].instance_count, 3);
  EXPECT_EQ((*series)[1].size_bytes, 15);
  EXPECT_TRUE(index_->list_series("no.such.study")->empty());

  auto all = index_->list_instances("3.100", 100, 0);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 12u);
  for (std::size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].instance_number, std::to_string(i + 1));
  }
  auto page = index_->list_instances("3.100", 5, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].instance_number, "11");
  EXPECT_EQ((*page)[0], **index_->find_instance((*page)[0].sop_instance_uid));
  EXPECT_EQ(index_->list_instances("3.101", 100, 0)->size(), 3u);
  EXPECT_TRUE(index_->list_instances("no.such.series", 100, 0)->empty());
  EXPECT_FALSE(index_->list_instances("3.100", -1, 0).ok());
  EXPECT_EQ(*index_->count_instances(), 16);
}

TEST_P(IndexInstances, LaterInstancesFillButDoNotBlankStudyFields) {
  auto a = make_record("6.1", "6.100", "6.1000");
  a.study_description.clear();
  insert(a);
  auto b = make_record("6.2", "6.100", "6.1000", 2000);
  b.accession_number.clear();  // absent in the second instance: keep the first value
  insert(b);
  auto study = **index_->find_study("6.1000");
  EXPECT_EQ(study.study_description, "CT Chest");
  EXPECT_EQ(study.accession_number, "ACC-6.1000");
}

TEST_P(IndexInstances, ConcurrentInsertsFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 125;
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          // Threads share studies and series so that upserts contend on the same rows.
          auto r = make_record("7." + std::to_string(t) + "." + std::to_string(i),
                               "7.100." + std::to_string(i % 5), "7.1000." + std::to_string(i % 2),
                               1000 + i);
          auto result = index_->insert_instance(r, DuplicatePolicy::kKeepFirst);
          if (!result.ok() || result->outcome != InsertOutcome::kInserted) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(*index_->count_instances(), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      auto found = index_->find_instance("7." + std::to_string(t) + "." + std::to_string(i));
      ASSERT_TRUE(found.ok() && found->has_value()) << t << "." << i;
    }
  }
  auto studies = index_->list_studies({});
  ASSERT_TRUE(studies.ok());
  ASSERT_EQ(studies->size(), 2u);
  EXPECT_EQ((*studies)[0].instance_count + (*studies)[1].instance_count, kThreads * kPerThread);
}

TEST_P(IndexInstances, DataSurvivesReopen) {
  auto r = make_record("8.1", "8.100", "8.1000");
  insert(r);
  index_.reset();
  index_ = open();
  ASSERT_NE(index_, nullptr);
  EXPECT_EQ(**index_->find_instance("8.1"), r);
  EXPECT_EQ(*index_->count_instances(), 1);
}

}  // namespace
}  // namespace gw::index
