#include "queue/send_batch.h"

#include <memory>
#include <system_error>

namespace gw::queue {

namespace {

/// A reader lent for a while: the SourceOpener below keeps the reader.
class LentSource final : public dicom::ByteSource {
 public:
  explicit LentSource(dicom::ByteSource& source) : source_(source) {}
  std::uint64_t size() const override { return source_.size(); }
  core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
    return source_.read_at(offset, out);
  }

 private:
  dicom::ByteSource& source_;
};

/// A reader whose failed reads are noted (note_read_errors).
class WatchedSource final : public dicom::ByteSource {
 public:
  WatchedSource(std::unique_ptr<dicom::ByteSource> source, std::shared_ptr<bool> failed)
      : source_(std::move(source)), failed_(std::move(failed)) {}
  std::uint64_t size() const override { return source_->size(); }
  core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
    auto n = source_->read_at(offset, out);
    if (!n.ok()) *failed_ = true;
    return n;
  }

 private:
  std::unique_ptr<dicom::ByteSource> source_;
  std::shared_ptr<bool> failed_;
};

/// A SourceOpener for one item that opens its file once for two users: the first call (the
/// header read) opens the file, keeps the reader and lends it; the second (the send) takes the
/// kept reader; any later call (a resend) opens the file again. Calls are sequential (the
/// worker pool, then the strand), never concurrent.
///
/// The kept reader is handed over only while its file is still there: with storage.duplicates:
/// overwrite, ingest removes an instance's old file once its row names the new one, and a kept
/// descriptor would still read the old version, which (sent after the new row delivered the new
/// version) would leave the destination with the old one. A file gone from its path fails the
/// send with kNotFound before anything is sent, as a row opened only at send time does, and the
/// forwarder asks the index what became of the row (Forwarder::finish_missing_files).
dicom::SourceOpener open_once(const dicom::SourceOpener& open) {
  struct Kept {
    std::unique_ptr<dicom::ByteSource> source;
    bool lent = false;
  };
  return
      [open, kept = std::make_shared<Kept>()](
          const std::filesystem::path& path) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
        if (kept->source) {
          std::error_code ec;
          const auto status = std::filesystem::status(path, ec);
          if (status.type() == std::filesystem::file_type::not_found) {
            kept->source.reset();
            return core::make_error(core::ErrorCode::kNotFound,
                                    "the stored file was removed since it was prepared");
          }
          return std::move(kept->source);
        }
        auto opened = open ? open(path) : dicom::open_file_source(path);
        if (!opened.ok() || kept->lent) return opened;
        kept->lent = true;
        kept->source = std::move(opened).value();
        return std::unique_ptr<dicom::ByteSource>(std::make_unique<LentSource>(*kept->source));
      };
}

}  // namespace

std::vector<core::Result<dicom::SendItem>> prepare_batch(
    const std::filesystem::path& data_dir, const std::vector<index::OutboxItem>& items,
    const dicom::SourceOpener& open) {
  std::vector<core::Result<dicom::SendItem>> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    const auto path = data_dir / item.storage_path;
    if (out.size() < kMaxHeldFiles) {
      out.push_back(dicom::prepare_send_item(path, open_once(open)));
    } else {
      out.push_back(dicom::prepare_send_item(path, open));
    }
  }
  return out;
}

dicom::SourceOpener note_read_errors(dicom::SourceOpener open, std::shared_ptr<bool> failed) {
  return
      [open = std::move(open), failed = std::move(failed)](
          const std::filesystem::path& path) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
        auto opened = open ? open(path) : dicom::open_file_source(path);
        if (!opened.ok()) return opened;
        return std::unique_ptr<dicom::ByteSource>(
            std::make_unique<WatchedSource>(std::move(opened).value(), failed));
      };
}

ContextPair pair_of(const dicom::SendItem& item) {
  const auto& meta = item.header.meta;
  return ContextPair{meta.media_storage_sop_class_uid, meta.transfer_syntax_uid};
}

std::vector<ContextPair> pairs_to_propose(
    const std::vector<core::Result<dicom::SendItem>>& prepared, std::size_t from,
    const std::set<ContextPair>& old_pairs) {
  std::vector<ContextPair> pairs;
  std::set<ContextPair> seen;
  for (std::size_t j = from; j < prepared.size() && pairs.size() < kMaxContexts; ++j) {
    if (!prepared[j].ok()) continue;
    auto pair = pair_of(*prepared[j]);
    if (seen.insert(pair).second) pairs.push_back(std::move(pair));
  }
  for (const auto& p : old_pairs) {
    if (pairs.size() < kMaxContexts && seen.insert(p).second) pairs.push_back(p);
  }
  return pairs;
}

std::vector<dicom::PresentationContextRq> presentation_contexts(
    const std::vector<ContextPair>& pairs) {
  std::vector<dicom::PresentationContextRq> contexts;
  contexts.reserve(pairs.size());
  std::uint8_t id = 1;
  for (const auto& [sop_class, transfer_syntax] : pairs) {
    contexts.push_back({id, sop_class, {transfer_syntax}});
    id = static_cast<std::uint8_t>(id + 2);
  }
  return contexts;
}

}  // namespace gw::queue
