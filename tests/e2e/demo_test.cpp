// `dicom-gw demo --dir D`: which directories it takes (its own, a new or an empty one; never
// somebody else's config, never a mode change on a directory it did not make), and the commands
// it prints run as printed; it serves, reuses its directory and serves where it says.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/dcmtk_tools.h"
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

constexpr const char* kMarker = ".dicom-gw-demo";

std::string both(const CommandResult& r) { return r.out + r.err; }

long long count_rows(const fs::path& db_path) {
  sqlite3* db = nullptr;
  long long n = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM instances", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      n = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return n;
}

struct Ports {
  std::uint16_t dicom = free_tcp_port();
  std::uint16_t tls = free_tcp_port();
  std::uint16_t http = free_tcp_port();
};

std::vector<std::string> demo_argv(const fs::path& dir, const Ports& ports, bool serve) {
  std::vector<std::string> argv = {gateway_binary().string(),
                                   "demo",
                                   "--dir",
                                   dir.string(),
                                   "--port",
                                   std::to_string(ports.dicom),
                                   "--tls-port",
                                   std::to_string(ports.tls),
                                   "--http-port",
                                   std::to_string(ports.http)};
  if (!serve) argv.push_back("--no-serve");
  return argv;
}

CommandResult prepare(const fs::path& dir, const Ports& ports) {
  return run_command(demo_argv(dir, ports, false));
}

TEST(Demo, MakesItsDirectoryOwnerAndGroupOnlyAndMarksIt) {
  TempDir tmp("gw-demo");
  const fs::path dir = tmp / "new";
  const Ports ports;
  const CommandResult made = prepare(dir, ports);
  ASSERT_TRUE(made.ok()) << both(made);
  EXPECT_EQ(mode_of(dir), 0750u);
  EXPECT_TRUE(fs::is_regular_file(dir / kMarker));
  // Again: its own directory, config regenerated.
  const CommandResult again = prepare(dir, ports);
  EXPECT_TRUE(again.ok()) << both(again);
}

TEST(Demo, KeepsTheModeOfAnEmptyDirectoryItDidNotMake) {
  TempDir tmp("gw-demo");
  const fs::path dir = tmp / "shared";
  fs::create_directory(dir);
  ASSERT_EQ(::chmod(dir.c_str(), 01777), 0);  // like /tmp: world-writable, sticky
  const Ports ports;
  const CommandResult made = prepare(dir, ports);
  ASSERT_TRUE(made.ok()) << both(made);
  EXPECT_EQ(mode_of(dir), 01777u) << "the demo changed the mode of a directory it did not make";
  EXPECT_TRUE(fs::is_regular_file(dir / "config.yaml"));
  EXPECT_TRUE(fs::is_regular_file(dir / kMarker));
}

TEST(Demo, RefusesANonEmptyDirectoryItDidNotMake) {
  TempDir tmp("gw-demo");
  const fs::path dir = tmp / "etc-dicom-gw";
  fs::create_directory(dir);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  const std::string production = "data_dir: /var/lib/dicom-gw\nlisteners: []\n";
  std::ofstream(dir / "config.yaml") << production;
  const Ports ports;
  const CommandResult refused = prepare(dir, ports);
  EXPECT_EQ(refused.exit_code, 2) << both(refused);
  EXPECT_NE(refused.err.find("refusing"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(kMarker), std::string::npos) << refused.err;
  EXPECT_EQ(read_text(dir / "config.yaml"), production);
  EXPECT_EQ(mode_of(dir), 0755u);
  EXPECT_FALSE(fs::exists(dir / kMarker));
  EXPECT_FALSE(fs::exists(dir / "pki"));
  EXPECT_FALSE(fs::exists(dir / "data"));

  // Not a directory at all: refused too.
  const fs::path file = tmp / "a-file";
  std::ofstream(file) << "x";
  const CommandResult not_dir = prepare(file, ports);
  EXPECT_EQ(not_dir.exit_code, 2) << both(not_dir);
  EXPECT_EQ(read_text(file), "x");
}

/// A directory from a run before the marker existed (config.yaml, data/, pki/, the key) keeps
/// working, and is marked from then on.
TEST(Demo, TakesADirectoryFromAnEarlierDemoWithoutMarker) {
  TempDir tmp("gw-demo");
  const fs::path dir = tmp / "demo";
  const Ports ports;
  ASSERT_TRUE(prepare(dir, ports).ok());
  fs::remove(dir / kMarker);
  ASSERT_TRUE(fs::exists(dir / "db-encryption.key"));
  const CommandResult again = prepare(dir, ports);
  EXPECT_TRUE(again.ok()) << both(again);
  EXPECT_TRUE(fs::is_regular_file(dir / kMarker));
}

/// The "Try:" lines after scripts/demo.sh: `dicom-gw` is not on PATH, so they name this binary;
/// the plain and TLS echo and send lines (the client certificate of the demo PKI) run as printed.
TEST(Demo, PrintedCommandsRunAsPrinted) {
  TempDir tmp("gw-demo");
  const fs::path dir = tmp / "demo";
  const Ports ports;
  ProcessOptions po;
  po.argv = demo_argv(dir, ports, true);
  po.log_dir = tmp / "logs";
  po.log_name = "demo";
  Process demo = Process::start(std::move(po));
  ASSERT_TRUE(wait_for_port(ports.dicom, 15s)) << demo.read_stderr();
  ASSERT_TRUE(wait_for_port(ports.tls, 15s)) << demo.read_stderr();
  const std::string out = demo.read_stdout();

  const auto files = generate_dicom(tmp / "source", {"--count", "2", "--seed", "7"});
  std::vector<std::vector<std::string>> ours;  // our tool's lines, DIR filled in
  std::vector<std::string> echoscu_tls;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    auto words = words_of(line);
    if (words.size() < 2) continue;
    if (words[0] == "echoscu" && line.find("+tls") != std::string::npos) echoscu_tls = words;
    std::error_code ec;
    if (words[1] != "echo" && words[1] != "send") continue;
    EXPECT_TRUE(fs::equivalent(words[0], gateway_binary(), ec)) << line;
    for (auto& w : words) {
      if (w == "DIR") w = (tmp / "source").string();
    }
    ours.push_back(words);
  }
  // echo and send, each plain and over TLS.
  ASSERT_EQ(ours.size(), 4u) << out;
  int tls_lines = 0;
  for (const auto& argv : ours) {
    const bool tls = std::find(argv.begin(), argv.end(), "--tls") != argv.end();
    tls_lines += tls ? 1 : 0;
    if (tls) {
      EXPECT_EQ(argv[argv.size() - (argv[1] == "send" ? 2 : 1)], std::to_string(ports.tls));
    }
    const CommandResult r = run_command(argv);
    EXPECT_TRUE(r.ok()) << both(r);
  }
  EXPECT_EQ(tls_lines, 2) << out;
  // Each send stored the two instances; the second send's are duplicates (kept once).
  EXPECT_EQ(count_rows(dir / "data" / "index.db"), 2);

  ASSERT_FALSE(echoscu_tls.empty()) << out;
  const CommandResult dcmtk = run_command(echoscu_tls);
  EXPECT_TRUE(dcmtk.ok()) << both(dcmtk);
  EXPECT_EQ(demo.terminate(15s), 0) << demo.read_stderr();
}

// ---- demo -------------------------------------------------------------------------------------

struct Demo {
  Process process;
  std::uint16_t port;
};

/// The demo's TLS port defaults to 2762; tests running in parallel each need their own, and the
/// same demo directory keeps the same one (its config must not change between runs).
std::uint16_t tls_port_for(const fs::path& demo_dir) {
  static std::map<std::string, std::uint16_t> ports;
  auto [it, inserted] = ports.try_emplace(demo_dir.string(), 0);
  if (inserted) it->second = free_tcp_port();
  return it->second;
}

/// Likewise for the REST API port (default 8080).
std::uint16_t http_port_for(const fs::path& demo_dir) {
  static std::map<std::string, std::uint16_t> ports;
  auto [it, inserted] = ports.try_emplace(demo_dir.string(), 0);
  if (inserted) it->second = free_tcp_port();
  return it->second;
}

/// The token `dicom-gw demo` prints at its first run ("" when the output has none).
std::string printed_token(const std::string& out) {
  const std::string marker = "admin API token (shown once, valid 30 days): ";
  const auto at = out.find(marker);
  if (at == std::string::npos) return "";
  const auto start = at + marker.size();
  return out.substr(start, out.find('\n', start) - start);
}

Demo start_demo(const fs::path& demo_dir, std::uint16_t port, const fs::path& log_dir,
                const std::string& name) {
  ProcessOptions po;
  po.argv = {gateway_binary().string(),
             "demo",
             "--dir",
             demo_dir.string(),
             "--port",
             std::to_string(port),
             "--tls-port",
             std::to_string(tls_port_for(demo_dir)),
             "--http-port",
             std::to_string(http_port_for(demo_dir))};
  po.log_dir = log_dir;
  po.log_name = name;
  return Demo{Process::start(std::move(po)), port};
}

TEST(Lifecycle, DemoServesAndReusesItsDirectory) {
  TempDir dir("gw-life");
  const fs::path demo_dir = dir / "demo";
  const std::uint16_t port = free_tcp_port();

  Demo demo = start_demo(demo_dir, port, dir / "logs", "demo-1");
  ASSERT_TRUE(wait_for_port(port, 15s)) << demo.process.read_stderr();
  const std::string out = demo.process.read_stdout();
  EXPECT_NE(out.find("echoscu -aec DICOM_GW 127.0.0.1 " + std::to_string(port)), std::string::npos)
      << out;
  EXPECT_NE(out.find("dicom-gw send"), std::string::npos) << out;
  EXPECT_NE(out.find(demo_dir.string()), std::string::npos) << out;
  ASSERT_TRUE(fs::is_regular_file(demo_dir / "config.yaml"));

  const CommandResult echo = run_echoscu("127.0.0.1", port, "DICOM_GW");
  EXPECT_TRUE(echo.ok()) << both(echo);
  // The first run made an admin and printed its API token once; the API takes it.
  const std::string token = printed_token(out);
  ASSERT_FALSE(token.empty()) << out;
  const std::string api = "http://127.0.0.1:" + std::to_string(http_port_for(demo_dir));
  ASSERT_TRUE(wait_for_port(http_port_for(demo_dir), 15s));
  const CommandResult status =
      run_command({"curl", "-sS", "--fail", "--max-time", "10", "-H",
                   "Authorization: Bearer " + token, api + "/api/v1/status"});
  EXPECT_TRUE(status.ok()) << both(status);
  const CommandResult anonymous =
      run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                   api + "/api/v1/status"});
  EXPECT_EQ(anonymous.out, "401");
  const auto files = generate_dicom(dir / "source", {"--count", "3", "--seed", "42"});
  const CommandResult sent =
      run_command({gateway_binary().string(), "send", "--no-progress", "--aec", "DICOM_GW",
                   "127.0.0.1", std::to_string(port), (dir / "source").string()});
  EXPECT_TRUE(sent.ok()) << both(sent);
  EXPECT_EQ(demo.process.terminate(15s), 0) << demo.process.read_stderr();
  const std::string config_before = read_text(demo_dir / "config.yaml");

  // Again on the same directory: same config, the data received before is still there.
  Demo again = start_demo(demo_dir, port, dir / "logs", "demo-2");
  ASSERT_TRUE(wait_for_port(port, 15s)) << again.process.read_stderr();
  EXPECT_EQ(read_text(demo_dir / "config.yaml"), config_before);
  // The token is shown once: a later run says how to make another one.
  const std::string out_again = again.process.read_stdout();
  EXPECT_EQ(printed_token(out_again), "") << out_again;
  EXPECT_NE(out_again.find("dicom-gw user token"), std::string::npos) << out_again;
  EXPECT_TRUE(run_echoscu("127.0.0.1", port, "DICOM_GW").ok());
  EXPECT_EQ(count_rows(demo_dir / "data" / "index.db"), 3);
  EXPECT_EQ(again.process.terminate(15s), 0) << again.process.read_stderr();
}

TEST(Lifecycle, DemoAgainWithAnotherPortServesWhereItSays) {
  TempDir dir("gw-life");
  const fs::path demo_dir = dir / "demo";
  const std::uint16_t first_port = free_tcp_port();
  {
    const CommandResult made = run_command(
        {gateway_binary().string(), "demo", "--dir", demo_dir.string(), "--port",
         std::to_string(first_port), "--tls-port", std::to_string(tls_port_for(demo_dir)),
         "--http-port", std::to_string(http_port_for(demo_dir)), "--no-serve"});
    ASSERT_TRUE(made.ok()) << both(made);
  }
  std::uint16_t second_port = free_tcp_port();
  while (second_port == first_port) second_port = free_tcp_port();
  Demo demo = start_demo(demo_dir, second_port, dir / "logs", "demo");
  // It listens on one of the two ports; whichever, the instructions must name that one.
  ASSERT_TRUE(
      wait_until([&] { return port_accepts(first_port) || port_accepts(second_port); }, 15s))
      << demo.process.read_stderr();
  const std::uint16_t serving = port_accepts(second_port) ? second_port : first_port;
  const std::string out = demo.process.read_stdout();
  EXPECT_NE(out.find("127.0.0.1:" + std::to_string(serving)), std::string::npos)
      << "demo prints port " << second_port << " but serves on " << serving << ":\n"
      << out;
  EXPECT_NE(out.find("echoscu -aec DICOM_GW 127.0.0.1 " + std::to_string(serving)),
            std::string::npos)
      << out;
  EXPECT_EQ(demo.process.terminate(15s), 0);
}

}  // namespace
}  // namespace gw::test
