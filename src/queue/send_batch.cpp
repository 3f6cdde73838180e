#include "queue/send_batch.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <system_error>
#include <vector>

#include "storage/content_digest.h"
#include "storage/stored_path.h"

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

/// A reader whose bytes are hashed as they are read and checked against a content digest
/// (check_digest).
class DigestCheckedSource final : public dicom::ByteSource {
 public:
  DigestCheckedSource(std::unique_ptr<dicom::ByteSource> source, std::string expected)
      : source_(std::move(source)), expected_(std::move(expected)) {}
  std::uint64_t size() const override { return source_->size(); }

  core::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> out) override {
    if (mismatch_) return mismatch();
    const std::uint64_t size = source_->size();
    if (!checked_ && offset > hashed_) {
      // A gap: hash what lies before this read first (the bytes must be hashed in order).
      GW_RETURN_IF_ERROR(hash_up_to(std::min(offset, size)));
      if (mismatch_) return mismatch();
    }
    auto n = source_->read_at(offset, out);
    if (!n.ok()) return n;
    if (!checked_ && offset <= hashed_ && offset + *n > hashed_) {
      const auto skip = static_cast<std::size_t>(hashed_ - offset);  // hashed before
      digest_.update(std::span<const std::uint8_t>(out.data() + skip, *n - skip));
      hashed_ = offset + *n;
      compare_if_complete();
      if (mismatch_) return mismatch();  // none of these bytes may be used
    }
    return n;
  }

 private:
  static core::Error mismatch() {
    return core::make_error(core::ErrorCode::kDataLoss, std::string(kDigestMismatch));
  }

  /// Reads and hashes [hashed_, end) (a gap the caller skipped).
  core::Status hash_up_to(std::uint64_t end) {
    std::vector<std::uint8_t> buf(
        static_cast<std::size_t>(std::min<std::uint64_t>(end - hashed_, 64 * 1024)));
    while (hashed_ < end) {
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - hashed_));
      auto n = source_->read_at(hashed_, std::span(buf.data(), want));
      if (!n.ok()) return std::move(n).error();
      if (*n == 0) {
        return core::make_error(core::ErrorCode::kDataLoss,
                                "the stored file ended before its recorded size");
      }
      digest_.update(std::span<const std::uint8_t>(buf.data(), *n));
      hashed_ += *n;
    }
    compare_if_complete();
    return core::ok_status();
  }

  void compare_if_complete() {
    if (checked_ || hashed_ < source_->size()) return;
    checked_ = true;
    mismatch_ = digest_.text() != expected_;
  }

  std::unique_ptr<dicom::ByteSource> source_;
  std::string expected_;  ///< "xxh128:<32 lower-case hex>"
  storage::ContentDigest digest_;
  std::uint64_t hashed_ = 0;  ///< bytes [0, hashed_) are in digest_
  bool checked_ = false;      ///< the whole file was hashed and compared
  bool mismatch_ = false;
};

/// The digest in ContentDigest's spelling when check_digest can check it; empty otherwise.
std::string checkable(std::string_view digest) {
  if (!digest.starts_with(storage::kDigestPrefix)) return {};
  std::string out(digest);
  const auto hex = std::string_view(out).substr(storage::kDigestPrefix.size());
  if (hex.size() != 32 || !std::all_of(hex.begin(), hex.end(),
                                       [](unsigned char ch) { return std::isxdigit(ch) != 0; })) {
    return {};
  }
  std::transform(out.begin() + static_cast<std::ptrdiff_t>(storage::kDigestPrefix.size()),
                 out.end(),
                 out.begin() + static_cast<std::ptrdiff_t>(storage::kDigestPrefix.size()),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return out;
}

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

bool is_digest_mismatch(const core::Error& error) {
  return error.code == core::ErrorCode::kDataLoss && error.message.ends_with(kDigestMismatch);
}

std::unique_ptr<dicom::ByteSource> check_digest(std::unique_ptr<dicom::ByteSource> source,
                                                std::string_view digest) {
  auto expected = checkable(digest);
  if (expected.empty() || !source) return source;
  return std::make_unique<DigestCheckedSource>(std::move(source), std::move(expected));
}

dicom::SourceOpener check_digests(dicom::SourceOpener open, std::string digest) {
  auto expected = checkable(digest);
  if (expected.empty()) return open;
  return
      [open = std::move(open), expected = std::move(expected)](
          const std::filesystem::path& path) -> core::Result<std::unique_ptr<dicom::ByteSource>> {
        auto opened = open ? open(path) : dicom::open_file_source(path);
        if (!opened.ok()) return opened;
        return check_digest(std::move(opened).value(), expected);
      };
}

std::vector<core::Result<dicom::SendItem>> prepare_batch(
    const std::filesystem::path& data_dir, const std::vector<index::OutboxItem>& items,
    const dicom::SourceOpener& open) {
  std::vector<core::Result<dicom::SendItem>> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    auto path = storage::stored_file_path(data_dir, item.storage_path);
    if (!path.ok()) {
      out.push_back(std::move(path).error());
      continue;
    }
    // Under open_once: the header read and the first send share one reader and one check.
    auto checked = check_digests(open, item.digest);
    if (out.size() < kMaxHeldFiles) {
      out.push_back(dicom::prepare_send_item(*path, open_once(checked)));
    } else {
      out.push_back(dicom::prepare_send_item(*path, checked));
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
