// Preparing a claimed batch: how often each stored file is opened (once for the first items,
// whose header reader is kept for the send) and which presentation contexts are proposed.
#include "queue/send_batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "dicom/uids.h"
#include "support/temp_dir.h"

namespace gw::queue {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCt = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kMr = "1.2.840.10008.5.1.4.1.1.4";

/// A stored file: a File Meta group then a few data set bytes (only the header is read here).
void write_part10(const fs::path& path, const std::string& sop_class, const std::string& syntax,
                  const std::string& uid) {
  dicom::FileMeta meta;
  meta.media_storage_sop_class_uid = sop_class;
  meta.media_storage_sop_instance_uid = uid;
  meta.transfer_syntax_uid = syntax;
  meta.implementation_class_uid = std::string(dicom::kImplementationClassUid);
  auto bytes = dicom::encode_file_meta(meta);
  bytes.insert(bytes.end(), {0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'C', 'T'});
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

class SendBatchTest : public ::testing::Test {
 protected:
  /// `n` rows whose files alternate CT / MR in Explicit VR LE.
  std::vector<index::OutboxItem> make_rows(std::size_t n) {
    std::vector<index::OutboxItem> rows;
    fs::create_directories(tmp_.path() / "storage");
    for (std::size_t i = 0; i < n; ++i) {
      index::OutboxItem row;
      row.id = static_cast<std::int64_t>(i + 1);
      row.storage_path = "storage/f" + std::to_string(i) + ".dcm";
      const char* sop_class = i % 2 == 0 ? kCt : kMr;
      write_part10(tmp_.path() / row.storage_path, sop_class,
                   std::string(dicom::kExplicitVrLittleEndian), "1.2.3." + std::to_string(i));
      rows.push_back(row);
    }
    return rows;
  }

  /// open_file_source, counting the calls.
  dicom::SourceOpener counting_opener() {
    return [this](const fs::path& path) {
      ++opens_;
      return dicom::open_file_source(path);
    };
  }

  test::TempDir tmp_{"gw-send-batch-test"};
  int opens_ = 0;
};

TEST_F(SendBatchTest, TheFirstItemsAreOpenedOnceTheRestTwiceAResendAgain) {
  const std::size_t n = kMaxHeldFiles + 4;
  auto prepared = prepare_batch(tmp_.path(), make_rows(n), counting_opener());
  ASSERT_EQ(prepared.size(), n);
  EXPECT_EQ(opens_, static_cast<int>(n)) << "one header read per item";
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(prepared[i].ok()) << prepared[i].error().message;
    const int before = opens_;
    auto source = prepared[i]->open(prepared[i]->path);  // what the send does
    ASSERT_TRUE(source.ok());
    EXPECT_GT((*source)->size(), prepared[i]->header.data_set_offset);
    EXPECT_EQ(opens_ - before, i < kMaxHeldFiles ? 0 : 1) << "item " << i;
  }
  // A resend (the association dropped) opens the file again.
  const int before = opens_;
  auto again = prepared[0]->open(prepared[0]->path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(opens_ - before, 1);
}

TEST_F(SendBatchTest, AMissingFileFailsItsItemOnly) {
  auto rows = make_rows(3);
  fs::remove(tmp_.path() / rows[1].storage_path);
  auto prepared = prepare_batch(tmp_.path(), rows, counting_opener());
  ASSERT_EQ(prepared.size(), 3u);
  EXPECT_TRUE(prepared[0].ok());
  EXPECT_FALSE(prepared[1].ok());
  EXPECT_TRUE(prepared[2].ok());
}

// A row is read from a database that others can write: a path outside storage/ is refused
// before anything is opened, and fails its item only.
TEST_F(SendBatchTest, APathOutsideStorageIsNeverOpened) {
  auto rows = make_rows(3);
  std::ofstream(tmp_.path() / "config.yaml") << "secret: 1\n";
  rows[0].storage_path = (tmp_.path() / "config.yaml").string();  // absolute
  rows[1].storage_path = "storage/../config.yaml";
  auto prepared = prepare_batch(tmp_.path(), rows, counting_opener());
  ASSERT_EQ(prepared.size(), 3u);
  for (int i : {0, 1}) {
    ASSERT_FALSE(prepared[i].ok()) << i;
    EXPECT_NE(prepared[i].error().message.find("outside storage/"), std::string::npos);
  }
  EXPECT_TRUE(prepared[2].ok());
  EXPECT_EQ(opens_, 1) << "only the third row's file was opened";
}

// storage.duplicates: overwrite removes an instance's old file once its row names the new one.
// A reader kept since the header read must not send the old version through its descriptor:
// the send finds the file gone (kNotFound, nothing sent), as an item opened only then would.
TEST_F(SendBatchTest, AKeptReaderIsNotUsedOnceItsFileWasRemoved) {
  auto rows = make_rows(2);
  auto prepared = prepare_batch(tmp_.path(), rows, counting_opener());
  ASSERT_TRUE(prepared[0].ok() && prepared[1].ok());
  fs::remove(tmp_.path() / rows[0].storage_path);  // replaced by an overwrite meanwhile
  auto gone = prepared[0]->open(prepared[0]->path);
  ASSERT_FALSE(gone.ok()) << "the old version would be sent";
  EXPECT_EQ(gone.error().code, core::ErrorCode::kNotFound);
  auto kept = prepared[1]->open(prepared[1]->path);
  ASSERT_TRUE(kept.ok()) << kept.error().message;
}

// A failed read of a watched source is noted (the forwarder tells it from a lost connection);
// successful reads and a failed open are not.
TEST_F(SendBatchTest, NoteReadErrorsFlagsAFailedReadOnly) {
  class Failing final : public dicom::ByteSource {
   public:
    std::uint64_t size() const override { return 100; }
    core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
      if (offset >= 50) return core::make_error(core::ErrorCode::kIo, "Input/output error");
      return std::min<std::size_t>(out.size(), 50 - offset);
    }
  };
  auto failed = std::make_shared<bool>(false);
  auto open = note_read_errors(
      [](const fs::path& path) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
        if (path == "missing") return core::make_error(core::ErrorCode::kNotFound, "gone");
        return std::unique_ptr<dicom::ByteSource>(std::make_unique<Failing>());
      },
      failed);
  EXPECT_FALSE(open("missing").ok());
  EXPECT_FALSE(*failed) << "an open that fails is not a read error";
  auto source = open("file");
  ASSERT_TRUE(source.ok());
  std::vector<std::uint8_t> buf(10);
  ASSERT_TRUE((*source)->read_at(0, buf).ok());
  EXPECT_FALSE(*failed);
  auto n = (*source)->read_at(60, buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, core::ErrorCode::kIo) << "the error is passed on as it is";
  EXPECT_TRUE(*failed);
}

TEST_F(SendBatchTest, ProposesThePairsTheItemsNeedThenThePreviousOnesEachOnce) {
  auto prepared = prepare_batch(tmp_.path(), make_rows(4), counting_opener());
  const std::string ele(dicom::kExplicitVrLittleEndian);
  const ContextPair old_pair{"1.2.840.10008.5.1.4.1.1.7", ele};
  const auto pairs = pairs_to_propose(prepared, 0, {old_pair, ContextPair{kMr, ele}});
  const std::vector<ContextPair> want = {{kCt, ele}, {kMr, ele}, old_pair};
  EXPECT_EQ(pairs, want);
  // From the second item on: MR first.
  EXPECT_EQ(pairs_to_propose(prepared, 1, {}).front(), (ContextPair{kMr, ele}));

  const auto contexts = presentation_contexts(pairs);
  ASSERT_EQ(contexts.size(), 3u);
  EXPECT_EQ(contexts[0].id, 1);
  EXPECT_EQ(contexts[2].id, 5);
  EXPECT_EQ(contexts[1].abstract_syntax, kMr);
  EXPECT_EQ(contexts[1].transfer_syntaxes, std::vector<std::string>{ele});
}

TEST_F(SendBatchTest, AtMostTheContextLimitIsProposed) {
  std::set<ContextPair> old_pairs;
  for (std::size_t i = 0; i < kMaxContexts + 20; ++i) {
    old_pairs.insert({"1.2.3.4." + std::to_string(i), "1.2.840.10008.1.2.1"});
  }
  auto prepared = prepare_batch(tmp_.path(), make_rows(2), counting_opener());
  const auto pairs = pairs_to_propose(prepared, 0, old_pairs);
  EXPECT_EQ(pairs.size(), kMaxContexts);
  EXPECT_EQ(pairs[0].first, kCt) << "what the batch needs comes first";
  EXPECT_EQ(presentation_contexts(pairs).back().id, 2 * kMaxContexts - 1);
}

}  // namespace
}  // namespace gw::queue
