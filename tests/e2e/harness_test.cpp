// The e2e harness proven against DCMTK itself (no gateway): processes, ports, DCMTK wrappers
// and the synthetic data generator.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "support/dcmtk_tools.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_data.h"

namespace gw::test {
namespace {

using Clock = std::chrono::steady_clock;

/// Alive = exists and is not a zombie (an orphan's zombie waits for init to reap it).
bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return false;
  const auto paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() && content[paren + 2] != 'Z';
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// storescp names what it receives "<modality>.<SOP Instance UID>"; map UID → file.
std::map<std::string, std::filesystem::path> by_sop_instance_uid(
    const std::vector<std::filesystem::path>& received) {
  std::map<std::string, std::filesystem::path> out;
  for (const auto& f : received) {
    const std::string name = f.filename().string();
    out[name.substr(name.find('.') + 1)] = f;
  }
  return out;
}

/// The first value of attribute `name` (a DCMTK dictionary name) in `file`.
std::string tag_value(const std::filesystem::path& file, const std::string& name) {
  const std::string dump = dcmdump(file, {"-Un", "+P", name, "-s"});
  const auto open = dump.find('[');
  const auto close = dump.find(']', open);
  return open == std::string::npos ? std::string() : dump.substr(open + 1, close - open - 1);
}

std::string sop_instance_uid(const std::filesystem::path& file) {
  const std::string uid = sop_instance_uid_of(file);
  EXPECT_EQ(uid, tag_value(file, "SOPInstanceUID")) << file;
  return uid;
}

/// Sends `files` to a fresh storescp and checks each arrived unchanged by value, in its own
/// transfer syntax.
void round_trip(const TempDir& dir, const std::vector<std::filesystem::path>& files) {
  StoreScp scp = start_storescp(0, dir.subdir("received"));
  const CommandResult sent = run_storescu("127.0.0.1", scp.port, files, {"-aec", "STORESCP"});
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  ASSERT_TRUE(wait_until([&] { return scp.received_files().size() >= files.size(); }, 10s));
  const auto received = by_sop_instance_uid(scp.received_files());
  ASSERT_EQ(received.size(), files.size());
  for (const auto& source : files) {
    const std::string uid = sop_instance_uid_of(source);
    const auto it = received.find(uid);
    ASSERT_NE(it, received.end()) << source << " (" << uid << ") did not arrive";
    EXPECT_EQ(transfer_syntax_of(it->second), transfer_syntax_of(source)) << source;
    std::string why;
    EXPECT_TRUE(dcmdump_equal(source, it->second, &why)) << why;
  }
  EXPECT_EQ(scp.process.terminate(), 128 + SIGTERM);
}

// ---- DCMTK round trip -----------------------------------------------------------------------

TEST(HarnessDcmtk, EchoThenStoreTwentyMixedFiles) {
  TempDir dir("gw-harness");
  StoreScp scp = start_storescp(0, dir.subdir("received"));
  ASSERT_TRUE(scp.process.running());

  const CommandResult echo = run_echoscu("127.0.0.1", scp.port, "STORESCP");
  ASSERT_TRUE(echo.ok()) << echo.out << echo.err;

  const auto files = generate_dicom(dir / "source", {"--count", "20", "--mix", "--seed", "20"});
  ASSERT_EQ(files.size(), 20u);
  std::set<std::string> syntaxes;
  for (const auto& f : files) syntaxes.insert(transfer_syntax_of(f));
  EXPECT_GE(syntaxes.size(), 8u) << "--mix should cover most transfer syntaxes in 20 files";

  const CommandResult sent = run_storescu("127.0.0.1", scp.port, files, {"-aec", "STORESCP"});
  ASSERT_TRUE(sent.ok()) << sent.out << sent.err;
  ASSERT_TRUE(wait_until([&] { return scp.received_files().size() >= 20; }, 10s));
  const auto received = by_sop_instance_uid(scp.received_files());
  ASSERT_EQ(received.size(), 20u);
  for (const auto& source : files) {
    const auto it = received.find(sop_instance_uid(source));
    ASSERT_NE(it, received.end()) << source << " did not arrive";
    EXPECT_EQ(transfer_syntax_of(it->second), transfer_syntax_of(source)) << source;
    std::string why;
    EXPECT_TRUE(dcmdump_equal(source, it->second, &why)) << why;
  }
}

TEST(HarnessDcmtk, EveryKindAndSyntaxIsValidAndSendable) {
  TempDir dir("gw-harness");
  // One full --mix cycle: every SOP class × transfer syntax pair once.
  const auto files = generate_dicom(
      dir / "source", {"--count", "150", "--mix", "--seed", "150", "--size-kib", "16"});
  ASSERT_EQ(files.size(), 150u);
  // dcmdump reads every file without an error or a warning (one process: DCMTK tools load
  // their data dictionary at start-up, ~30 ms each).
  std::vector<std::string> argv = {"dcmdump"};
  for (const auto& f : files) argv.push_back(f.string());
  const CommandResult dump = run_command(argv);
  EXPECT_TRUE(dump.ok() && dump.err.empty()) << dump.err;
  round_trip(dir, files);
}

TEST(HarnessDcmtk, DcmdumpEqualSeesDifferences) {
  TempDir dir("gw-harness");
  const auto files = generate_dicom(dir / "source", {"--count", "2", "--seed", "3"});
  ASSERT_EQ(files.size(), 2u);
  std::string why;
  EXPECT_TRUE(dcmdump_equal(files[0], files[0], &why)) << why;
  EXPECT_FALSE(dcmdump_equal(files[0], files[1], &why));
  EXPECT_NE(why.find("differ"), std::string::npos) << why;

  // A truncated file is never equal, not even to itself.
  const auto truncated = dir / "truncated.dcm";
  std::filesystem::copy_file(files[0], truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(files[0]) / 2);
  EXPECT_FALSE(dcmdump_equal(truncated, truncated, &why));
}

TEST(HarnessDcmtk, StorescpOnAGivenPortAndWithoutFork) {
  TempDir dir("gw-harness");
  const std::uint16_t port = free_tcp_port();
  StoreScpOptions options;
  options.fork = false;
  options.aet = "ONEATATIME";
  StoreScp scp = start_storescp(port, dir.subdir("received"), {}, options);
  EXPECT_EQ(scp.port, port);
  EXPECT_TRUE(run_echoscu("127.0.0.1", port, "ONEATATIME").ok());
  EXPECT_TRUE(
      std::filesystem::exists(dir / "logs" / ("storescp-" + std::to_string(port) + ".stderr")));
  EXPECT_TRUE(scp.received_files().empty());
}

// ---- gen_dicom --------------------------------------------------------------------------------

TEST(GenDicom, SameSeedSameBytes) {
  TempDir dir("gw-harness");
  const std::vector<std::string> args = {
      "--count",    "15", "--mix",     "--seed", "42",
      "--size-kib", "8",  "--studies", "3",      "--series-per-study",
      "2"};
  const auto a = generate_dicom(dir / "a", args);
  const auto b = generate_dicom(dir / "b", args);
  ASSERT_EQ(a.size(), 15u);
  ASSERT_EQ(b.size(), 15u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(read_text(a[i]), read_text(b[i])) << a[i] << " vs " << b[i];
  }
  const auto c = generate_dicom(dir / "c", {"--count", "1", "--seed", "43"});
  EXPECT_NE(sop_instance_uid(a[0]), sop_instance_uid(c[0]));
  EXPECT_EQ(sop_instance_uid(a[0]).rfind("2.25.", 0), 0u);
}

TEST(GenDicom, StudiesAndSeriesAndNoPatientData) {
  TempDir dir("gw-harness");
  const auto files = generate_dicom(
      dir / "s", {"--count", "12", "--studies", "3", "--series-per-study", "2", "--seed", "5"});
  std::set<std::string> studies;
  std::set<std::string> series;
  for (const auto& f : files) {
    studies.insert(tag_value(f, "StudyInstanceUID"));
    series.insert(tag_value(f, "SeriesInstanceUID"));
    EXPECT_EQ(tag_value(f, "PatientName").rfind("TEST^PATIENT^", 0), 0u);
    EXPECT_EQ(tag_value(f, "PatientID").rfind("GWTEST", 0), 0u);
  }
  EXPECT_EQ(studies.size(), 3u);
  EXPECT_EQ(series.size(), 6u);
}

TEST(GenDicom, SizeKibIsApproximatelyHonoured) {
  TempDir dir("gw-harness");
  struct Case {
    const char* sop_class;
    const char* syntax;
    long kib;
  };
  for (const Case& c : {Case{"ct", "ele", 512}, Case{"xa", "ele", 4096}, Case{"mr", "rle", 256},
                        Case{"ct", "jpeg-lossless", 512}, Case{"usmf", "jpegls", 2048},
                        Case{"cr", "j2k", 1024}, Case{"pdf", "ele", 100}, Case{"sr", "ile", 64}}) {
    const auto out = dir / (std::string(c.sop_class) + "-" + c.syntax);
    const auto files =
        generate_dicom(out, {"--count", "1", "--sop-class", c.sop_class, "--transfer-syntax",
                             c.syntax, "--size-kib", std::to_string(c.kib), "--seed", "9"});
    ASSERT_EQ(files.size(), 1u);
    const double kib = static_cast<double>(std::filesystem::file_size(files[0])) / 1024.0;
    EXPECT_NEAR(kib, static_cast<double>(c.kib), 0.25 * static_cast<double>(c.kib))
        << c.sop_class << " " << c.syntax;
  }
}

// ---- Process ----------------------------------------------------------------------------------

TEST(Process, WaitForExitReturnsTheExitCode) {
  Process p = Process::start({"sh", "-c", "exit 7"});
  EXPECT_EQ(p.wait_for_exit(5s), 7);
  EXPECT_FALSE(p.running());
}

TEST(Process, WaitForExitTimesOutOnARunningChild) {
  Process p = Process::start({"sleep", "100"});
  const auto start = Clock::now();
  EXPECT_EQ(p.wait_for_exit(100ms), std::nullopt);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_TRUE(p.running());
}

TEST(Process, TerminateStopsAndReaps) {
  Process p = Process::start({"sleep", "100"});
  const pid_t pid = p.pid();
  EXPECT_EQ(p.terminate(2s), 128 + SIGTERM);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_EQ(::kill(pid, 0), -1);  // reaped: not even a zombie of ours
}

TEST(Process, TerminateEscalatesToSigkill) {
  // The shell and its sleep both ignore SIGTERM (ignored dispositions survive exec).
  TempDir dir("gw-harness");
  Process p = Process::start({"sh", "-c", "trap '' TERM; echo ready; sleep 100"}, {}, dir / "logs");
  ASSERT_TRUE(wait_until([&] { return p.read_stdout() == "ready\n"; }, 5s));
  const auto start = Clock::now();
  EXPECT_EQ(p.terminate(300ms), 128 + SIGKILL);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(Process, Kill9) {
  Process p = Process::start({"sleep", "100"});
  EXPECT_EQ(p.kill9(), 128 + SIGKILL);
  EXPECT_EQ(p.kill9(), 128 + SIGKILL);  // idempotent
}

TEST(Process, DestructorKillsTheWholeProcessGroup) {
  TempDir dir("gw-harness");
  const auto pid_file = dir / "grandchild.pid";
  pid_t grandchild = -1;
  {
    Process p =
        Process::start({"sh", "-c", "sleep 100 & echo $! > " + pid_file.string() + "; wait"});
    ASSERT_TRUE(wait_until([&] { return !read_text(pid_file).empty(); }, 5s));
    grandchild = static_cast<pid_t>(std::stol(read_text(pid_file)));
    EXPECT_TRUE(process_alive(grandchild));
  }
  EXPECT_TRUE(wait_until([&] { return !process_alive(grandchild); }, 5s));
}

TEST(Process, EnvironmentWorkingDirAndLogs) {
  TempDir dir("gw-harness");
  ProcessOptions options;
  options.argv = {"sh", "-c", "echo \"$GW_FOO $TCP_NODELAY\"; pwd; echo oops >&2"};
  options.env = {{"GW_FOO", "bar"}};
  options.working_dir = dir.path();
  options.log_dir = dir / "logs";
  options.log_name = "shell";
  Process p = Process::start(std::move(options));
  EXPECT_EQ(p.wait_for_exit(5s), 0);
  EXPECT_EQ(p.stdout_path(), dir / "logs" / "shell.stdout");
  EXPECT_EQ(p.read_stdout(), "bar 1\n" + dir.path().string() + "\n");
  EXPECT_EQ(p.read_stderr(), "oops\n");
}

TEST(Process, TcpNodelayCanBeOverridden) {
  const CommandResult r = run_command({"sh", "-c", "echo $TCP_NODELAY"}, {{"TCP_NODELAY", "0"}});
  EXPECT_EQ(r.out, "0\n");
}

TEST(Process, StartThrowsForAMissingProgram) {
  EXPECT_THROW(Process::start({"/nonexistent/program"}), std::system_error);
  EXPECT_THROW(Process::start({"gw-no-such-program-anywhere"}), std::system_error);
  ProcessOptions options;
  options.argv = {"true"};
  options.working_dir = "/nonexistent/dir";
  EXPECT_THROW(Process::start(std::move(options)), std::system_error);
}

TEST(Process, MoveKeepsOwnership) {
  Process a = Process::start({"sleep", "100"});
  const pid_t pid = a.pid();
  Process b = std::move(a);
  EXPECT_EQ(b.pid(), pid);
  EXPECT_TRUE(b.running());
  a = Process::start({"sleep", "100"});
  const pid_t other = a.pid();
  a = std::move(b);  // kills and reaps `other`
  EXPECT_FALSE(process_alive(other));
  EXPECT_EQ(a.pid(), pid);
}

// ---- run_command ------------------------------------------------------------------------------

TEST(RunCommand, CapturesOutputAndExitCode) {
  const CommandResult r = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(run_command({"true"}).ok());
}

TEST(RunCommand, TimeoutKillsSleep100) {
  const auto start = Clock::now();
  const CommandResult r = run_command({"sleep", "100"}, {}, 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(RunCommand, TimeoutAlsoKillsGrandchildrenHoldingThePipes) {
  TempDir dir("gw-harness");
  const auto pid_file = dir / "grandchild.pid";
  const auto start = Clock::now();
  const CommandResult r = run_command(
      {"sh", "-c", "sleep 100 & echo $! > " + pid_file.string() + "; exit 0"}, {}, 500ms);
  EXPECT_TRUE(r.timed_out);  // the grandchild keeps stdout open, so the command is not done
  EXPECT_LT(Clock::now() - start, 5s);
  const pid_t grandchild = static_cast<pid_t>(std::stol(read_text(pid_file)));
  EXPECT_TRUE(wait_until([&] { return !process_alive(grandchild); }, 5s));
}

TEST(RunCommand, LargeOutputOnBothStreams) {
  const CommandResult r = run_command(
      {"sh", "-c", "head -c 3000000 /dev/zero; head -c 2000000 /dev/zero >&2"}, {}, 30s);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out.size(), 3000000u);
  EXPECT_EQ(r.err.size(), 2000000u);
}

// ---- net, poll, temp dir, paths ---------------------------------------------------------------

TEST(Net, FreePortThenWaitForPort) {
  const std::uint16_t port = free_tcp_port();
  ASSERT_NE(port, 0);
  EXPECT_FALSE(wait_for_port(port, 50ms));

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  EXPECT_TRUE(wait_for_port(port, 2s));
  ::close(fd);
}

TEST(Poll, WaitUntilIsBounded) {
  int calls = 0;
  EXPECT_TRUE(wait_until([&] { return ++calls == 3; }, 5s, 1ms));
  const auto start = Clock::now();
  EXPECT_FALSE(wait_until([] { return false; }, 50ms));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 2s);
}

TEST(TempDirTest, RemovedUnlessKept) {
  std::filesystem::path path;
  {
    TempDir dir("gw-harness");
    path = dir.path();
    EXPECT_EQ(path.string().rfind("/tmp/gw-harness-", 0), 0u);
    std::ofstream(dir / "file") << "x";
    EXPECT_TRUE(std::filesystem::is_directory(dir.subdir("a/b")));
  }
  EXPECT_FALSE(std::filesystem::exists(path));

  ::setenv("GW_KEEP_TEST_DIRS", "1", 1);
  {
    TempDir dir("gw-harness");
    path = dir.path();
  }
  ::unsetenv("GW_KEEP_TEST_DIRS");
  EXPECT_TRUE(std::filesystem::exists(path));
  std::filesystem::remove_all(path);
}

TEST(Paths, BinariesExist) {
  EXPECT_TRUE(std::filesystem::exists(gen_dicom_binary())) << gen_dicom_binary();
  EXPECT_TRUE(std::filesystem::exists(gateway_binary())) << gateway_binary();
  EXPECT_EQ(test_tool_dir(), gen_dicom_binary().parent_path());
}

TEST(TransferSyntaxOf, ReadsTheMetaHeader) {
  TempDir dir("gw-harness");
  const auto files = generate_dicom(
      dir / "s", {"--count", "1", "--transfer-syntax", "jpeg-lossless", "--seed", "1"});
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(transfer_syntax_of(files[0]), "1.2.840.10008.1.2.4.70");
  EXPECT_EQ(storescu_proposal_flag("1.2.840.10008.1.2.4.70"), "-xs");
  std::ofstream(dir / "not-dicom") << "hello";
  EXPECT_EQ(transfer_syntax_of(dir / "not-dicom"), "");
  EXPECT_EQ(transfer_syntax_of(dir / "missing"), "");
}

}  // namespace
}  // namespace gw::test
