#pragma once
/// A claimed batch made ready to send: each row's stored file read up to its data set (what
/// SOP class in what transfer syntax), and the presentation contexts an association for the
/// batch proposes: one per (SOP class, transfer syntax) pair, with that single transfer syntax,
/// since the forwarder sends stored bytes unchanged (no transcoding).

#include <cstddef>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "dicom/scu.h"
#include "index/outbox.h"

namespace gw::queue {

/// (SOP class UID, transfer syntax UID).
using ContextPair = std::pair<std::string, std::string>;

/// Presentation context IDs are odd numbers 1..255.
inline constexpr std::size_t kMaxContexts = 128;

/// The most readers one batch keeps open between reading the headers and sending. Small on
/// purpose: every forwarder worker (destinations × max_associations) holds up to this many
/// descriptors, and running out of them would fail deliveries; the rest of a batch is opened
/// twice (header, then send), which costs little.
inline constexpr std::size_t kMaxHeldFiles = 8;

/// The message of the error (kDataLoss) a stored file fails with when its bytes do not match the
/// content digest recorded when it was received (check_digest).
inline constexpr std::string_view kDigestMismatch =
    "stored file does not match its recorded digest (changed on disk since it was received)";

/// Whether `error` is check_digest()'s, as passed on (send_store() and prepare_send_item() put
/// the file's path in front of the message).
bool is_digest_mismatch(const core::Error& error);

/// `source` with every byte hashed as it is read and checked against `digest` ("xxh128:<32
/// hex>", storage/content_digest.h, ADR 008). Each byte is hashed once, in order: a read that
/// starts past what was hashed so far reads the gap itself first (a send starts at the data
/// set, after the header was read by another reader), and a read over bytes already hashed
/// (the header read, then the send from the data set on) hashes only its new part. The read
/// that completes the file compares: on a mismatch it fails with kDataLoss (kDigestMismatch)
/// and hands none of its bytes on, so the last fragment of the data set is never sent (the
/// sender aborts the association instead), and so does every later read. An empty digest, or
/// one of another algorithm (rows from before ADR 008: "sha256:"), is not checked: `source` is
/// returned as it is. Costs XXH3 over each byte once, plus the rare gap (the File Meta group of
/// a file opened again for its send).
std::unique_ptr<dicom::ByteSource> check_digest(std::unique_ptr<dicom::ByteSource> source,
                                                std::string_view digest);

/// `open` (empty: plain files) with every source it opens checked against `digest`
/// (check_digest); `open` itself when the digest is not checked.
dicom::SourceOpener check_digests(dicom::SourceOpener open, std::string digest);

/// Reads the Part 10 header of each row's stored file (data_dir / storage_path) through `open`
/// (empty: plain files), every byte checked against the row's digest (check_digests: the
/// header read and the send share the check when they share the reader). Blocking file I/O:
/// call it on the worker pool. The reader that read the
/// header of one of the first kMaxHeldFiles items stays open in its SendItem and is the one its
/// first send streams from, so each such file is opened once (for an encrypted file, ADR 010,
/// opening means reading the key slots, unwrapping the data key and authenticating the last
/// segment); a later open of the item (a resend) opens the file again. The readers of the items
/// after those are closed at once and their files opened again when sent, which bounds the
/// file descriptors a batch holds.
std::vector<core::Result<dicom::SendItem>> prepare_batch(
    const std::filesystem::path& data_dir, const std::vector<index::OutboxItem>& items,
    const dicom::SourceOpener& open);

/// `open` (empty: plain files) with every read of the sources it opens watched: a failed read
/// sets `*failed`. send_store() returns a read error of the stored file with the file's own
/// code (kIo for EIO or ESTALE), which alone would not tell it from a broken connection; the
/// flag does: the file failed, not the destination.
dicom::SourceOpener note_read_errors(dicom::SourceOpener open, std::shared_ptr<bool> failed);

/// The pair a prepared item is sent in.
ContextPair pair_of(const dicom::SendItem& item);

/// The pairs a new association proposes for prepared[from..]: the pairs those items need, in
/// order, then `old_pairs` (what the previous association had, so later batches of the same
/// kind fit too), each once, at most kMaxContexts. Items that failed to prepare need none.
std::vector<ContextPair> pairs_to_propose(
    const std::vector<core::Result<dicom::SendItem>>& prepared, std::size_t from,
    const std::set<ContextPair>& old_pairs);

/// One presentation context per pair, with that single transfer syntax; IDs 1, 3, 5, …
/// (at most kMaxContexts pairs).
std::vector<dicom::PresentationContextRq> presentation_contexts(
    const std::vector<ContextPair>& pairs);

}  // namespace gw::queue
