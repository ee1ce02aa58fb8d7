#include "support/process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace tt {
namespace {

[[noreturn]] void child_fail(const char* what) {
  // Only async-signal-safe calls between fork and exec.
  const char* reason = std::strerror(errno);
  (void)!write(STDERR_FILENO, "spawn: ", 7);
  (void)!write(STDERR_FILENO, what, std::strlen(what));
  (void)!write(STDERR_FILENO, ": ", 2);
  (void)!write(STDERR_FILENO, reason, std::strlen(reason));
  (void)!write(STDERR_FILENO, "\n", 1);
  _exit(127);
}

void read_available(int& fd, std::string& into) {
  if (fd < 0) {
    return;
  }
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      into.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR)) {
      continue;
    }
    if (n == 0) {
      close(fd);
      fd = -1;
    }
    return;  // EAGAIN or EOF
  }
}

ExitStatus decode(int raw) {
  ExitStatus s;
  if (WIFEXITED(raw)) {
    s.exit_code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    s.signal = WTERMSIG(raw);
  }
  return s;
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exit_code) {
    return "exit " + std::to_string(*exit_code);
  }
  if (signal) {
    return std::string("killed by ") + strsignal(*signal);
  }
  return "unknown";
}

Process::Process(SpawnOptions options) : argv_(std::move(options.argv)) {
  int in_pipe[2] = {-1, -1};
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if ((options.pipe_stdin && pipe2(in_pipe, O_CLOEXEC) != 0) ||
      (options.stdout_file.empty() && pipe2(out_pipe, O_CLOEXEC) != 0) ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  int netns_fd = -1;
  if (!options.netns.empty()) {
    netns_fd = open(("/run/netns/" + options.netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
      throw std::runtime_error("open netns " + options.netns + ": " + std::strerror(errno));
    }
  }
  int out_file = -1;
  if (!options.stdout_file.empty()) {
    out_file = open(options.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_file < 0) {
      throw std::runtime_error("open " + options.stdout_file + ": " + std::strerror(errno));
    }
  }
  std::vector<char*> args;
  for (std::string& a : argv_) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);

  pid_ = fork();
  if (pid_ < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    // Own process group, so a terminal's ^C reaches the test runner only.
    setpgid(0, 0);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
      child_fail("setns");
    }
    const int in = options.pipe_stdin ? in_pipe[0] : open("/dev/null", O_RDONLY);
    const int out = out_file >= 0 ? out_file : out_pipe[1];
    if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(err_pipe[1], STDERR_FILENO) < 0) {
      child_fail("dup2");
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execvp(args[0], args.data());
    child_fail(args[0]);
  }
  if (netns_fd >= 0) {
    close(netns_fd);
  }
  if (out_file >= 0) {
    close(out_file);
  }
  if (options.pipe_stdin) {
    close(in_pipe[0]);
    stdin_fd_ = in_pipe[1];
  }
  if (out_pipe[0] >= 0) {
    close(out_pipe[1]);
    stdout_fd_ = out_pipe[0];
    fcntl(stdout_fd_, F_SETFL, O_NONBLOCK);
  }
  close(err_pipe[1]);
  stderr_fd_ = err_pipe[0];
  fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);
}

Process::Process(Process&& other) noexcept
    : argv_(std::move(other.argv_)), pid_(other.pid_), stdin_fd_(other.stdin_fd_),
      stdout_fd_(other.stdout_fd_), stderr_fd_(other.stderr_fd_), status_(other.status_),
      out_(std::move(other.out_)), err_(std::move(other.err_)) {
  other.pid_ = -1;
  other.stdin_fd_ = other.stdout_fd_ = other.stderr_fd_ = -1;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    kill(pid_, SIGKILL);
    int raw = 0;
    while (waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
    }
  }
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) {
      close(fd);
    }
  }
}

void Process::pump() {
  read_available(stdout_fd_, out_);
  read_available(stderr_fd_, err_);
}

bool Process::running() {
  if (status_) {
    return false;
  }
  int raw = 0;
  if (waitpid(pid_, &raw, WNOHANG) == pid_) {
    status_ = decode(raw);
    pump();
    return false;
  }
  return true;
}

void Process::send_signal(int signo) {
  if (!status_) {
    kill(pid_, signo);
  }
}

// NOLINTNEXTLINE(readability-make-member-function-const): writes to the child's stdin
void Process::write_stdin(const std::string& text) {
  if (stdin_fd_ < 0 ||
      write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("cannot write to stdin of " + command_line());
  }
}

void Process::close_stdin() {
  if (stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

std::optional<ExitStatus> Process::wait(Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pump();
    if (!running()) {
      // Whatever is still in the pipes, from the process or a child that kept them open.
      for (int i = 0; i < 20 && (stdout_fd_ >= 0 || stderr_fd_ >= 0); ++i) {
        pump();
        std::this_thread::sleep_for(5ms);
      }
      return status_;
    }
    if (Clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(5ms);
  }
}

const std::string& Process::out() {
  pump();
  return out_;
}

const std::string& Process::err() {
  pump();
  return err_;
}

std::vector<nlohmann::json> Process::json_lines() {
  pump();
  std::vector<nlohmann::json> lines;
  std::size_t begin = 0;
  for (std::size_t end = out_.find('\n'); end != std::string::npos;
       begin = end + 1, end = out_.find('\n', begin)) {
    auto parsed =
        nlohmann::json::parse(out_.begin() + static_cast<std::ptrdiff_t>(begin),
                              out_.begin() + static_cast<std::ptrdiff_t>(end), nullptr, false);
    if (!parsed.is_discarded()) {
      lines.push_back(std::move(parsed));
    }
  }
  return lines;
}

nlohmann::json Process::wait_json(const std::function<bool(const nlohmann::json&)>& match,
                                  Clock::duration timeout, const std::string& what) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    for (const nlohmann::json& line : json_lines()) {
      if (match(line)) {
        return line;
      }
    }
    const bool alive = running();
    if (!alive || Clock::now() >= deadline) {
      if (!alive) {
        // One last look: the line may have arrived with the exit.
        for (const nlohmann::json& line : json_lines()) {
          if (match(line)) {
            return line;
          }
        }
      }
      throw std::runtime_error("waiting for " + what + " from `" + command_line() + "`: " +
                               (alive ? "timed out" : "it exited (" + status_->describe() + ")") +
                               "\nstdout:\n" + out_ + "stderr:\n" + err_);
    }
    std::this_thread::sleep_for(5ms);
  }
}

nlohmann::json Process::wait_event(const std::string& event, Clock::duration timeout) {
  return wait_json([&](const nlohmann::json& j) { return j.value("event", "") == event; }, timeout,
                   "event " + event);
}

std::string Process::command_line() const {
  std::string text;
  for (const std::string& a : argv_) {
    text += (text.empty() ? "" : " ") + a;
  }
  return text;
}

RunResult run(const std::vector<std::string>& argv, Clock::duration timeout,
              const std::string& netns) {
  Process p(SpawnOptions{argv, netns, false, {}});
  const auto status = p.wait(timeout);
  if (!status) {
    throw std::runtime_error("`" + p.command_line() + "` did not exit in time");
  }
  return {*status, p.out(), p.err()};
}

void run_checked(const std::vector<std::string>& argv, const std::string& netns) {
  const RunResult r = run(argv, 20s, netns);
  if (r.status.exit_code != 0) {
    std::string text;
    for (const std::string& a : argv) {
      text += " " + a;
    }
    throw std::runtime_error("`" + text.substr(1) + "`" +
                             (netns.empty() ? "" : " in netns " + netns) + " failed (" +
                             r.status.describe() + "): " + r.err);
  }
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      lines.push_back(text.substr(begin));
      break;
    }
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

}  // namespace tt
