// Child processes for the kernel tests: spawned with their output captured, waited for with
// timeouts, and killed and reaped when the owner goes out of scope (also when a test fails).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tt {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program path
  std::string netns;              // enter this named network namespace (/run/netns) first
  bool pipe_stdin = false;        // otherwise stdin is /dev/null
  std::string stdout_file;        // stdout goes here instead of a pipe when set
};

// Exit of a process: exactly one of exit_code and signal is set.
struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> signal;
  [[nodiscard]] std::string describe() const;
};

class Process {
public:
  // Throws std::runtime_error when fork/exec setup fails.
  explicit Process(SpawnOptions options);
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  // SIGKILLs the process if it still runs, and reaps it.
  ~Process();

  [[nodiscard]] pid_t pid() const { return pid_; }
  bool running();
  void send_signal(int signo);
  void write_stdin(const std::string& text);
  void close_stdin();

  // Waits up to `timeout` for the exit; nullopt on timeout (the process keeps running).
  std::optional<ExitStatus> wait(Clock::duration timeout);

  // Everything read so far from stdout (when piped) and stderr.
  const std::string& out();
  const std::string& err();
  // Complete stdout lines parsed as JSON; lines that do not parse are skipped.
  std::vector<nlohmann::json> json_lines();
  // Waits until a stdout JSON line satisfies `match`; throws std::runtime_error on timeout or
  // when the process exits without printing it.
  nlohmann::json wait_json(const std::function<bool(const nlohmann::json&)>& match,
                           Clock::duration timeout, const std::string& what);
  // Shorthand: the first line whose "event" is `event`.
  nlohmann::json wait_event(const std::string& event, Clock::duration timeout = 10s);

  [[nodiscard]] std::string command_line() const;

private:
  void pump();

  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::optional<ExitStatus> status_;
  std::string out_;
  std::string err_;
};

// Runs a command to completion (stdin /dev/null); throws if it does not exit within timeout.
struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};
RunResult run(const std::vector<std::string>& argv, Clock::duration timeout = 20s,
              const std::string& netns = {});
// Runs a command that must succeed (exit 0); throws with its stderr otherwise.
void run_checked(const std::vector<std::string>& argv, const std::string& netns = {});

// Lines of `text`, without the trailing empty piece after a final newline.
std::vector<std::string> split_lines(const std::string& text);

}  // namespace tt
