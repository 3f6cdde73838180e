// What the PostgreSQL backend's sessions and transactions must get right, on a real PostgreSQL:
// a COMMIT the server answered with ROLLBACK is a failure; a connection lost during COMMIT is
// kOutcomeUnknown (the caller keeps the file); keepalive defaults a URL may override; bytea read
// back whatever the database's bytea_output default is; a sealed study that a concurrent first
// insert created is merged with, not overwritten; and the gateway keeps the stored file when its
// commit's outcome is unknown (a row naming a removed file would be a lost instance).

#include <chrono>
#include <thread>

#include "e2e/index_contract.h"
#include "index/postgres/pg_connection.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/test_data.h"

namespace gw::index {
namespace {

using core::ErrorCode;
using namespace std::chrono_literals;

constexpr const char* kKey = "key-S-0123456789abcdefghijklmnopqrstuvwxyz";

InstanceRecord record(int n) {
  const std::string s = std::to_string(n);
  InstanceRecord r;
  r.sop_instance_uid = "1.2.826.0.1.3680043.10.11." + s;
  r.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  r.transfer_syntax_uid = "1.2.840.10008.1.2.1";
  r.storage_path = "storage/cd/" + s + ".dcm";
  r.received_at_ms = 1000 + n;
  r.series_instance_uid = "1.2.826.0.1.3680043.10.12." + s;
  r.study_instance_uid = "1.2.826.0.1.3680043.10.13." + s;
  r.modality = "CT";
  r.accession_number = "ACC" + s;
  r.referring_physician = "REFERRER^" + s;
  r.patient_id = "PID" + s;
  r.patient_name = "DOE^JANE";
  r.patient_birth_date = "19700101";
  r.patient_sex = "F";
  return r;
}

crypto::Keyring keyring(const char* secret) {
  crypto::Keyring k;
  k.current = crypto::MasterKey::from_secret(secret).value();
  return k;
}

class IndexPgSession : public ::testing::Test {
 protected:
  void SetUp() override { database_ = server_.create_database(); }

  Result<std::unique_ptr<Index>> open_index_on(const std::string& url) {
    OpenOptions options;
    options.url = url;
    options.pool_size = 2;
    return open_index(options);
  }

  std::unique_ptr<pg::PgConnection> connect(const std::string& url) {
    pg::ConnectOptions options;
    options.url = url;
    auto conn = pg::PgConnection::connect(options);
    EXPECT_TRUE(conn.ok()) << conn.error().message;
    return conn.ok() ? std::move(conn).value() : nullptr;
  }

  std::string psql(const std::string& sql) {
    auto result = server_.psql(database_, sql);
    EXPECT_TRUE(result.ok()) << result.err;
    return result.out;
  }

  /// At COMMIT, before the commit record, the backend that inserted an instance row ends
  /// itself: the client sees the connection break in answer to COMMIT, as when the network
  /// drops after the server committed.
  void die_at_commit() {
    psql(R"sql(
CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_terminate_backend(pg_backend_pid());
  PERFORM pg_sleep(5);
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON instances
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die_at_commit();
)sql");
  }

  test::PostgresServer& server_ = test::PostgresServer::shared();
  test::TempDir dir_{"gw-index-pg-session"};
  std::string database_;
};

TEST_F(IndexPgSession, ACommitAnsweredWithRollbackIsAFailure) {
  auto conn = connect(server_.url(database_));
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->exec_script("CREATE TABLE t (v integer)", "create").ok());
  {
    pg::Transaction tx(*conn);
    ASSERT_TRUE(tx.begin().ok());
    ASSERT_TRUE(conn->exec("INSERT INTO t VALUES (1)").ok());
    auto failed = conn->exec("SELECT 1 / (v - 1) FROM t");  // division by zero
    ASSERT_FALSE(failed.ok());
    EXPECT_TRUE(conn->transaction_failed());
    auto committed = tx.commit();
    ASSERT_FALSE(committed.ok());
    EXPECT_EQ(committed.error().code, ErrorCode::kDatabase);
    EXPECT_NE(committed.error().message.find("rolled"), std::string::npos)
        << committed.error().message;
  }
  auto rows = conn->exec("SELECT count(*) FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->int64(0, 0), 0);
  {
    pg::Transaction tx(*conn);
    ASSERT_TRUE(tx.begin().ok());
    ASSERT_TRUE(conn->exec("INSERT INTO t VALUES (2)").ok());
    EXPECT_TRUE(tx.commit().ok());
  }
}

TEST_F(IndexPgSession, AConnectionLostDuringCommitLeavesTheOutcomeUnknown) {
  auto opened = open_index_on(server_.url(database_));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  die_at_commit();
  auto inserted = index.insert_instance(record(1), DuplicatePolicy::kKeepFirst);
  ASSERT_FALSE(inserted.ok());
  EXPECT_EQ(inserted.error().code, ErrorCode::kOutcomeUnknown) << inserted.error().message;
  // The sender is told to try again (0xA7xx), not that the store failed for good.
  EXPECT_EQ(core::dimse_status(inserted.error().code) & 0xFF00, 0xA700);

  psql("DROP TRIGGER die_at_commit ON instances");
  // The pool reconnects; the resend is stored.
  Result<InsertResult> again = core::make_error(ErrorCode::kInternal, "not tried");
  for (int attempt = 0; attempt < 3 && !again.ok(); ++attempt) {
    again = index.insert_instance(record(1), DuplicatePolicy::kKeepFirst);
  }
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->outcome, InsertOutcome::kInserted);
}

TEST_F(IndexPgSession, TheGatewayKeepsTheFileWhenTheCommitOutcomeIsUnknown) {
  const auto files = test::generate_dicom(dir_.path() / "source", {"--count", "1", "--seed", "93"});
  ASSERT_EQ(files.size(), 1u);
  test::GatewayOptions o;
  o.extra_yaml = "database:\n  url: " + server_.url(database_) + "\n";
  auto gw = test::Gateway::start(o);
  die_at_commit();

  (void)test::run_storescu("127.0.0.1", gw->port(), files);  // answered 0xA7xx: not stored
  EXPECT_EQ(psql("SELECT count(*) FROM instances"), "0\n");
  // Had the server committed before the connection broke, its row would name this file.
  EXPECT_EQ(gw->storage_files().size(), 1u) << gw->log();

  psql("DROP TRIGGER die_at_commit ON instances");
  auto resent = test::run_storescu("127.0.0.1", gw->port(), files);
  EXPECT_TRUE(resent.ok()) << resent.out << resent.err;
  EXPECT_EQ(psql("SELECT count(*) FROM instances"), "1\n");
  // The row names a file that is there.
  auto path = psql("SELECT storage_path FROM instances");
  while (!path.empty() && path.back() == '\n') path.pop_back();
  ASSERT_FALSE(path.empty());
  EXPECT_TRUE(std::filesystem::exists(gw->data_dir() / path)) << path;
  EXPECT_EQ(gw->storage_files().size(), 2u);  // and the first one, which no row names
  // The run was marked unclean: the next start removes the file no row names.
  EXPECT_EQ(gw->stop(), 0);
  gw->restart();
  EXPECT_EQ(gw->storage_files().size(), 1u) << gw->log();
  EXPECT_TRUE(std::filesystem::exists(gw->data_dir() / path)) << path;
}

TEST_F(IndexPgSession, KeepaliveDefaultsTheUrlMayOverride) {
  auto conn = connect(server_.url(database_));
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->setting("keepalives"), "1");
  EXPECT_EQ(conn->setting("keepalives_idle"), "30");
  EXPECT_EQ(conn->setting("keepalives_interval"), "10");
  EXPECT_EQ(conn->setting("keepalives_count"), "3");
  EXPECT_EQ(conn->setting("tcp_user_timeout"), "30000");
  EXPECT_EQ(conn->setting("connect_timeout"), "10");

  auto tuned = connect(server_.url(database_) + "?keepalives_idle=7&tcp_user_timeout=9000");
  ASSERT_NE(tuned, nullptr);
  EXPECT_EQ(tuned->setting("keepalives_idle"), "7");
  EXPECT_EQ(tuned->setting("tcp_user_timeout"), "9000");
  EXPECT_EQ(tuned->setting("keepalives_count"), "3");
}

TEST_F(IndexPgSession, SealedValuesReadBackWhenTheDatabaseDefaultsToEscapeBytea) {
  psql("ALTER DATABASE " + database_ + " SET bytea_output = 'escape'");
  auto conn = connect(server_.url(database_));
  ASSERT_NE(conn, nullptr);
  auto shown = conn->exec("SELECT current_setting('bytea_output'), '\\x0102ff'::bytea");
  ASSERT_TRUE(shown.ok()) << shown.error().message;
  EXPECT_EQ(shown->text(0, 0), "hex");
  EXPECT_EQ(shown->bytea(0, 1), (std::vector<std::uint8_t>{1, 2, 0xff}));

  auto opened = open_index_on(server_.url(database_));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  ASSERT_TRUE(index.use_keyring(keyring(kKey)).ok());
  ASSERT_TRUE(index.insert_instance(record(1), DuplicatePolicy::kKeepFirst).ok());
  auto found = index.find_instance(record(1).sop_instance_uid);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->patient_name, "DOE^JANE");
  EXPECT_EQ((*found)->accession_number, "ACC1");
}

TEST_F(IndexPgSession, AConcurrentFirstInsertOfASealedStudyIsMergedNotOverwritten) {
  auto opened = open_index_on(server_.url(database_));
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& index = **opened;
  ASSERT_TRUE(index.use_keyring(keyring(kKey)).ok());
  const auto mine = [] {
    auto r = record(1);
    r.accession_number.clear();  // not sent with this instance
    r.referring_physician.clear();
    return r;
  }();

  // Another writer's first insert of the same study, not yet committed: invisible to the
  // index's look-up, so the index's INSERT waits on it. (A plaintext row: readable under any
  // key, as rows from before encryption are.)
  auto other = connect(server_.url(database_));
  ASSERT_NE(other, nullptr);
  pg::Transaction tx(*other);
  ASSERT_TRUE(tx.begin().ok());
  auto patient = other->exec(
      "INSERT INTO patients (patient_id, patient_name) VALUES ('OTHER', 'OTHER') RETURNING id");
  ASSERT_TRUE(patient.ok()) << patient.error().message;
  ASSERT_TRUE(other
                  ->exec("INSERT INTO studies (study_instance_uid, patient_pk, accession_number, "
                         "referring_physician) VALUES ($1, $2, 'ACC-FIRST', 'FIRST^REFERRER')",
                         pg::Params().add(mine.study_instance_uid).add(patient->int64(0, 0)))
                  .ok());

  Result<InsertResult> inserted = core::make_error(ErrorCode::kInternal, "not run");
  std::jthread writer([&] { inserted = index.insert_instance(mine, DuplicatePolicy::kKeepFirst); });
  // Until the index's session waits for our transaction's row lock (bounded: 30 s).
  bool waiting = false;
  for (int i = 0; i < 300 && !waiting; ++i) {
    waiting = psql("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + database_ +
                   "' AND wait_event_type = 'Lock'") != "0\n";
    if (!waiting) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(waiting);
  ASSERT_TRUE(tx.commit().ok());
  writer.join();
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;

  auto found = index.find_instance(mine.sop_instance_uid);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->accession_number, "ACC-FIRST");
  EXPECT_EQ((*found)->referring_physician, "FIRST^REFERRER");
  EXPECT_EQ((*found)->patient_name, "DOE^JANE");
}

}  // namespace
}  // namespace gw::index
