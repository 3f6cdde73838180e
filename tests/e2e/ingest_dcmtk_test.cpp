// Ingest end to end: DCMTK's echoscu/storescu and our own `dicom-gw echo`/`send` against a real
// gateway; `dicom-gw send` against DCMTK's storescp. Every received instance is checked against
// its source (by value when DCMTK re-encoded it, byte for byte when it was streamed).

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dicom/part10.h"
#include "support/dcmtk_tools.h"
#include "support/gateway.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"
#include "support/text.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

/// What the index recorded for one instance.
struct IndexRow {
  std::string sop_class_uid;
  std::string transfer_syntax_uid;
  std::string storage_path;
  std::string digest;
};

/// XXH3-128 of a whole file as `xxhsum -H2` prints it, prefixed "xxh128:", computed here
/// with libxxhash directly, independently of the gateway's code.
std::string digest_of_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits(bytes.data(), bytes.size()));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "xxh128:";
  for (unsigned char c : canonical.digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0x0f]);
  }
  return out;
}

/// Every row of the gateway's `instances` table, by SOP Instance UID (read-only connection).
std::map<std::string, IndexRow> index_rows(const fs::path& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + db_path.string());
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  const char* sql =
      "SELECT sop_instance_uid, sop_class_uid, transfer_syntax_uid, storage_path, digest "
      "FROM instances";
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    const std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("index query failed: " + why);
  }
  auto text = [stmt](int column) {
    const auto* t = sqlite3_column_text(stmt, column);
    return t != nullptr ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };
  std::map<std::string, IndexRow> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    rows[text(0)] = IndexRow{text(1), text(2), text(3), text(4)};
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

dicom::FileMeta meta_of(const fs::path& file) {
  auto header = dicom::read_part10_header(file);
  if (!header.ok()) throw std::runtime_error(file.string() + ": " + header.error().message);
  return header->meta;
}

/// One line of a `dicom-gw send --report` file: "OK 0x0000 UID FILE" / "FAILED REASON UID FILE".
struct ReportLine {
  bool ok = false;
  std::string reason;  ///< everything between the first word and the UID
  std::string sop_instance_uid;
  std::string file;
};

std::vector<ReportLine> read_report(const fs::path& report) {
  std::vector<ReportLine> out;
  std::istringstream in(read_text(report));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words;
    std::istringstream ws(line);
    for (std::string w; ws >> w;) words.push_back(w);
    if (words.size() < 3) continue;
    ReportLine r;
    r.ok = words[0] == "OK";
    r.file = words[words.size() - 1];
    r.sop_instance_uid = words[words.size() - 2];
    for (std::size_t i = 1; i + 2 < words.size(); ++i) r.reason += (i > 1 ? " " : "") + words[i];
    out.push_back(std::move(r));
  }
  return out;
}

/// `dicom-gw send --no-progress [extra] 127.0.0.1 PORT FILES...`.
CommandResult gw_send(std::uint16_t port, const std::vector<fs::path>& files,
                      const std::vector<std::string>& extra = {},
                      std::chrono::milliseconds timeout = 120s) {
  std::vector<std::string> argv = {gateway_binary().string(), "send", "--no-progress"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.emplace_back("127.0.0.1");
  argv.push_back(std::to_string(port));
  for (const auto& f : files) argv.push_back(f.string());
  return run_command(argv, {}, timeout);
}

CommandResult gw_echo(std::uint16_t port, const std::vector<std::string>& extra = {},
                      std::chrono::milliseconds timeout = 30s) {
  std::vector<std::string> argv = {gateway_binary().string(), "echo"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.emplace_back("127.0.0.1");
  argv.push_back(std::to_string(port));
  return run_command(argv, {}, timeout);
}

std::string both(const CommandResult& r) { return r.out + r.err; }

constexpr const char* kDeflatedExplicitLe = "1.2.840.10008.1.2.1.99";

/// True if `received` holds the data set of `source` byte for byte. One allowed difference: a
/// deflated data set of odd length may arrive with the single trailing NULL byte PS3.5 A.5
/// requires (a sender that pads a non-conforming source file is right to do so).
bool same_data_set(const fs::path& source, const fs::path& received, std::string* why) {
  const auto a = data_set_bytes(source);
  const auto b = data_set_bytes(received);
  if (a == b) return true;
  if (transfer_syntax_of(source) == kDeflatedExplicitLe && a.size() % 2 == 1 &&
      b.size() == a.size() + 1 && b.back() == 0 && std::equal(a.begin(), a.end(), b.begin())) {
    return true;
  }
  *why = source.string() + " (" + std::to_string(a.size()) + " bytes) and " + received.string() +
         " (" + std::to_string(b.size()) + " bytes) differ in their data set bytes";
  return false;
}

// ---- Verification ------------------------------------------------------------------------------

TEST(IngestEcho, EchoscuAndDicomGwEchoSucceed) {
  auto gw = Gateway::start();
  const CommandResult dcmtk = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW");
  EXPECT_TRUE(dcmtk.ok()) << both(dcmtk);

  const CommandResult ours = gw_echo(gw->port(), {"--aec", "DICOM_GW", "--aet", "ECHOTEST"});
  EXPECT_TRUE(ours.ok()) << both(ours);
  EXPECT_NE(ours.out.find("success"), std::string::npos) << ours.out;
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

TEST(IngestEcho, DicomGwEchoToAClosedPortFails) {
  const std::uint16_t closed = free_tcp_port();  // nothing listens there
  const CommandResult r = gw_echo(closed, {"--timeout", "5"});
  EXPECT_FALSE(r.timed_out) << both(r);
  EXPECT_EQ(r.exit_code, 1) << both(r);
  EXPECT_NE(r.err.find("failed"), std::string::npos) << r.err;
}

// ---- storescu → gateway -----------------------------------------------------------------------

TEST(IngestStorescu, MixedSyntaxesArriveUnconvertedAndEqualByValue) {
  TempDir dir("gw-ingest");
  // 90 --mix files: the first with an 8-bit image in JPEG baseline is number 84, so this is the
  // smallest round number covering every transfer syntax gen_dicom makes.
  const auto files =
      generate_dicom(dir / "source", {"--count", "90", "--mix", "--seed", "7", "--size-kib", "16"});
  ASSERT_EQ(files.size(), 90u);
  std::set<std::string> syntaxes;
  for (const auto& f : files) {
    syntaxes.insert(transfer_syntax_of(f));
    ASSERT_FALSE(storescu_proposal_flag(transfer_syntax_of(f)).empty())
        << f << ": storescu cannot propose " << transfer_syntax_of(f);
  }
  EXPECT_GE(syntaxes.size(), 10u);

  auto gw = Gateway::start();
  // run_storescu runs storescu once per transfer syntax with the flag that proposes it
  // (storescu_proposal_flag), so storescu never has to convert a file.
  const CommandResult sent = run_storescu("127.0.0.1", gw->port(), files, {"-aec", "DICOM_GW"});
  ASSERT_TRUE(sent.ok()) << both(sent);

  const auto rows = index_rows(gw->data_dir() / "index.db");
  EXPECT_EQ(rows.size(), files.size());
  for (const auto& source : files) {
    const std::string uid = sop_instance_uid_of(source);
    const auto stored = gw->stored_file(uid);
    ASSERT_TRUE(stored.has_value()) << source << " (" << uid << ") is not in the index";
    const auto row = rows.find(uid);
    ASSERT_NE(row, rows.end());
    EXPECT_EQ(row->second.transfer_syntax_uid, transfer_syntax_of(source)) << source;
    EXPECT_EQ(transfer_syntax_of(*stored), transfer_syntax_of(source)) << source;
    std::string why;
    EXPECT_TRUE(dcmdump_equal(source, *stored, &why)) << source << ": " << why;
  }
  EXPECT_TRUE(gw->spool_files().empty());
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

// ---- dicom-gw send → gateway ------------------------------------------------------------------

TEST(IngestSend, EverySyntaxStoredByteForByteAndIndexed) {
  TempDir dir("gw-ingest");
  // One full --mix cycle: every SOP class × transfer syntax pair once (deflate, big endian,
  // JPEG baseline/extended/lossless, JPEG-LS, RLE, JPEG 2000...).
  const auto files = generate_dicom(
      dir / "source", {"--count", "150", "--mix", "--seed", "11", "--size-kib", "16"});
  ASSERT_EQ(files.size(), 150u);

  auto gw = Gateway::start();
  const fs::path report = dir / "report.txt";
  const CommandResult sent =
      gw_send(gw->port(), {dir / "source"}, {"--aec", "DICOM_GW", "--report", report.string()});
  ASSERT_TRUE(sent.ok()) << both(sent);
  const auto lines = read_report(report);
  EXPECT_EQ(lines.size(), files.size());
  for (const auto& l : lines) {
    EXPECT_TRUE(l.ok) << l.file << ": " << l.reason;
    EXPECT_EQ(l.reason, "0x0000") << l.file;
  }

  const auto rows = index_rows(gw->data_dir() / "index.db");
  EXPECT_EQ(rows.size(), files.size());
  std::set<std::string> syntaxes;
  for (const auto& source : files) {
    const dicom::FileMeta meta = meta_of(source);
    syntaxes.insert(meta.transfer_syntax_uid);
    const auto row = rows.find(meta.media_storage_sop_instance_uid);
    ASSERT_NE(row, rows.end()) << source << " is not in the index";
    EXPECT_EQ(row->second.sop_class_uid, meta.media_storage_sop_class_uid) << source;
    EXPECT_EQ(row->second.transfer_syntax_uid, meta.transfer_syntax_uid) << source;
    const fs::path stored = gw->data_dir() / row->second.storage_path;
    ASSERT_TRUE(fs::is_regular_file(stored)) << stored;
    EXPECT_EQ(transfer_syntax_of(stored), meta.transfer_syntax_uid) << source;
    EXPECT_EQ(row->second.digest, digest_of_file(stored)) << "recorded digest of " << stored;
    std::string why;
    EXPECT_TRUE(same_data_set(source, stored, &why)) << why;
  }
  EXPECT_EQ(syntaxes.size(), 10u);
  EXPECT_EQ(gw->storage_files().size(), files.size());
  EXPECT_TRUE(gw->spool_files().empty());
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

// ---- dicom-gw send → storescp +B --------------------------------------------------------------

// gen_dicom (through DCMTK) writes some deflated data sets with an odd length, which PS3.5 A.5
// forbids; DCMTK's storescp aborts the association on such an odd P-DATA fragment. A sender
// must send the deflated stream padded to even length.
TEST(IngestSend, ToStorescpBitPreserving) {
  TempDir dir("gw-ingest");
  const auto files = generate_dicom(dir / "source",
                                    {"--count", "30", "--mix", "--seed", "13", "--size-kib", "16"});
  ASSERT_EQ(files.size(), 30u);
  StoreScp scp = start_storescp(0, dir.subdir("received"));  // +B +xa
  const CommandResult sent = gw_send(scp.port, files, {"--aec", "STORESCP"});
  ASSERT_TRUE(sent.ok()) << both(sent);
  ASSERT_TRUE(wait_until([&] { return scp.received_files().size() >= files.size(); }, 10s));

  std::map<std::string, fs::path> received;  // storescp names files "<modality>.<UID>"
  for (const auto& f : scp.received_files()) {
    const std::string name = f.filename().string();
    received[name.substr(name.find('.') + 1)] = f;
  }
  ASSERT_EQ(received.size(), files.size());
  for (const auto& source : files) {
    const auto it = received.find(sop_instance_uid_of(source));
    ASSERT_NE(it, received.end()) << source << " did not arrive";
    EXPECT_EQ(transfer_syntax_of(it->second), transfer_syntax_of(source)) << source;
    std::string why;
    EXPECT_TRUE(same_data_set(source, it->second, &why)) << why;
  }
}

// ---- duplicates -------------------------------------------------------------------------------

struct DuplicateRun {
  CommandResult first;
  CommandResult second;
  std::vector<ReportLine> second_report;
};

/// Sends `first`, then `second` (two `dicom-gw send` runs) to `gw`.
DuplicateRun send_both(const Gateway& gw, const fs::path& first, const fs::path& second,
                       const TempDir& dir) {
  DuplicateRun run;
  run.first = gw_send(gw.port(), {first}, {"--report", (dir / "first.txt").string()});
  run.second = gw_send(gw.port(), {second}, {"--report", (dir / "second.txt").string()});
  run.second_report = read_report(dir / "second.txt");
  return run;
}

/// A copy of `file` with the same SOP Instance UID and another data set (dcmodify inserts an
/// Image Comments element), so a test can tell which copy the gateway kept.
fs::path second_version(const fs::path& file, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  const fs::path copy = out_dir / file.filename();
  fs::copy_file(file, copy, fs::copy_options::overwrite_existing);
  const CommandResult r =
      run_command({"dcmodify", "-nb", "-i", "(0020,4000)=second version", copy.string()});
  if (!r.ok()) throw std::runtime_error("dcmodify failed: " + r.out + r.err);
  if (sop_instance_uid_of(copy) != sop_instance_uid_of(file) ||
      data_set_bytes(copy) == data_set_bytes(file)) {
    throw std::runtime_error("dcmodify did not make a second version of " + file.string());
  }
  return copy;
}

/// Sends `second` (another copy of the instance `uid`) and checks that it is answered success
/// and is now the one stored copy, in a file the row names; returns that file (nullopt: it is
/// not).
std::optional<fs::path> send_second_copy(const Gateway& gw, const fs::path& second,
                                         const std::string& uid, const TempDir& dir) {
  const CommandResult again =
      gw_send(gw.port(), {second}, {"--report", (dir / "second.txt").string()});
  EXPECT_TRUE(again.ok()) << both(again);
  const auto report = read_report(dir / "second.txt");
  EXPECT_EQ(report.size(), 1u);
  if (report.size() == 1) {
    EXPECT_TRUE(report[0].ok) << report[0].reason;
  }
  EXPECT_EQ(gw.count_instances(), 1);
  EXPECT_EQ(gw.storage_files().size(), 1u) << "the first copy's file was left behind";
  const auto stored = gw.stored_file(uid);
  if (!stored || !fs::is_regular_file(*stored)) {
    ADD_FAILURE() << "the row names no file that is there";
    return std::nullopt;
  }
  EXPECT_TRUE(data_set_bytes(*stored) == data_set_bytes(second)) << "not the second copy";
  return stored;
}

TEST(IngestDuplicates, KeepFirstKeepsOneRowAndAnswersSuccess) {
  TempDir dir("gw-ingest");
  const auto files = generate_dicom(dir / "source", {"--count", "1", "--seed", "21"});
  ASSERT_EQ(files.size(), 1u);
  GatewayOptions options;
  options.duplicates = "keep-first";
  auto gw = Gateway::start(options);
  const fs::path second = second_version(files[0], dir / "second");
  const std::string uid = sop_instance_uid_of(files[0]);
  const DuplicateRun run = send_both(*gw, files[0], second, dir);
  EXPECT_TRUE(run.first.ok()) << both(run.first);
  EXPECT_TRUE(run.second.ok()) << both(run.second);
  ASSERT_EQ(run.second_report.size(), 1u);
  EXPECT_TRUE(run.second_report[0].ok) << run.second_report[0].reason;
  EXPECT_EQ(gw->count_instances(), 1);
  EXPECT_EQ(gw->storage_files().size(), 1u) << "a duplicate left a file behind";
  const auto stored = gw->stored_file(uid);
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(data_set_bytes(*stored) == data_set_bytes(files[0])) << "not the first copy";
  EXPECT_TRUE(gw->spool_files().empty());
}

TEST(IngestDuplicates, RejectFailsTheSecondSendWith0x0111) {
  TempDir dir("gw-ingest");
  const auto files = generate_dicom(dir / "source", {"--count", "1", "--seed", "22"});
  ASSERT_EQ(files.size(), 1u);
  GatewayOptions options;
  options.duplicates = "reject";
  auto gw = Gateway::start(options);
  const DuplicateRun run = send_both(*gw, files[0], second_version(files[0], dir / "second"), dir);
  EXPECT_TRUE(run.first.ok()) << both(run.first);
  EXPECT_EQ(run.second.exit_code, 1) << both(run.second);
  ASSERT_EQ(run.second_report.size(), 1u) << read_text(dir / "second.txt");
  EXPECT_FALSE(run.second_report[0].ok);
  EXPECT_EQ(run.second_report[0].reason.rfind("0x0111", 0), 0u) << run.second_report[0].reason;
  EXPECT_EQ(run.second_report[0].sop_instance_uid, sop_instance_uid_of(files[0]));
  EXPECT_EQ(gw->count_instances(), 1);
  EXPECT_EQ(gw->storage_files().size(), 1u);
  const auto stored = gw->stored_file(sop_instance_uid_of(files[0]));
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(data_set_bytes(*stored) == data_set_bytes(files[0]));
}

TEST(IngestDuplicates, OverwriteKeepsOneRowAndTheNewFile) {
  TempDir dir("gw-ingest");
  const auto files = generate_dicom(dir / "source", {"--count", "1", "--seed", "23"});
  ASSERT_EQ(files.size(), 1u);
  GatewayOptions options;
  options.duplicates = "overwrite";
  auto gw = Gateway::start(options);
  const fs::path second = second_version(files[0], dir / "second");
  const std::string uid = sop_instance_uid_of(files[0]);
  ASSERT_TRUE(gw_send(gw->port(), {files[0]}).ok());
  const auto first_stored = gw->stored_file(uid);
  ASSERT_TRUE(first_stored.has_value());
  ASSERT_TRUE(data_set_bytes(*first_stored) == data_set_bytes(files[0]));
  const auto stored = send_second_copy(*gw, second, uid, dir);
  ASSERT_TRUE(stored.has_value());
  EXPECT_NE(*stored, *first_stored) << "the row still points at the first file";
  EXPECT_FALSE(fs::exists(*first_stored)) << "the first copy's file is still there";
  EXPECT_TRUE(gw->spool_files().empty());
}

/// What happens to a stored copy before the resend.
enum class Damage { kDeleted, kTruncated, kCorrupted };

/// Stores `first` under `policy`, damages its stored file, then sends `second` (same SOP
/// Instance UID): the resend must take its place.
void expect_resend_replaces_lost_copy(const std::string& policy, Damage damage, int seed) {
  TempDir dir("gw-ingest");
  const auto files =
      generate_dicom(dir / "source", {"--count", "1", "--seed", std::to_string(seed)});
  ASSERT_EQ(files.size(), 1u);
  GatewayOptions options;
  options.duplicates = policy;
  auto gw = Gateway::start(options);
  const fs::path second = second_version(files[0], dir / "second");
  const std::string uid = sop_instance_uid_of(files[0]);
  ASSERT_TRUE(gw_send(gw->port(), {files[0]}).ok());
  const auto first_stored = gw->stored_file(uid);
  ASSERT_TRUE(first_stored.has_value());
  switch (damage) {
    case Damage::kDeleted:
      fs::remove(*first_stored);
      break;
    case Damage::kTruncated:
      fs::resize_file(*first_stored, fs::file_size(*first_stored) / 2);
      break;
    case Damage::kCorrupted: {  // bit rot: same size, one byte changed in the pixel data
      std::fstream file(*first_stored, std::ios::in | std::ios::out | std::ios::binary);
      const auto middle = static_cast<std::streamoff>(fs::file_size(*first_stored) / 2);
      file.seekg(middle);
      const char byte = static_cast<char>(file.get() ^ 0x5a);
      file.seekp(middle);
      file.put(byte);
      ASSERT_TRUE(file.good());
      break;
    }
  }
  ASSERT_TRUE(send_second_copy(*gw, second, uid, dir).has_value());
  EXPECT_NE(gw->log().find("event=duplicate_replaces_lost_copy"), std::string::npos);
  // With the copy back, the policy applies again: a third send is a plain duplicate.
  const CommandResult third = gw_send(gw->port(), {files[0]});
  EXPECT_EQ(third.ok(), policy == "keep-first") << both(third);
  const auto still = gw->stored_file(uid);
  ASSERT_TRUE(still.has_value());
  EXPECT_TRUE(data_set_bytes(*still) == data_set_bytes(second));
  EXPECT_TRUE(gw->spool_files().empty());
}

TEST(IngestDuplicates, KeepFirstResendReplacesADeletedCopy) {
  expect_resend_replaces_lost_copy("keep-first", Damage::kDeleted, 24);
}

TEST(IngestDuplicates, KeepFirstResendReplacesATruncatedCopy) {
  expect_resend_replaces_lost_copy("keep-first", Damage::kTruncated, 25);
}

TEST(IngestDuplicates, KeepFirstResendReplacesACorruptedCopy) {
  expect_resend_replaces_lost_copy("keep-first", Damage::kCorrupted, 27);
}

TEST(IngestDuplicates, RejectAcceptsAResendWhoseCopyWasDeleted) {
  expect_resend_replaces_lost_copy("reject", Damage::kDeleted, 26);
}

// ---- accept.calling_ae_titles -----------------------------------------------------------------

TEST(IngestAccept, CallingAeAllowList) {
  GatewayOptions options;
  options.extra_yaml = "accept:\n  calling_ae_titles: [GOOD]\n";
  auto gw = Gateway::start(options);

  const CommandResult bad = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "BAD"});
  EXPECT_FALSE(bad.ok()) << both(bad);
  EXPECT_FALSE(bad.timed_out);
  EXPECT_NE(both(bad).find("Rejected"), std::string::npos) << both(bad);
  EXPECT_NE(both(bad).find("Calling AE Title Not Recognized"), std::string::npos) << both(bad);

  const CommandResult good = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "GOOD"});
  EXPECT_TRUE(good.ok()) << both(good);

  // Our own client: the same allow-list.
  EXPECT_EQ(gw_echo(gw->port(), {"--aet", "BAD"}).exit_code, 1);
  EXPECT_TRUE(gw_echo(gw->port(), {"--aet", "GOOD"}).ok());
  EXPECT_NE(gw->log().find("association_rejected"), std::string::npos);
}

TEST(IngestAccept, AllowListChangesApplyOnReloadWithoutARestart) {
  GatewayOptions options;
  options.extra_yaml = "accept:\n  calling_ae_titles: [GOOD]\n";
  auto gw = Gateway::start(options);
  EXPECT_TRUE(gw_echo(gw->port(), {"--aet", "GOOD"}).ok());
  EXPECT_EQ(gw_echo(gw->port(), {"--aet", "NEW"}).exit_code, 1);

  // The operator lets NEW in and takes GOOD out, then reloads.
  std::string text;
  {
    std::ifstream in(gw->config_path());
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string from = "calling_ae_titles: [GOOD]";
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, from.size(), "calling_ae_titles: [NEW]");
  std::ofstream(gw->config_path(), std::ios::trunc) << text;
  ASSERT_TRUE(gw->process().signal_group(SIGHUP));
  ASSERT_TRUE(
      wait_until([&] { return gw->log().find("event=config_reloaded") != std::string::npos; },
                 std::chrono::seconds(20)))
      << gw->log();

  EXPECT_TRUE(gw_echo(gw->port(), {"--aet", "NEW"}).ok());
  const CommandResult removed = run_echoscu("127.0.0.1", gw->port(), "DICOM_GW", {"-aet", "GOOD"});
  EXPECT_FALSE(removed.ok()) << both(removed);
  EXPECT_NE(both(removed).find("Calling AE Title Not Recognized"), std::string::npos)
      << both(removed);
  EXPECT_EQ(gw->log().find("event=reload_needs_restart"), std::string::npos) << gw->log();
  EXPECT_EQ(gw->stop(), 0);
}

}  // namespace
}  // namespace gw::test
