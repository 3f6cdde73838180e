// Store-and-forward when a stored file changes under the forwarder (fixture:
// forwarder_fixture.h): an instance overwritten (storage.duplicates: overwrite) while its row
// is being sent, a file that fails reads in the middle of its data set, a file that no longer
// matches its recorded content digest.

#include "forwarder_fixture.h"
#include "queue/send_batch.h"

namespace gw::test {
namespace {

/// The forwarder fixture with an overwrite (storage.duplicates: overwrite) made while the
/// forwarder works: a new version of an instance replaces its row and its old file is removed,
/// as ingest does it.
class ForwarderStoredFilesTest : public ForwarderTest {
 protected:
  /// Prepares the new version of `uid` (its stored file with another Instance Number, under
  /// storage/<dir>/) and returns the opener that makes the overwrite the first time the
  /// forwarder opens `trigger`.
  dicom::SourceOpener overwrite_when_opened(const std::string& uid, const std::string& dir,
                                            const fs::path& trigger) {
    const fs::path old_file = stored_.at(uid);
    const fs::path new_relative = fs::path("storage") / dir / "new.dcm";
    new_file_ = data_dir_ / new_relative;
    fs::create_directories(new_file_.parent_path());
    fs::copy_file(old_file, new_file_);
    const auto modified =
        run_command({"dcmodify", "-nb", "-i", "(0020,0013)=4242", new_file_.string()});
    EXPECT_TRUE(modified.ok()) << modified.err;
    EXPECT_FALSE(data_set_bytes(new_file_) == data_set_bytes(old_file));
    auto record = records_.at(uid);
    record.storage_path = new_relative.string();
    record.size_bytes = static_cast<std::int64_t>(fs::file_size(new_file_));
    record.digest = file_digest(new_file_);
    record.received_at_ms = core::wall_clock_ms();
    return [this, record, old_file, trigger](const fs::path& path) {
      if (path == trigger && !overwritten_.exchange(true)) {
        auto replaced = index_->insert_instance(record, index::DuplicatePolicy::kOverwrite);
        EXPECT_TRUE(replaced.ok() && replaced->outcome == index::InsertOutcome::kReplaced);
        fs::remove(old_file);
      }
      return dicom::open_file_source(path);
    };
  }

  /// After the overwrite of `uid`: its old row ended superseded (nothing sent), its new row was
  /// delivered, no row is dead, and the destination holds exactly the new version.
  void expect_only_the_new_version_sent(const std::string& uid, const fs::path& out_dir,
                                        std::size_t instances) {
    EXPECT_TRUE(overwritten_);
    std::vector<index::OutboxItem> rows_of_uid;
    for (const auto& row : rows()) {
      EXPECT_NE(row.state, index::OutboxState::kDead) << row.id << ": " << row.last_error;
      if (row.sop_instance_uid == uid) rows_of_uid.push_back(row);
    }
    ASSERT_EQ(rows_of_uid.size(), 2u) << "the new version was not queued";
    EXPECT_EQ(rows_of_uid[0].state, index::OutboxState::kDelivered);
    EXPECT_EQ(rows_of_uid[0].last_status, -1) << "the old version was sent";
    EXPECT_EQ(rows_of_uid[0].last_error.rfind("superseded: ", 0), 0u) << rows_of_uid[0].last_error;
    EXPECT_EQ(rows_of_uid[1].state, index::OutboxState::kDelivered);
    EXPECT_EQ(rows_of_uid[1].last_status, 0) << rows_of_uid[1].last_error;
    stored_[uid] = new_file_;
    EXPECT_EQ(expect_bit_exact(out_dir).size(), instances) << "not exactly the new version";
    const auto status = service_->status(kDestination);
    EXPECT_EQ(status->counts.dead, 0u);
    EXPECT_EQ(status->counts.forwarded, instances);
  }

  std::atomic<bool> overwritten_{false};
  fs::path new_file_;
};

/// The overwrite after the forwarder claimed the batch and before it opened the old file: the
/// new version gets a row of its own and goes out; the old row ends superseded, not dead.
TEST_F(ForwarderStoredFilesTest, AnInstanceOverwrittenWhileInFlightGoesOutInItsNewVersion) {
  const auto uids = add_instances(
      "ow", {"--count", "3", "--sop-class", "ct", "--seed", "71", "--size-kib", "16"});
  ASSERT_EQ(uids.size(), 3u);
  auto open = overwrite_when_opened(uids[1], "ow-new", stored_.at(uids[1]));
  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;  // one batch: all three rows claimed at once
  start_service(config, open);
  ASSERT_TRUE(wait_settled());
  expect_only_the_new_version_sent(uids[1], scp.out_dir, uids.size());
}

/// The overwrite after the forwarder read the old file's header (it keeps that reader open for
/// the send) and before it sent it: the row must not send the old version through the
/// descriptor it kept (the destination would end with the old version once the row of the new
/// one went first).
TEST_F(ForwarderStoredFilesTest, AnInstanceOverwrittenAfterItsHeaderWasReadDoesNotSendIt) {
  const auto uids = add_instances(
      "owk", {"--count", "4", "--sop-class", "ct", "--seed", "77", "--size-kib", "16"});
  ASSERT_EQ(uids.size(), 4u);
  // The last file's header is read after the first one's.
  auto open = overwrite_when_opened(uids[0], "owk-new", stored_.at(uids[3]));
  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;  // one batch: all four rows claimed at once
  start_service(config, open);
  ASSERT_TRUE(wait_settled());
  expect_only_the_new_version_sent(uids[0], scp.out_dir, uids.size());
}

/// A stored file that fails a read (EIO, ESTALE) partway through its data set is our fault,
/// not the destination's: that row alone goes dead, like a file whose header cannot be read;
/// the association it broke is opened again for the other rows, which are delivered on their
/// first attempt, and the circuit breaker (here: open at the first counted failure) stays
/// closed.
TEST_F(ForwarderStoredFilesTest, AReadErrorOfAStoredFileMidSendEndsOnlyThatRow) {
  const auto uids = add_instances(
      "eio", {"--count", "6", "--sop-class", "ct", "--seed", "78", "--size-kib", "1024"});
  ASSERT_EQ(uids.size(), 6u);
  const std::string bad = uids[1];
  const fs::path bad_file = stored_.at(bad);
  stored_.erase(bad);

  /// Reads the file, but fails with EIO from 512 KiB on: the header reads and the first PDUs
  /// pass, so the failure comes in the middle of the data set, after bytes went out.
  class FailingSource final : public dicom::ByteSource {
   public:
    explicit FailingSource(std::unique_ptr<dicom::ByteSource> source)
        : source_(std::move(source)) {}
    std::uint64_t size() const override { return source_->size(); }
    core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
      if (offset >= 512 * 1024) {
        return core::make_error(core::ErrorCode::kIo, "read failed: Input/output error");
      }
      return source_->read_at(offset, out);
    }

   private:
    std::unique_ptr<dicom::ByteSource> source_;
  };
  dicom::SourceOpener open =
      [bad_file](const fs::path& path) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
    auto opened = dicom::open_file_source(path);
    if (!opened.ok() || path != bad_file) return opened;
    return std::unique_ptr<dicom::ByteSource>(
        std::make_unique<FailingSource>(std::move(opened).value()));
  };
  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;
  config.forwarding.circuit_breaker_failures = 1;
  start_service(config, open);

  ASSERT_TRUE(wait_settled(30s)) << "rows still queued";
  for (const auto& row : rows()) {
    if (row.sop_instance_uid == bad) {
      EXPECT_EQ(row.state, index::OutboxState::kDead);
      EXPECT_EQ(row.attempts, 1);
      EXPECT_NE(row.last_error.find("stored file unreadable"), std::string::npos) << row.last_error;
    } else {
      EXPECT_EQ(row.state, index::OutboxState::kDelivered) << row.last_error;
      EXPECT_EQ(row.attempts, 1) << row.sop_instance_uid << ": " << row.last_error;
    }
  }
  const auto status = service_->status(kDestination);
  EXPECT_FALSE(status->paused) << status->pause_reason;
  EXPECT_EQ(status->consecutive_failures, 0u);
  EXPECT_EQ(status->counts.dead, 1u);
  EXPECT_EQ(status->counts.forwarded, uids.size() - 1);
  EXPECT_EQ(status->counts.associations_opened, 2u) << "one more after the abort";
  std::set<std::string> received;
  for (const auto& entry : fs::directory_iterator(scp.out_dir)) {
    if (entry.is_regular_file()) received.insert(sop_instance_uid_of(entry.path()));
  }
  for (const auto& uid : uids) {
    if (uid != bad) {
      EXPECT_TRUE(received.contains(uid)) << uid << " did not arrive";
    }
  }
}

/// Flips one byte in the middle of `file` (same size): bit rot, or an edit on disk.
void flip_middle_byte(const fs::path& file) {
  const auto size = fs::file_size(file);
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(size / 2));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(size / 2));
  f.put(static_cast<char>(c ^ 0x01));
  f.close();
  ASSERT_EQ(fs::file_size(file), size);
}

/// What storescp wrote: SOP Instance UIDs of the files it completed, and every file name.
std::pair<std::set<std::string>, std::vector<std::string>> received_by(const fs::path& out_dir) {
  std::set<std::string> uids;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(out_dir)) {
    if (!entry.is_regular_file()) continue;
    names.push_back(entry.path().filename().string());
    uids.insert(sop_instance_uid_of(entry.path()));
  }
  return {uids, names};
}

/// A plain stored file that changed on disk since it was received (one byte flipped in the
/// middle of its pixel data, same size) no longer matches its recorded digest. Files of 3 MiB:
/// the change is found by the read that completes the file, in the middle of its send (data
/// set PDUs already went out), and that read's bytes never go out: the association is aborted
/// before the last fragment, so storescp never completes (stores) the instance. The row goes
/// dead on its first attempt with the digest's words, the breaker (open at the first counted
/// failure) does not count it, the other rows are delivered on a new association, bit-exact.
TEST_F(ForwarderStoredFilesTest, AStoredFileThatNoLongerMatchesItsDigestIsNeverCompleted) {
  const auto uids = add_instances(
      "rot", {"--count", "4", "--sop-class", "ct", "--seed", "79", "--size-kib", "3072"});
  ASSERT_EQ(uids.size(), 4u);
  const std::string bad = uids[1];
  flip_middle_byte(stored_.at(bad));
  const std::string bad_path = records_.at(bad).storage_path;
  stored_.erase(bad);

  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;
  config.forwarding.circuit_breaker_failures = 1;
  start_service(config);

  ASSERT_TRUE(wait_settled(60s)) << "rows still queued";
  for (const auto& row : rows()) {
    if (row.sop_instance_uid == bad) {
      EXPECT_EQ(row.state, index::OutboxState::kDead);
      EXPECT_EQ(row.attempts, 1) << "not retried: the file will not heal";
      EXPECT_EQ(row.last_status, -1);
      EXPECT_EQ(row.last_error, bad_path + ": " + std::string(queue::kDigestMismatch));
    } else {
      EXPECT_EQ(row.state, index::OutboxState::kDelivered) << row.last_error;
      EXPECT_EQ(row.attempts, 1) << row.sop_instance_uid << ": " << row.last_error;
    }
  }
  const auto status = service_->status(kDestination);
  EXPECT_FALSE(status->paused) << status->pause_reason;
  EXPECT_EQ(status->consecutive_failures, 0u);
  EXPECT_EQ(status->counts.dead, 1u);
  EXPECT_EQ(status->counts.forwarded, uids.size() - 1);
  EXPECT_EQ(status->counts.associations_opened, 2u) << "one more after the abort";

  // storescp writes (+B) as the data set arrives and removes the file of an aborted instance:
  // nothing of the changed one is left, not even a partial file.
  const auto [received, names] = received_by(scp.out_dir);
  EXPECT_FALSE(received.contains(bad)) << "the destination stored the changed instance";
  for (const auto& name : names) {
    EXPECT_EQ(name.find(bad), std::string::npos) << "a file of the changed instance: " << name;
  }
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size() - 1);
}

/// The same for a small file (under the 64 KiB the header read takes whole): the change is
/// found before anything of it is sent; the row goes dead, the others go out.
TEST_F(ForwarderStoredFilesTest, ASmallStoredFileThatNoLongerMatchesItsDigestIsNotSent) {
  const auto uids = add_instances(
      "rots", {"--count", "3", "--sop-class", "ct", "--seed", "80", "--size-kib", "16"});
  ASSERT_EQ(uids.size(), 3u);
  const std::string bad = uids[0];
  flip_middle_byte(stored_.at(bad));
  const std::string bad_path = records_.at(bad).storage_path;
  stored_.erase(bad);

  auto& scp = keep(start_storescp(0, dir_ / "received"));
  auto config = make_config(scp.port);
  config.destinations[0].max_associations = 1;
  config.forwarding.circuit_breaker_failures = 1;
  start_service(config);

  ASSERT_TRUE(wait_settled(30s)) << "rows still queued";
  for (const auto& row : rows()) {
    if (row.sop_instance_uid == bad) {
      EXPECT_EQ(row.state, index::OutboxState::kDead);
      EXPECT_EQ(row.attempts, 1);
      EXPECT_EQ(row.last_error, bad_path + ": " + std::string(queue::kDigestMismatch));
    } else {
      EXPECT_EQ(row.state, index::OutboxState::kDelivered) << row.last_error;
    }
  }
  const auto status = service_->status(kDestination);
  EXPECT_FALSE(status->paused) << status->pause_reason;
  EXPECT_EQ(status->counts.dead, 1u);
  EXPECT_EQ(status->counts.associations_opened, 1u) << "nothing of it was sent: no abort";
  EXPECT_FALSE(received_by(scp.out_dir).first.contains(bad));
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size() - 1);
}

/// A row from before ADR 008 ("sha256:…" digest) is sent as it is: only XXH3 digests are
/// checked (the forwarder does not compute SHA-256).
TEST_F(ForwarderStoredFilesTest, ALegacyDigestIsNotChecked) {
  const auto uids = add_instances(
      "legacy", {"--count", "2", "--sop-class", "ct", "--seed", "81", "--size-kib", "16"});
  ASSERT_EQ(uids.size(), 2u);
  // Re-recorded with a SHA-256 digest that does not match anything (not checked, so not seen).
  auto record = records_.at(uids[0]);
  record.digest = "sha256:" + std::string(64, '0');
  auto replaced = index_->insert_instance(record, index::DuplicatePolicy::kOverwrite);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  ASSERT_EQ(rows().size(), uids.size()) << "its pending row is kept, not doubled";

  auto& scp = keep(start_storescp(0, dir_ / "received"));
  start_service(make_config(scp.port));
  ASSERT_TRUE(wait_settled(30s));
  for (const auto& row : rows()) {
    EXPECT_EQ(row.state, index::OutboxState::kDelivered) << row.last_error;
  }
  EXPECT_EQ(expect_bit_exact(scp.out_dir).size(), uids.size());
}

}  // namespace
}  // namespace gw::test
