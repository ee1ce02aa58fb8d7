// The tcptrail binary under test, run as a child process writing NDJSON to a file.
#pragma once

#include <signal.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace tt {

using Json = nlohmann::json;
using Predicate = std::function<bool(const Json&)>;

// Path of the binary under test: $TCPTRAIL_BINARY, else the one this build made.
std::string tcptrail_binary();
// Path of the workload program: $TCPTRAIL_PEER, else the one this build made.
std::string peer_binary();

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

class Tracer {
public:
  // Runs `tcptrail trace --json --output FILE <args>` and returns once its start record is in
  // FILE, i.e. every program is attached. Throws if that takes over `start_timeout` or the
  // process exits first.
  explicit Tracer(std::vector<std::string> args, Clock::duration start_timeout = 10s);
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;
  // Kills the tracer if it still runs; when the test failed, prints what it wrote.
  ~Tracer();

  // Complete lines written so far, parsed. A line that is not JSON is a test failure.
  const std::vector<Json>& records();
  // Polls the output until `count` records satisfy `match` and returns those; throws with the
  // output so far on timeout.
  std::vector<Json> wait_for(const Predicate& match, const std::string& what, std::size_t count = 1,
                             Clock::duration timeout = 10s);
  // As wait_for, but only waits: returns whether they came. Used before stop(), whose final
  // drain must deliver them anyway; streaming latency has a test of its own.
  bool settle(const Predicate& match, std::size_t count = 1, Clock::duration timeout = 2s);

  struct Stopped {
    ExitStatus status;
    std::vector<Json> records;
    std::string err;
  };
  // Sends `signo`, waits for the exit (throws after 10 s) and returns every record. Checks (as
  // non-fatal failures) that the first record is start and the last is stop.
  Stopped stop(int signo = SIGINT);
  // Waits for the tracer to exit by itself (e.g. --duration), then as stop().
  Stopped wait_exit(Clock::duration timeout);

  Process& process() { return process_; }
  [[nodiscard]] const std::string& output_path() const { return output_; }

private:
  Stopped finish(const std::optional<ExitStatus>& status);

  TempDir dir_;
  std::string output_;
  Process process_;
  std::size_t consumed_ = 0;  // bytes of output_ parsed into records_
  std::vector<Json> records_;
  bool dumped_ = false;
};

// Record selection.
std::vector<Json> select(const std::vector<Json>& records, const Predicate& match);
Predicate of_type(const std::string& type);
// Records of `type` about the socket with local port `lport` and remote port `rport`.
Predicate socket_record(const std::string& type, int lport, int rport);
// A record's "ts" ("YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ") in milliseconds since the epoch.
double ms_of(const Json& ts);
// Exactly one record satisfies `match`; returns it, else throws with the candidates.
Json only(const std::vector<Json>& records, const Predicate& match, const std::string& what);

// "2024-01-02T03:04:05.123456789Z"
bool is_rfc3339_utc_ns(const Json& value);
std::string dump_lines(const std::vector<Json>& records, std::size_t max = 40);

}  // namespace tt
