#include "support/postgres.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/net.h"
#include "support/poll.h"

namespace gw::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// Debian installs the server binaries per major version; 15 is this machine's (PEERS.md).
std::string find_bin_dir() {
  for (const char* dir :
       {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}) {
    if (fs::exists(fs::path(dir) / "postgres")) return dir;
  }
  throw std::runtime_error("PostgreSQL server binaries not found (apt-get install postgresql)");
}

std::string random_hex(std::size_t n) {
  std::random_device rd;
  std::string out;
  constexpr const char* kHex = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) out += kHex[rd() % 16];
  return out;
}

/// Gives `path` (recursively) to the postgres user, who runs the server when we are root.
void give_to_postgres(const fs::path& path) {
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("no `postgres` system user (install postgresql)");
  auto chown_one = [&](const fs::path& p) {
    if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown postgres " + p.string());
    }
  };
  chown_one(path);
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::recursive_directory_iterator(path)) chown_one(entry.path());
  }
}

bool running_as_root() { return ::geteuid() == 0; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<std::string> PostgresServer::as_postgres(std::vector<std::string> argv) const {
  if (!running_as_root()) return argv;
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::unique_ptr<PostgresServer> PostgresServer::start() {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->bin_dir_ = find_bin_dir();
  server->password_ = random_hex(24);
  const fs::path dir = server->dir_.path();
  fs::create_directories(dir / "socket");
  fs::create_directories(dir / "logs");
  std::ofstream(dir / "pwfile") << server->password_ << "\n";
  if (running_as_root()) give_to_postgres(dir);

  auto init = run_command(
      server->as_postgres({server->bin_dir_ + "/initdb", "-D", (dir / "data").string(), "-U",
                           server->user_, "--pwfile=" + (dir / "pwfile").string(),
                           "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                           "--locale=C.UTF-8", "--no-sync", "--no-instructions"}),
      {}, 120s);
  if (!init.ok()) {
    throw std::runtime_error("initdb failed (" + std::to_string(init.exit_code) + "):\n" +
                             init.out + init.err);
  }
  fs::remove(dir / "pwfile");
  constexpr int kAttempts = 3;  // a free port may be taken before the server binds it
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (server->try_start()) return server;
  }
  throw std::runtime_error("PostgreSQL did not start:\n" + server->log());
}

bool PostgresServer::try_start() {
  const fs::path dir = dir_.path();
  port_ = free_tcp_port();
  ProcessOptions o;
  // A shell starts the server and waits for it; a second shell reads the lifeline pipe, whose
  // only write end this process holds (close-on-exec), and stops the server (SIGINT: fast
  // shutdown) at end of file. A test binary that is killed (ctest's timeout) thus leaves no
  // server behind; PR_SET_PDEATHSIG cannot do that here (it follows the starting thread, and
  // runuser drops it).
  constexpr const char* kWrapper =
      "exec 3<&0 0</dev/null; \"$@\" 3<&- & pid=$!; "
      "(read -r line <&3; kill -INT \"$pid\" 2>/dev/null) & exec 3<&-; wait \"$pid\"";
  int pipe_fds[2] = {-1, -1};
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  // fsync off: a test database need not survive a power cut, and it saves the shared disk.
  o.argv = as_postgres({"/bin/sh", "-c", kWrapper, "postgres-lifeline", bin_dir_ + "/postgres",
                        "-D", (dir / "data").string(), "-p", std::to_string(port_), "-k",
                        (dir / "socket").string(), "-c", "listen_addresses=127.0.0.1", "-c",
                        "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"});
  o.log_dir = dir / "logs";
  o.log_name = "postgres";
  o.stdin_fd = pipe_fds[0];
  // A shared server outlives the test that started it (the static in shared()).
  o.die_with_parent = false;
  try {
    process_ = std::make_unique<Process>(Process::start(o));
  } catch (...) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw;
  }
  ::close(pipe_fds[0]);
  if (lifeline_ >= 0) ::close(lifeline_);
  lifeline_ = pipe_fds[1];
  const bool ready = wait_until(
      [&] {
        if (!process_->running()) return true;
        return psql("postgres", "SELECT 1").ok();
      },
      30s, 50ms);
  if (ready && process_->running()) return true;
  if (ready) {  // exited: most likely the port was taken
    process_.reset();
    return false;
  }
  throw std::runtime_error("PostgreSQL did not accept connections within 30 s:\n" + log());
}

PostgresServer& PostgresServer::shared() {
  static std::unique_ptr<PostgresServer> server = start();
  return *server;
}

PostgresServer::~PostgresServer() { stop(); }

void PostgresServer::stop() noexcept {
  if (!process_) return;
  // The postmaster may be a child of runuser: signal it by its own PID (postmaster.pid's
  // first line). SIGINT is the fast shutdown: clients are disconnected, not waited for.
  pid_t postmaster = -1;
  try {
    std::ifstream pid_file(dir_.path() / "data" / "postmaster.pid");
    long pid = 0;
    if (pid_file >> pid && pid > 0) postmaster = static_cast<pid_t>(pid);
  } catch (...) {
  }
  if (postmaster > 0) ::kill(postmaster, SIGINT);
  if (!process_->wait_for_exit(15s)) process_->kill9();
  if (postmaster > 0 && ::kill(postmaster, 0) == 0) ::kill(postmaster, SIGKILL);
  if (lifeline_ >= 0) {  // lets the watching shell go
    ::close(lifeline_);
    lifeline_ = -1;
  }
  process_.reset();
}

std::string PostgresServer::create_database() {
  const std::string name =
      "gwtest_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  auto created = psql("postgres", "CREATE DATABASE " + name);
  if (!created.ok()) throw std::runtime_error("CREATE DATABASE failed: " + created.err);
  return name;
}

std::string PostgresServer::url(const std::string& dbname) const {
  return "postgresql://" + user_ + ":" + password_ + "@127.0.0.1:" + std::to_string(port_) + "/" +
         dbname;
}

std::string PostgresServer::url_without_password(const std::string& dbname) const {
  return "postgresql://" + user_ + "@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

CommandResult PostgresServer::psql(const std::string& dbname, const std::string& sql) const {
  return run_command({bin_dir_ + "/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                      (dir_.path() / "socket").string(), "-p", std::to_string(port_), "-U", user_,
                      "-d", dbname, "-c", sql},
                     {{"PGCONNECT_TIMEOUT", "5"}}, 60s);
}

CommandResult PostgresServer::pg_dump(const std::string& dbname) const {
  return run_command({bin_dir_ + "/pg_dump", "-h", (dir_.path() / "socket").string(), "-p",
                      std::to_string(port_), "-U", user_, dbname},
                     {{"PGCONNECT_TIMEOUT", "5"}}, 60s);
}

std::string PostgresServer::log() const {
  return read_file(dir_.path() / "logs" / "postgres.stderr") +
         read_file(dir_.path() / "logs" / "postgres.stdout");
}

}  // namespace gw::test
