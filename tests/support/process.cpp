#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <thread>

extern char** environ;  // NOLINT: POSIX

namespace gw::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxCapture = 256u << 20;
/// How long we wait for a SIGKILLed child to disappear before giving up on reaping it.
constexpr auto kReapTimeout = 10s;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

/// A file descriptor closed at scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

/// argv[0] as a path: as given if it contains '/', else the first executable match in PATH.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw_errno(ENOENT, "program not found in PATH: " + name);
}

/// This process's environment with `env` applied, plus TCP_NODELAY=1 unless `env` sets it.
std::vector<std::string> build_environment(const Env& env) {
  Env all = env;
  bool has_nodelay = false;
  for (const auto& [key, value] : env) has_nodelay = has_nodelay || key == "TCP_NODELAY";
  if (!has_nodelay) all.emplace_back("TCP_NODELAY", "1");

  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& kv : all) overridden = overridden || kv.first == key;
    if (!overridden) out.push_back(std::move(entry));
  }
  for (const auto& [key, value] : all) out.push_back(key + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string read_file(const std::filesystem::path& path) {
  if (path.empty()) return {};
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string join_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

Process Process::spawn(const std::vector<std::string>& argv, const Env& env,
                       const std::filesystem::path& working_dir, int stdout_fd, int stderr_fd,
                       bool die_with_parent, int stdin_fd) {
  if (argv.empty()) throw_errno(EINVAL, "Process: empty argv");
  // Everything the child needs is prepared before fork(): between fork and exec only
  // async-signal-safe calls are allowed (this process may have other threads).
  std::string program = resolve_program(argv[0]);
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = build_environment(env);
  std::vector<char*> c_args = c_strings(args);
  std::vector<char*> c_envs = c_strings(envs);
  std::string cwd = working_dir.string();

  Fd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (dev_null.get() < 0) throw_errno(errno, "open /dev/null");
  const int in_fd = stdin_fd >= 0 ? stdin_fd : dev_null.get();
  const int out_fd = stdout_fd >= 0 ? stdout_fd : dev_null.get();
  const int err_fd = stderr_fd >= 0 ? stderr_fd : dev_null.get();

  // The child reports a failed chdir/exec through this pipe; exec closes it (O_CLOEXEC).
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  Fd status_read(status_pipe[0]);
  Fd status_write(status_pipe[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, "fork " + program);
  if (pid == 0) {
    auto fail = [&](int err) {
      [[maybe_unused]] ssize_t n = ::write(status_write.get(), &err, sizeof err);
      ::_exit(127);
    };
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    ::setpgid(0, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Ignored signals stay ignored across exec; give the child default dispositions.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) fail(errno);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
      fail(errno);
    }
    ::execve(program.c_str(), c_args.data(), c_envs.data());
    fail(errno);
  }
  // Also set the group here, so it exists before we might signal it (EACCES after exec).
  ::setpgid(pid, pid);
  status_write.reset();

  Process p;
  p.pid_ = pid;
  p.argv_ = argv;
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(status_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    p.kill_group_and_reap(SIGKILL);
    throw_errno(child_errno, "cannot start " + join_argv(argv));
  }
  return p;
}

Process Process::start(ProcessOptions options) {
  std::filesystem::path out_path;
  std::filesystem::path err_path;
  Fd out_fd;
  Fd err_fd;
  if (!options.log_dir.empty()) {
    std::filesystem::create_directories(options.log_dir);
    std::string name = options.log_name;
    if (name.empty() && !options.argv.empty()) {
      name = std::filesystem::path(options.argv[0]).filename().string();
    }
    out_path = options.log_dir / (name + ".stdout");
    err_path = options.log_dir / (name + ".stderr");
    const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    out_fd.reset(::open(out_path.c_str(), flags, 0644));
    if (out_fd.get() < 0) throw_errno(errno, "open " + out_path.string());
    err_fd.reset(::open(err_path.c_str(), flags, 0644));
    if (err_fd.get() < 0) throw_errno(errno, "open " + err_path.string());
  }
  Process p = spawn(options.argv, options.env, options.working_dir, out_fd.get(), err_fd.get(),
                    options.die_with_parent, options.stdin_fd);
  p.stdout_path_ = std::move(out_path);
  p.stderr_path_ = std::move(err_path);
  return p;
}

Process Process::start(std::vector<std::string> argv, Env env, std::filesystem::path log_dir) {
  ProcessOptions options;
  options.argv = std::move(argv);
  options.env = std::move(env);
  options.log_dir = std::move(log_dir);
  return start(std::move(options));
}

Process::Process(Process&& other) noexcept
    : pid_(other.pid_),
      reaped_(other.reaped_),
      exit_code_(other.exit_code_),
      argv_(std::move(other.argv_)),
      stdout_path_(std::move(other.stdout_path_)),
      stderr_path_(std::move(other.stderr_path_)) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = other.pid_;
    reaped_ = other.reaped_;
    exit_code_ = other.exit_code_;
    argv_ = std::move(other.argv_);
    stdout_path_ = std::move(other.stdout_path_);
    stderr_path_ = std::move(other.stderr_path_);
    other.pid_ = -1;
  }
  return *this;
}

Process::~Process() { reset(); }

void Process::reset() noexcept {
  if (pid_ > 0) kill_group_and_reap(SIGKILL);
  pid_ = -1;
}

bool Process::poll_exit() {
  if (exit_code_.has_value()) return true;
  if (pid_ <= 0) return true;
  siginfo_t info{};
  // WNOWAIT: look, don't reap. The zombie keeps the pid and the group id reserved.
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return false;
  }
  if (info.si_pid == 0) return false;
  exit_code_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return true;
}

bool Process::running() { return !poll_exit(); }

std::optional<int> Process::wait_for_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto step = 1ms;
  while (!poll_exit()) {
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<Clock::duration>(step, deadline - now));
    step = std::min(step * 2, std::chrono::milliseconds(20));
  }
  return exit_code_;
}

bool Process::signal_group(int signal) {
  if (pid_ <= 0 || reaped_) return false;
  return ::kill(-pid_, signal) == 0;
}

void Process::kill_group_and_reap(int signal) noexcept {
  if (pid_ <= 0 || reaped_) return;
  // The leader is not reaped yet, so -pid_ is still our group (never a recycled id).
  ::kill(-pid_, signal);
  const auto deadline = Clock::now() + kReapTimeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      if (!exit_code_.has_value()) exit_code_ = decode_status(status);
      break;
    }
    if (r < 0 && errno != EINTR) break;  // ECHILD: someone else reaped it
    if (Clock::now() >= deadline) {
      std::cerr << "gw::test::Process: pid " << pid_ << " did not die after signal " << signal
                << "\n";
      return;
    }
    std::this_thread::sleep_for(2ms);
  }
  reaped_ = true;
}

int Process::terminate(std::chrono::milliseconds grace) {
  if (pid_ > 0 && !reaped_) {
    if (!poll_exit()) {
      ::kill(-pid_, SIGTERM);
      (void)wait_for_exit(grace);
    }
    // Exited or not: SIGKILL whatever is left of the group (forked workers), then reap.
    kill_group_and_reap(SIGKILL);
  }
  return exit_code_.value_or(-1);
}

int Process::kill9() {
  kill_group_and_reap(SIGKILL);
  return exit_code_.value_or(-1);
}

std::string Process::read_stdout() const { return read_file(stdout_path_); }
std::string Process::read_stderr() const { return read_file(stderr_path_); }

std::string Process::describe() const {
  return "pid " + std::to_string(pid_) + ": " + join_argv(argv_);
}

CommandResult run_command(const std::vector<std::string>& argv, const Env& env,
                          std::chrono::milliseconds timeout) {
  return run_command_with_input(argv, {}, env, timeout);
}

CommandResult run_command_with_input(const std::vector<std::string>& argv, const std::string& input,
                                     const Env& env, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // Empty input: /dev/null, as before. Otherwise a memory file holding it, read from offset 0.
  Fd in_fd;
  if (!input.empty()) {
    in_fd.reset(::memfd_create("stdin", MFD_CLOEXEC));
    if (in_fd.get() < 0) throw_errno(errno, "memfd_create");
    std::size_t written = 0;
    while (written < input.size()) {
      const ssize_t n = ::write(in_fd.get(), input.data() + written, input.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno(errno, "write stdin");
      written += static_cast<std::size_t>(n);
    }
    if (::lseek(in_fd.get(), 0, SEEK_SET) != 0) throw_errno(errno, "lseek stdin");
  }
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);

  Process p = Process::spawn(argv, env, {}, out_write.get(), err_write.get(), true, in_fd.get());
  in_fd.reset();
  out_write.reset();
  err_write.reset();

  CommandResult result;
  struct Stream {
    Fd* fd;
    std::string* text;
  };
  Stream streams[] = {{&out_read, &result.out}, {&err_read, &result.err}};
  char buffer[65536];
  // Read both pipes until the child (and anything it forked) closes them, or the deadline.
  for (;;) {
    pollfd fds[2];
    nfds_t n = 0;
    Stream* open_streams[2];
    for (auto& s : streams) {
      if (s.fd->get() < 0) continue;
      fds[n] = pollfd{s.fd->get(), POLLIN, 0};
      open_streams[n++] = &s;
    }
    if (n == 0) break;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    const int r = ::poll(fds, n, static_cast<int>(std::min<long long>(left.count(), 100)));
    if (r < 0 && errno != EINTR) throw_errno(errno, "poll");
    for (nfds_t i = 0; r > 0 && i < n; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        std::string& text = *open_streams[i]->text;
        const std::size_t room = kMaxCapture - std::min(kMaxCapture, text.size());
        text.append(buffer, std::min(room, static_cast<std::size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        open_streams[i]->fd->reset();
      }
    }
  }
  if (!result.timed_out) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!p.wait_for_exit(std::max(left, std::chrono::milliseconds(0))).has_value()) {
      result.timed_out = true;
    }
  }
  const int code = p.kill9();
  result.exit_code = result.timed_out ? -1 : code;
  return result;
}

}  // namespace gw::test
