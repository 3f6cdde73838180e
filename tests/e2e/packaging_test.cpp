// packaging/: the systemd unit, sysusers.d and tmpfiles.d files. systemd's own tools check them
// (systemd-analyze verify and security, systemd-sysusers and systemd-tmpfiles into a scratch
// root), and the unit's command lines run against the built binary: ExecStart serves,
// ExecReload's signal reloads, KillSignal stops it with exit 0; the weekly storage check's
// timer and service.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "support/dcmtk_tools.h"
#include "support/net.h"
#include "support/paths.h"
#include "support/poll.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/text.h"

namespace gw::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInstalledBinary = "/usr/local/bin/dicom-gw";
constexpr const char* kInstalledConfig = "/etc/dicom-gw/config.yaml";

fs::path packaging_file(const std::string& name) {
  return fs::path(GW_SOURCE_DIR) / "packaging" / name;
}

/// The unit's settings: "Section.Key" → every value given (in order).
std::map<std::string, std::vector<std::string>> parse_unit(const fs::path& path) {
  std::map<std::string, std::vector<std::string>> settings;
  std::istringstream in(read_text(path));
  std::string section;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    settings[section + "." + line.substr(0, eq)].push_back(line.substr(eq + 1));
  }
  return settings;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

/// The unit as installed, but with ExecStart on the binary under test (verify checks it exists).
fs::path unit_for_this_build(const fs::path& dir) {
  const fs::path unit = dir / "dicom-gw.service";
  std::ofstream(unit) << replace_all(read_text(packaging_file("dicom-gw.service")),
                                     kInstalledBinary, gateway_binary().string());
  return unit;
}

std::string both(const CommandResult& r) { return r.out + r.err; }

TEST(Packaging, SystemdVerifiesTheUnit) {
  TempDir dir("gw-pkg");
  const fs::path unit = unit_for_this_build(dir.path());
  const CommandResult verify = run_command({"systemd-analyze", "verify", unit.string()});
  EXPECT_EQ(verify.exit_code, 0) << both(verify);
  // Unknown or misspelt settings are only warnings ("Unknown key ..."), naming the file.
  EXPECT_EQ(verify.err.find("dicom-gw.service"), std::string::npos) << verify.err;
  // systemd's own exposure rating of the sandbox: 2.0 ("OK") or better, out of 10.
  const CommandResult security = run_command(
      {"systemd-analyze", "security", "--offline=true", "--threshold=20", unit.string()});
  EXPECT_EQ(security.exit_code, 0) << both(security);
}

TEST(Packaging, UnitRunsAsItsOwnUserInASandbox) {
  auto unit = parse_unit(packaging_file("dicom-gw.service"));
  const auto one = [&](const std::string& key) {
    const auto& values = unit[key];
    return values.empty() ? std::string("<missing>") : values.back();
  };
  // No sd_notify in the gateway: not Type=notify.
  EXPECT_EQ(one("Service.Type"), "exec");
  EXPECT_EQ(one("Service.User"), "dicom-gw");
  EXPECT_EQ(one("Service.Restart"), "on-failure");
  EXPECT_EQ(one("Service.KillSignal"), "SIGTERM");
  EXPECT_EQ(one("Service.ExecReload"), "/bin/kill -HUP $MAINPID");
  EXPECT_EQ(one("Service.UMask"), "0027");
  EXPECT_EQ(one("Service.NoNewPrivileges"), "yes");
  EXPECT_EQ(one("Service.ProtectSystem"), "strict");
  EXPECT_EQ(one("Service.ProtectHome"), "yes");
  EXPECT_EQ(one("Service.PrivateTmp"), "yes");
  EXPECT_EQ(one("Service.PrivateDevices"), "yes");
  EXPECT_EQ(one("Service.RestrictAddressFamilies"), "AF_INET AF_INET6 AF_UNIX");
  EXPECT_EQ(one("Service.CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
  EXPECT_EQ(one("Service.AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
  EXPECT_NE(one("Service.LimitNOFILE"), "<missing>");
  // Writable: the data directory and the directory of the TLS files the upload API replaces.
  const auto writable = words_of(one("Service.ReadWritePaths"));
  for (const char* path : {"/var/lib/dicom-gw", "/etc/dicom-gw/tls"}) {
    EXPECT_NE(std::find(writable.begin(), writable.end(), path), writable.end()) << path;
  }
  // systemd must not SIGKILL a gateway still finishing its in-flight instances.
  const std::string stop = one("Service.TimeoutStopSec");
  ASSERT_FALSE(stop.empty());
  ASSERT_EQ(stop.back(), 's') << stop;
  EXPECT_GT(std::stol(stop.substr(0, stop.size() - 1)), config::Limits{}.shutdown_grace.count());
  EXPECT_EQ(words_of(one("Service.ExecStart")),
            (std::vector<std::string>{kInstalledBinary, "serve", "--config", kInstalledConfig}));
}

TEST(Packaging, UnitCommandsServeReloadAndStop) {
  TempDir dir("gw-pkg");
  auto unit = parse_unit(packaging_file("dicom-gw.service"));
  ASSERT_EQ(unit["Service.ExecStart"].size(), 1u);
  ASSERT_EQ(unit["Service.ExecReload"].size(), 1u);
  const std::uint16_t port = free_tcp_port();
  const fs::path config = dir / "config.yaml";
  const auto write_config = [&](const std::string& accept) {
    std::ofstream(config) << "data_dir: " << (dir / "data").string() << "\n"
                          << "listeners:\n"
                          << "  - {name: plain, bind: 127.0.0.1, port: " << port << "}\n"
                          << "http:\n  enabled: false\n"
                          << accept;
  };
  write_config("");

  // ExecStart as written, on this build's binary and a test config.
  ProcessOptions po;
  for (const auto& word : words_of(unit["Service.ExecStart"].front())) {
    po.argv.push_back(word == kInstalledBinary   ? gateway_binary().string()
                      : word == kInstalledConfig ? config.string()
                                                 : word);
  }
  po.log_dir = dir / "logs";
  po.log_name = "serve";
  Process gateway = Process::start(std::move(po));
  ASSERT_TRUE(wait_for_port(port, 15s)) << gateway.read_stderr();
  EXPECT_TRUE(run_echoscu("127.0.0.1", port, "DICOM_GW").ok());

  // ExecReload: `/bin/kill -HUP $MAINPID` with the main PID; the new accept list applies.
  write_config("accept:\n  calling_ae_titles: [ONLY_THIS_AE]\n");
  std::vector<std::string> reload = words_of(unit["Service.ExecReload"].front());
  ASSERT_EQ(reload.back(), "$MAINPID");
  reload.back() = std::to_string(gateway.pid());
  EXPECT_TRUE(run_command(reload).ok());
  EXPECT_TRUE(wait_until([&] { return !run_echoscu("127.0.0.1", port, "DICOM_GW").ok(); }, 15s))
      << gateway.read_stderr();
  EXPECT_TRUE(run_echoscu("127.0.0.1", port, "DICOM_GW", {"-aet", "ONLY_THIS_AE"}).ok());
  EXPECT_TRUE(gateway.running());

  // KillSignal=SIGTERM: a clean stop (exit 0, which Restart=on-failure leaves stopped).
  ASSERT_EQ(unit["Service.KillSignal"].front(), "SIGTERM");
  EXPECT_EQ(gateway.terminate(40s), 0) << gateway.read_stderr();
}

/// The weekly storage check: systemd accepts the timer and its service, the service is as
/// sandboxed as the gateway's, and its command line runs `storage verify` on this build.
TEST(Packaging, VerifyTimerRunsTheStorageCheck) {
  TempDir dir("gw-pkg");
  const fs::path service = dir / "dicom-gw-verify.service";
  std::ofstream(service) << replace_all(read_text(packaging_file("dicom-gw-verify.service")),
                                        kInstalledBinary, gateway_binary().string());
  fs::copy_file(packaging_file("dicom-gw-verify.timer"), dir / "dicom-gw-verify.timer");
  const CommandResult verify = run_command(
      {"systemd-analyze", "verify", service.string(), (dir / "dicom-gw-verify.timer").string()});
  EXPECT_EQ(verify.exit_code, 0) << both(verify);
  EXPECT_EQ(verify.err.find("dicom-gw-verify"), std::string::npos) << verify.err;
  const CommandResult security = run_command(
      {"systemd-analyze", "security", "--offline=true", "--threshold=20", service.string()});
  EXPECT_EQ(security.exit_code, 0) << both(security);

  auto timer = parse_unit(packaging_file("dicom-gw-verify.timer"));
  EXPECT_EQ(timer["Timer.Persistent"], std::vector<std::string>{"true"});
  EXPECT_EQ(timer["Timer.OnCalendar"].size(), 1u);
  auto unit = parse_unit(packaging_file("dicom-gw-verify.service"));
  EXPECT_EQ(unit["Service.Type"], std::vector<std::string>{"oneshot"});
  EXPECT_EQ(unit["Service.User"], std::vector<std::string>{"dicom-gw"});
  EXPECT_EQ(unit["Service.ReadWritePaths"], std::vector<std::string>{"/var/lib/dicom-gw"});

  // ExecStart as written, on this build's binary and a test config with an empty archive.
  ASSERT_EQ(unit["Service.ExecStart"].size(), 1u);
  const fs::path config = dir / "config.yaml";
  std::ofstream(config) << "data_dir: " << (dir / "data").string() << "\n"
                        << "listeners:\n  - {name: plain, bind: 127.0.0.1, port: 0}\n"
                        << "http:\n  enabled: false\n";
  fs::create_directories(dir / "data");
  std::vector<std::string> argv;
  for (const auto& word : words_of(unit["Service.ExecStart"].front())) {
    argv.push_back(word == kInstalledBinary   ? gateway_binary().string()
                   : word == kInstalledConfig ? config.string()
                                              : word);
  }
  const CommandResult run = run_command(argv);
  EXPECT_EQ(run.exit_code, 0) << both(run);
  EXPECT_NE(run.out.find("0 rows checked"), std::string::npos) << run.out;
}

/// systemd-sysusers makes the user in a scratch root, systemd-tmpfiles the directories.
TEST(Packaging, SysusersAndTmpfilesMakeTheUserAndDirectories) {
  TempDir root("gw-pkg-root");
  fs::create_directories(root / "etc");
  const CommandResult users = run_command({"systemd-sysusers", "--root=" + root.path().string(),
                                           packaging_file("dicom-gw.sysusers").string()});
  ASSERT_TRUE(users.ok()) << both(users);
  // dicom-gw:x:UID:GID:...:/var/lib/dicom-gw:/usr/sbin/nologin
  uid_t uid = 0;
  gid_t gid = 0;
  std::istringstream passwd(read_text(root / "etc" / "passwd"));
  bool found = false;
  for (std::string line; std::getline(passwd, line);) {
    if (line.rfind("dicom-gw:", 0) != 0) continue;
    std::vector<std::string> fields;
    std::istringstream in(line);
    for (std::string f; std::getline(in, f, ':');) fields.push_back(f);
    ASSERT_EQ(fields.size(), 7u) << line;
    uid = static_cast<uid_t>(std::stoul(fields[2]));
    gid = static_cast<gid_t>(std::stoul(fields[3]));
    EXPECT_NE(uid, 0u);
    EXPECT_EQ(fields[5], "/var/lib/dicom-gw");
    EXPECT_NE(fields[6].find("nologin"), std::string::npos) << line;
    found = true;
  }
  ASSERT_TRUE(found) << read_text(root / "etc" / "passwd");

  const CommandResult dirs =
      run_command({"systemd-tmpfiles", "--root=" + root.path().string(), "--create",
                   packaging_file("dicom-gw.tmpfiles").string()});
  ASSERT_TRUE(dirs.ok()) << both(dirs);
  struct Want {
    const char* path;
    uid_t uid;
  };
  // /etc/dicom-gw: root's (the service reads its config, never writes it).
  for (const Want& w :
       {Want{"etc/dicom-gw", 0}, Want{"etc/dicom-gw/tls", uid}, Want{"var/lib/dicom-gw", uid}}) {
    struct stat st {};
    ASSERT_EQ(::stat((root / w.path).c_str(), &st), 0) << w.path;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << w.path;
    EXPECT_EQ(st.st_mode & 07777, 0750u) << w.path;
    EXPECT_EQ(st.st_uid, w.uid) << w.path;
    EXPECT_EQ(st.st_gid, gid) << w.path;
  }
}

}  // namespace
}  // namespace gw::test
