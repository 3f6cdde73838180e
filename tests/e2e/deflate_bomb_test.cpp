// Hostile data sets through the whole gateway. Deflated Explicit VR Little Endian: a data set built
// to cost the parse gigabytes of memory (millions of empty items, about 1000:1 compressed) is
// refused with 0xC000 and leaves nothing in storage, the next instance of the same `dicom-gw send`
// is stored, a blank multi-frame image that compresses as well is stored, and the gateway's memory
// stays far below what the bomb would have cost. Sequences nested thousands deep are refused
// before DCMTK's recursive parse sees them.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/deflated_writer.h"
#include "support/gateway.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/text.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kBombUid = "1.2.826.0.1.3680043.2.1.9.1";
constexpr const char* kBlankUid = "1.2.826.0.1.3680043.2.1.9.2";
constexpr const char* kSmallUid = "1.2.826.0.1.3680043.2.1.9.3";

/// SOP class and instance, and a private creator for (0009,10xx).
void write_header(DeflatedWriter& writer, const std::string& sop_instance_uid) {
  writer.short_element(0x00080016, "UI", kCtImageStorage);
  writer.short_element(0x00080018, "UI", sop_instance_uid);
  writer.short_element(0x00090010, "LO", "GW TEST ");
}

/// Patient ID, Study and Series Instance UIDs (the index needs the UIDs).
void write_ids(DeflatedWriter& writer) {
  writer.short_element(0x00100020, "LO", "TEST-0001");
  writer.short_element(0x0020000D, "UI", "1.2.826.0.1.3680043.2.1.9.10");
  writer.short_element(0x0020000E, "UI", "1.2.826.0.1.3680043.2.1.9.11");
}

/// A process's resident memory, now or at its peak, in KiB ("VmRSS:" / "VmHWM:").
long memory_kib(int pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return -1;
}

/// The line of a `dicom-gw send --report` file ("OK 0x0000 UID FILE", "FAILED 0xC000 ... UID
/// FILE") for `uid`, or "".
std::string report_line_for(const std::string& report, const std::string& uid) {
  std::istringstream in(report);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + std::string(uid) + " ") != std::string::npos) return line;
  }
  return {};
}

TEST(DeflateBomb, RefusedAloneWhileTheSameSendStoresTheNextInstances) {
  TempDir dir("gw-deflate-bomb");
  const fs::path bomb = dir / "1-bomb.dcm";
  const fs::path blank = dir / "2-blank.dcm";
  const fs::path small = dir / "3-small.dcm";
  {
    // 64 MiB of empty items: about 70 KiB compressed; DCMTK would hold some 2 GiB for them.
    DeflatedWriter writer(bomb, kCtImageStorage, kBombUid, 9);
    write_header(writer, kBombUid);
    writer.empty_items(0x00091020, 8u << 20);
    write_ids(writer);
    ASSERT_TRUE(writer.finish());
  }
  {
    // A blank 512x512 16-bit CT of 160 frames (80 MiB), zlib's default level: about 1000:1.
    DeflatedWriter writer(blank, kCtImageStorage, kBlankUid, 6);
    write_header(writer, kBlankUid);
    write_ids(writer);
    writer.short_element(0x00280008, "IS", "160");
    writer.long_element(0x7FE00010, "OW", 160u * 512 * 512 * 2,
                        [](std::vector<char>& b) { std::fill(b.begin(), b.end(), '\0'); });
    ASSERT_TRUE(writer.finish());
  }
  {
    DeflatedWriter writer(small, kCtImageStorage, kSmallUid, 6);
    write_header(writer, kSmallUid);
    write_ids(writer);
    writer.short_element(0x00204000, "LT", "a small deflated instance");
    ASSERT_TRUE(writer.finish());
  }
  ASSERT_LT(fs::file_size(bomb), 1u << 20);
  ASSERT_GT(160.0 * 512 * 512 * 2 / static_cast<double>(fs::file_size(blank)), 900.0);

  auto gw = Gateway::start();
  const fs::path report = dir / "report.txt";
  const CommandResult sent =
      run_command({gateway_binary().string(), "send", "--no-progress", "--aec", "DICOM_GW",
                   "--report", report.string(), "127.0.0.1", std::to_string(gw->port()),
                   bomb.string(), blank.string(), small.string()},
                  {}, 180s);
  EXPECT_EQ(sent.exit_code, 1) << sent.out << sent.err;  // one instance failed
  const std::string lines = read_text(report);
  EXPECT_EQ(report_line_for(lines, kBombUid).rfind("FAILED 0xC000", 0), 0u) << lines;
  EXPECT_EQ(report_line_for(lines, kBlankUid).rfind("OK 0x0000", 0), 0u) << lines;
  EXPECT_EQ(report_line_for(lines, kSmallUid).rfind("OK 0x0000", 0), 0u) << lines;

  // Stored: the two good instances, nothing of the bomb (no file, no spool leftover).
  EXPECT_EQ(gw->count_instances(), 2);
  EXPECT_FALSE(gw->stored_file(kBombUid).has_value());
  EXPECT_TRUE(gw->stored_file(kBlankUid).has_value());
  EXPECT_TRUE(gw->stored_file(kSmallUid).has_value());
  EXPECT_EQ(gw->storage_files().size(), 2u);
  EXPECT_TRUE(gw->spool_files().empty());

  // Said in plain words, without the patient ID.
  const std::string log = gw->log();
  EXPECT_NE(log.find("event=store_failed"), std::string::npos) << log;
  EXPECT_NE(log.find("deflated data set refused"), std::string::npos) << log;
  EXPECT_EQ(log.find("TEST-0001"), std::string::npos) << log;

  // Still up and answering; it never held anything near the 2 GiB the bomb asks for.
  const CommandResult echo = run_command({gateway_binary().string(), "echo", "--aec", "DICOM_GW",
                                          "127.0.0.1", std::to_string(gw->port())},
                                         {}, 30s);
  EXPECT_TRUE(echo.ok()) << echo.out << echo.err;
  const long peak = memory_kib(gw->process().pid(), "VmHWM:");
  ASSERT_GT(peak, 0);
  EXPECT_LT(peak, 400 * 1024) << "KiB at the gateway's peak";
  RecordProperty("gateway_peak_kib", std::to_string(peak));
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

/// `depth` nested undefined-length sequences, each in one item, as raw Explicit VR Little
/// Endian bytes.
std::vector<std::uint8_t> nested_sequences(int depth) {
  std::vector<std::uint8_t> out;
  const auto add = [&](std::initializer_list<std::uint8_t> bytes) { out.insert(out.end(), bytes); };
  for (int i = 0; i < depth; ++i) {
    add({0x08, 0x00, 0x10, 0x11, 'S', 'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF});  // (0008,1110) SQ
    add({0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF});                  // item
  }
  for (int i = 0; i < depth; ++i) {
    add({0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0});  // item delimitation
    add({0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0});  // sequence delimitation
  }
  return out;
}

// Sequences nested 30,000 deep (about 1 MB, deflated to a few KB): DCMTK's recursive parse
// overflowed its thread's stack and the whole gateway died (SIGSEGV) on one instance. Now the
// instance is refused with 0xC000 and the gateway goes on.
TEST(HostileDataSets, DeeplyNestedSequencesAreRefusedAndTheGatewayStaysUp) {
  TempDir dir("gw-nested");
  const fs::path deep = dir / "1-deep.dcm";
  const fs::path small = dir / "2-small.dcm";
  {
    DeflatedWriter writer(deep, kCtImageStorage, kBombUid, 6);
    write_header(writer, kBombUid);
    write_ids(writer);
    writer.raw(nested_sequences(30000));
    ASSERT_TRUE(writer.finish());
  }
  {
    DeflatedWriter writer(small, kCtImageStorage, kSmallUid, 6);
    write_header(writer, kSmallUid);
    write_ids(writer);
    ASSERT_TRUE(writer.finish());
  }
  auto gw = Gateway::start();
  const fs::path report = dir / "report.txt";
  const CommandResult sent = run_command(
      {gateway_binary().string(), "send", "--no-progress", "--aec", "DICOM_GW", "--report",
       report.string(), "127.0.0.1", std::to_string(gw->port()), deep.string(), small.string()},
      {}, 120s);
  EXPECT_EQ(sent.exit_code, 1) << sent.out << sent.err;
  const std::string lines = read_text(report);
  EXPECT_EQ(report_line_for(lines, kBombUid).rfind("FAILED 0xC000", 0), 0u) << lines;
  EXPECT_EQ(report_line_for(lines, kSmallUid).rfind("OK 0x0000", 0), 0u) << lines;
  EXPECT_NE(gw->log().find("nest more than 128 levels"), std::string::npos) << gw->log();
  EXPECT_TRUE(gw->process().running());
  EXPECT_EQ(gw->count_instances(), 1);
  EXPECT_TRUE(gw->spool_files().empty());
  EXPECT_EQ(gw->stop(), 0) << gw->log();
}

}  // namespace
}  // namespace gw::test
