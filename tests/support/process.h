#pragma once
/// Child processes for e2e tests: the gateway, DCMTK tools, Orthanc, PostgreSQL...
///
/// Every child runs in its own process group, so stopping it also stops whatever it forked
/// (`storescp --fork` workers). A `Process` never outlives its owner: the destructor kills the
/// group and reaps the child. Every wait is bounded by a timeout.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gw::test {

using namespace std::chrono_literals;

/// Extra environment variables for a child: added to (or replacing those of) this process's
/// environment. `TCP_NODELAY=1` is always added unless given here (DCMTK's Nagle trap, see
/// PEERS.md); it is harmless for non-DCMTK programs.
using Env = std::vector<std::pair<std::string, std::string>>;

struct ProcessOptions {
  /// argv[0] is the program: a path, or a name looked up in this process's PATH.
  std::vector<std::string> argv;
  Env env;
  /// Working directory of the child; empty: inherit.
  std::filesystem::path working_dir;
  /// stdout and stderr go to `<log_dir>/<log_name>.stdout|.stderr` (log_dir is created);
  /// empty log_dir: both go to /dev/null.
  std::filesystem::path log_dir;
  /// Default: the file name of argv[0].
  std::string log_name;
  /// Kill the child (SIGKILL) if the thread that started it dies, e.g. when ctest kills a
  /// hung test. Linux ties this to the starting *thread*: turn it off when starting a
  /// long-lived child from a thread that ends before the child should.
  bool die_with_parent = true;
  /// The child's stdin when >= 0 (the caller keeps and closes its own descriptor); otherwise
  /// /dev/null.
  int stdin_fd = -1;
};

/// What a finished command printed and how it ended.
struct CommandResult {
  /// Exit code (128 + signal if a signal ended it); -1 if it timed out and was killed.
  int exit_code = -1;
  bool timed_out = false;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
  bool ok() const { return !timed_out && exit_code == 0; }
};

/// Runs `argv` to completion with a hard timeout: on expiry the whole process group is killed
/// and `timed_out` is set. Output is captured in memory (each stream capped at 256 MiB; for
/// bigger output start a Process with a log dir instead). Throws std::system_error if the
/// program cannot be started.
CommandResult run_command(const std::vector<std::string>& argv, const Env& env = {},
                          std::chrono::milliseconds timeout = 60s);
/// run_command with `input` on the child's standard input (then end of file), e.g. a password
/// for `dicom-gw user add`. The input is in a memory file, so the child reads it at its pace.
CommandResult run_command_with_input(const std::vector<std::string>& argv, const std::string& input,
                                     const Env& env = {}, std::chrono::milliseconds timeout = 60s);

/// A running child process (movable, not copyable).
class Process {
 public:
  /// Starts the child. Throws std::system_error if it cannot be started (program not found,
  /// log dir not writable, ...): a test cannot go on without it.
  static Process start(ProcessOptions options);
  /// Shorthand: argv, env, log dir.
  static Process start(std::vector<std::string> argv, Env env = {},
                       std::filesystem::path log_dir = {});

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  /// Kills the whole process group (SIGKILL) and reaps the child.
  ~Process();

  /// Process id, which is also the process group id. -1 after the child was reaped.
  pid_t pid() const { return pid_; }
  /// True until the child has exited.
  bool running();
  /// Waits up to `timeout` for the child to exit; returns its exit code, or 128 + signal
  /// number if a signal ended it (shell convention); nullopt if it is still running.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);
  /// SIGTERM to the group, waits up to `grace`, then SIGKILL. Returns the exit code as
  /// wait_for_exit does (143 = ended by SIGTERM, 137 = had to be killed).
  int terminate(std::chrono::milliseconds grace = 5s);
  /// SIGKILL to the group, then reaps the child. Returns the exit code (137 unless it had
  /// already exited).
  int kill9();
  /// Sends `signal` to the child's process group (e.g. SIGHUP to reload); false if it has
  /// already been reaped.
  bool signal_group(int signal);

  const std::filesystem::path& stdout_path() const { return stdout_path_; }
  const std::filesystem::path& stderr_path() const { return stderr_path_; }
  /// What the child wrote so far (empty when there is no log dir).
  std::string read_stdout() const;
  std::string read_stderr() const;
  /// Command line, for failure messages.
  std::string describe() const;

 private:
  Process() = default;
  void reset() noexcept;
  /// Records the exit status if the child has exited, without reaping it: the zombie keeps
  /// the pid (and so the group id) from being reused until we kill the group and reap.
  bool poll_exit();
  /// Kills the group (`signal`), then reaps the child (bounded wait).
  void kill_group_and_reap(int signal) noexcept;
  /// Starts a child whose stdin/stdout/stderr are the given descriptors (-1: /dev/null).
  static Process spawn(const std::vector<std::string>& argv, const Env& env,
                       const std::filesystem::path& working_dir, int stdout_fd, int stderr_fd,
                       bool die_with_parent, int stdin_fd = -1);
  friend CommandResult run_command_with_input(const std::vector<std::string>& argv,
                                              const std::string& input, const Env& env,
                                              std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<int> exit_code_;
  std::vector<std::string> argv_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
};

/// "argv[0] argv[1] ..." for messages.
std::string join_argv(const std::vector<std::string>& argv);

}  // namespace gw::test
