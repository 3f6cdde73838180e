// Store-and-forward when a stored file changes under the forwarder (fixture:
// forwarder_fixture.h): an instance overwritten (storage.duplicates: overwrite) while its row
// is being sent, a file that fails reads in the middle of its data set.

#include "forwarder_fixture.h"

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

}  // namespace
}  // namespace gw::test
