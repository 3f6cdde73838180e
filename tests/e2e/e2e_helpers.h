#pragma once
/// Small helpers shared by the robustness e2e tests (malformed PDUs, kill -9, disk full):
/// `dicom-gw echo` against a running gateway, `dicom-gw send --report` lines, and memory
/// figures from /proc.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/paths.h"
#include "support/process.h"

namespace gw::test {

/// `dicom-gw echo --aec AEC 127.0.0.1 PORT` (one C-ECHO), bounded.
inline CommandResult gateway_echo(std::uint16_t port, const std::string& aec = "DICOM_GW",
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return run_command({gateway_binary().string(), "echo", "--aec", aec, "--timeout", "10",
                      "127.0.0.1", std::to_string(port)},
                     {}, timeout);
}

/// One line of a `dicom-gw send --report` file: `OK 0x0000 <uid> <file>` or
/// `FAILED <reason...> <uid> <file>`. The reason may hold spaces; the UID and the file are the
/// last two fields (test data paths hold no spaces).
struct ReportLine {
  bool ok = false;
  std::string status;  ///< "0x0000", "0xA700", ... or the first word of a non-DIMSE reason
  std::string reason;  ///< everything between OK/FAILED and the UID
  std::string sop_instance_uid;
  std::string file;
  std::string raw;
};

/// Parses the complete lines of a report (a line still being written, without its '\n', is
/// skipped). Malformed lines come back with an empty UID, so callers can assert on them.
inline std::vector<ReportLine> read_send_report(const std::filesystem::path& report) {
  std::ifstream in(report);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<ReportLine> lines;
  std::size_t pos = 0;
  while (pos < content.size()) {
    const auto nl = content.find('\n', pos);
    if (nl == std::string::npos) break;
    ReportLine line;
    line.raw = content.substr(pos, nl - pos);
    pos = nl + 1;
    std::vector<std::string> words;
    std::istringstream ws(line.raw);
    for (std::string w; ws >> w;) words.push_back(w);
    if (words.size() >= 4 && (words[0] == "OK" || words[0] == "FAILED")) {
      line.ok = words[0] == "OK";
      line.status = words[1];
      line.file = words[words.size() - 1];
      line.sop_instance_uid = words[words.size() - 2];
      for (std::size_t i = 1; i + 2 < words.size(); ++i) {
        line.reason += (i > 1 ? " " : "") + words[i];
      }
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

/// A "VmRSS"/"VmHWM"/... figure of /proc/<pid>/status in KiB; nullopt if the process is gone.
inline std::optional<std::int64_t> proc_status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream value(line.substr(key.size() + 1));
    std::int64_t kib = 0;
    if (value >> kib) return kib;
  }
  return std::nullopt;
}

}  // namespace gw::test
