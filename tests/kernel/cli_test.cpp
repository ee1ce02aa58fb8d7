// The binary as a command: how it stops (duration, signals, closed pipe), and how it refuses bad
// input and missing privileges (exit status, one line on stderr, nothing on stdout).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/exposition.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

TEST(CliTest, SweepsKeepAFixedCadenceOffTheRingThread) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--duration", "3500ms"});
  const Tracer::Stopped stopped = tracer.wait_exit(15s);
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << " " << stopped.err;
  ASSERT_FALSE(stopped.records.empty());
  const Json& stop = stopped.records.back();
  ASSERT_EQ(stop["type"], "stop") << stop;
  // One at the start of the scanner, then one a second: a fixed cadence neither stretches nor
  // bunches up when nothing asks for a scan.
  EXPECT_GE(stop["sweeps"], 3) << stop;
  EXPECT_LE(stop["sweeps"], 5) << stop;
  EXPECT_GE(stop["longest_sweep_interval_ms"].get<double>(), 999.0) << stop;
  EXPECT_EQ(stop["scan_errors"], 0) << stop;
  // The ring thread only drains: on an idle host its pauses are microseconds (printed as 0.000
  // when under half a microsecond), never near the 50 ms it waits for a wakeup.
  ASSERT_TRUE(stop["longest_ring_pause_ms"].is_number()) << stop;
  EXPECT_LT(stop["longest_ring_pause_ms"].get<double>(), 50.0) << stop;
}

TEST(CliTest, DurationStopsByItselfWithStopRecord) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--duration", "1s"});
  // From the start record on: loading the programs, seconds under qemu on a busy machine, is
  // not part of the duration.
  const auto tracing = Clock::now();
  const Tracer::Stopped stopped = tracer.wait_exit(10s);
  const auto elapsed = Clock::now() - tracing;
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << " " << stopped.err;
  EXPECT_LT(elapsed, 5s);
  ASSERT_FALSE(stopped.records.empty());
  const Json& stop = stopped.records.back();
  const double traced_ms = ms_of(stop["ts"]) - ms_of(stopped.records.front()["ts"]);
  EXPECT_GE(traced_ms, 1000.0) << stop;
  EXPECT_LT(traced_ms, 3000.0) << stop;
  EXPECT_EQ(stop["type"], "stop");
  EXPECT_TRUE(is_rfc3339_utc_ns(stop["ts"])) << stop;
  EXPECT_TRUE(stop["events"].is_number_unsigned()) << stop;
  EXPECT_TRUE(stop["lost"].is_number_unsigned()) << stop;
  EXPECT_EQ(stop["lost"], 0) << stop;
  const Json& start = stopped.records.front();
  EXPECT_TRUE(is_rfc3339_utc_ns(start["ts"])) << start;
  EXPECT_TRUE(start.contains("version")) << start;
  EXPECT_TRUE(start.contains("kernel")) << start;
  EXPECT_TRUE(start.contains("options")) << start;
  // Nothing on stderr but one line per feature this kernel cannot give.
  const std::vector<std::string> gaps = kernel_gaps();
  EXPECT_EQ(start["degraded"], Json(gaps)) << start;
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = stopped.err.find("tcptrail: warning: this kernel cannot give ",
                                                  at)) != std::string::npos;
       ++at) {
    ++lines;
  }
  EXPECT_EQ(lines, gaps.size()) << stopped.err;
  EXPECT_EQ(std::count(stopped.err.begin(), stopped.err.end(), '\n'),
            static_cast<long>(gaps.size()))
      << stopped.err;
}

TEST(CliTest, SigtermGivesStopRecord) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({});
  const Tracer::Stopped stopped = tracer.stop(SIGTERM);
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << " " << stopped.err;
  ASSERT_FALSE(stopped.records.empty());
  EXPECT_EQ(stopped.records.back()["type"], "stop");
}

// One short connection between two peer processes; returns the server's port.
int short_connection() {
  Server server = start_server("127.0.0.1", {"--expect", "10", "--reply", "10"});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--send", "10", "--expect", "10"});
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  return server.port;
}

TEST(CliTest, SigintDeliversPendingRecordsAndStopRecord) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--comm", "tt_client"});
  const int port = short_connection();
  // No waiting: whatever the kernel produced before the signal must come out before stop.
  const Tracer::Stopped stopped = tracer.stop(SIGINT);
  EXPECT_EQ(stopped.status.exit_code, 0);
  EXPECT_EQ(
      select(stopped.records,
             [port](const Json& r) { return r["type"] == "connection" && r["rport"] == port; })
          .size(),
      1U)
      << dump_lines(stopped.records);
  EXPECT_EQ(stopped.records.back()["type"], "stop");
  // At least the connection records of both ends (the filter applies to output only).
  EXPECT_GE(stopped.records.back()["events"].get<long>(), 2);
}

// Loopback connections made by this process directly: connect, accept, close both ends.
void loopback_connections(int count) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 128), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  for (int i = 0; i < count; ++i) {
    const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(client, 0);
    ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << errno;
    const int server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(server, 0);
    close(client);
    close(server);
  }
  close(listener);
}

// Nothing is lost quietly: with the collector stopped, the 1 MiB rings fill up; what the
// kernel could not queue is counted, in the stop record, on stderr and, by reason, in the
// metrics.
TEST(CliTest, EventsLostToFullRingsAreReported) {
  TT_REQUIRE_KERNEL();
  const int metrics_port = free_port();
  Tracer tracer(
      {"--ring-buffer-mib", "1", "--metrics", "127.0.0.1:" + std::to_string(metrics_port)});
  tracer.process().send_signal(SIGSTOP);
  // Two connection records of 272 ring bytes per connection (one per end): 4 MiB and more,
  // over at most a few CPUs.
  loopback_connections(8000);
  tracer.process().send_signal(SIGCONT);
  // The metrics' counts are live: a snapshot a second.
  httplib::Client client("127.0.0.1", metrics_port);
  client.set_read_timeout(5);
  std::string exposition;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         sample_value(exposition, R"(tcptrail_lost_events_total{reason="ring_full"})") <= 0) {
    std::this_thread::sleep_for(200ms);
    const auto response = client.Get("/metrics");
    exposition = response && response->status == 200 ? response->body : std::string();
  }
  // The first snapshot may come while the rings are still being drained and losing records; the
  // next one has the final counts.
  std::this_thread::sleep_for(1500ms);
  if (const auto response = client.Get("/metrics"); response && response->status == 200) {
    exposition = response->body;
  }
  const Tracer::Stopped stopped = tracer.stop(SIGINT);
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << " " << stopped.err;
  ASSERT_FALSE(stopped.records.empty());
  const Json& stop = stopped.records.back();
  ASSERT_EQ(stop["type"], "stop") << stop;
  EXPECT_GT(stop["lost"].get<long>(), 0) << stop;
  EXPECT_GT(stop["lost_connections"].get<long>(), 0) << stop;
  EXPECT_LE(stop["lost_connections"].get<long>(), stop["lost"].get<long>()) << stop;
  EXPECT_GT(stop["events"].get<long>(), 0) << stop;
  EXPECT_NE(stopped.err.find("events lost"), std::string::npos) << stopped.err;
  const double ring_full =
      sample_value(exposition, R"(tcptrail_lost_events_total{reason="ring_full"})");
  EXPECT_GT(ring_full, 0) << exposition;
  EXPECT_EQ(ring_full +
                sample_value(exposition, R"(tcptrail_lost_events_total{reason="no_ring"})") +
                sample_value(exposition, R"(tcptrail_lost_events_total{reason="program_skipped"})"),
            stop["lost"].get<double>())
      << exposition;
  EXPECT_EQ(sample_value(exposition, "tcptrail_lost_connection_records_total"),
            stop["lost_connections"].get<double>())
      << exposition;
}

// --host names the host in every record (a DaemonSet gives the node's name: the pod's own host
// name is the pod's).
TEST(CliTest, HostNamesTheHostInEveryRecord) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--host", "node-7.example", "--duration", "1s"});
  short_connection();
  const Tracer::Stopped stopped = tracer.wait_exit(15s);
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << " " << stopped.err;
  ASSERT_GE(stopped.records.size(), 2U);
  for (const Json& r : stopped.records) {
    EXPECT_EQ(r["host"], "node-7.example") << r;
  }
}

// The text summary of a real run: lifetime and handshake percentiles per process and per
// peer.
TEST(CliTest, TextSummaryGivesPercentilesPerProcessAndPeer) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--count", "3"});
  Process tracer({{tcptrail_binary(), "--port", std::to_string(server.port)}, {}, false, {}});
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline && tracer.out().find("TIME") == std::string::npos) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(tracer.out().find("TIME"), std::string::npos) << tracer.err();
  Process client = spawn_peer(
      {"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--count", "3"});
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  std::this_thread::sleep_for(500ms);
  tracer.send_signal(SIGINT);
  const auto status = tracer.wait(10s);
  ASSERT_TRUE(status && status->exit_code == 0) << tracer.err();
  const std::string& out = tracer.out();
  // Three durations like 45us/2.69ms/2.69ms in each of the two percentile columns.
  const std::regex header(R"(PROCESS .*LIFETIME p50/p90/p99 +HANDSHAKE p50/p90/p99)");
  const std::string d = R"([0-9.]+(us|ms|s))";
  const std::regex client_row(R"(\n[0-9]+ tt_client +3 +0 +0 +0 +0 +)" + d + "/" + d + "/" + d +
                              " +" + d + "/" + d + "/" + d + "\n");
  const std::regex service_row(R"(\n127\.0\.0\.1:)" + std::to_string(server.port) +
                               " +3 +0 +0 +0 +0 +" + d + "/" + d + "/" + d + " +" + d + "/" + d +
                               "/" + d + "\n");
  EXPECT_TRUE(std::regex_search(out, header)) << out;
  EXPECT_TRUE(std::regex_search(out, client_row)) << out;
  EXPECT_TRUE(std::regex_search(out, service_row)) << out;
}

// Records stream while tracing, not only at exit ("flushed at least every 100 ms").
TEST(CliTest, RecordsStreamWithinASecond) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--comm", "tt_client"});
  const int port = short_connection();
  const auto done = Clock::now();
  const bool streamed = tracer.settle(
      [port](const Json& r) { return r["type"] == "connection" && r["rport"] == port; }, 1, 1s);
  EXPECT_TRUE(streamed) << "no connection record in the output 1 s after the socket closed "
                           "(while tcptrail was still running); records: "
                        << dump_lines(tracer.records());
  if (streamed) {
    EXPECT_LT(Clock::now() - done, 1s);
  }
  tracer.stop();
}

// `tcptrail | head -1`: once head is gone, the next write fails; tcptrail must exit 0, quietly.
void closed_pipe_case(const std::string& mode_args) {
  ClosedPort closed;
  const std::string command =
      "set -o pipefail; '" + tcptrail_binary() + "' " + mode_args + " | head -1";
  Process shell(SpawnOptions{{"/bin/bash", "-c", command}, {}, false, {}});
  // Traffic, so that tcptrail has something to write after head exited.
  std::optional<ExitStatus> status;
  const auto deadline = Clock::now() + 15s;
  while (!(status = shell.wait(50ms)) && Clock::now() < deadline) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(closed.port()));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    close(fd);
  }
  ASSERT_TRUE(status.has_value()) << "`" << command
                                  << "` still runs 15 s later: tcptrail did not notice the "
                                     "closed pipe";
  EXPECT_EQ(status->exit_code, 0) << status->describe() << " (pipefail: tcptrail's status)";
  EXPECT_EQ(split_lines(shell.out()).size(), 1U) << shell.out();
  EXPECT_EQ(without_kernel_gaps(shell.err()), "") << "a closed pipe must end tcptrail quietly";
}

TEST(CliTest, ClosedPipeExitsQuietlyJson) {
  TT_REQUIRE_KERNEL();
  closed_pipe_case("--json");
}

TEST(CliTest, ClosedPipeExitsQuietlyText) {
  TT_REQUIRE_KERNEL();
  closed_pipe_case("trace");
}

struct BadInput {
  std::string name;
  std::vector<std::string> args;
};

void PrintTo(const BadInput& b, std::ostream* os) {
  for (const std::string& a : b.args) {
    *os << a << " ";
  }
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

// A PID that does not exist now: the highest free one below pid_max.
std::string free_pid() {
  for (pid_t pid = 4194303; pid > 1; --pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      return std::to_string(pid);
    }
  }
  return "4194303";
}

TEST_P(BadInputTest, ExitsTwoWithOneLineOnStderr) {
  // Usage errors are found before anything is loaded: no privileges needed, so no skip.
  std::vector<std::string> argv = {tcptrail_binary()};
  for (const std::string& a : GetParam().args) {
    argv.push_back(a == "FREE_PID" ? free_pid() : a);
  }
  const RunResult r = run(argv, 20s);
  EXPECT_EQ(r.status.exit_code, 2) << r.status.describe() << "; stderr: " << r.err;
  EXPECT_EQ(r.out, "") << "nothing on stdout";
  const auto lines = split_lines(r.err);
  EXPECT_EQ(lines.size(), 1U) << "stderr: " << r.err;
  EXPECT_TRUE(r.err.empty() || r.err.back() == '\n') << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Usage, BadInputTest,
    ::testing::Values(BadInput{"UnknownFlag", {"--bogus"}},
                      BadInput{"UnknownFlagAfterSubcommand", {"trace", "--json", "--bogus"}},
                      BadInput{"PortZero", {"--json", "--port", "0"}},
                      BadInput{"LportTooBig", {"--lport", "70000"}},
                      BadInput{"RportNotANumber", {"--rport", "http"}},
                      BadInput{"AddrBadOctet", {"--json", "--addr", "300.1.1.1"}},
                      BadInput{"AddrBadPrefix", {"--addr", "10.0.0.0/33"}},
                      BadInput{"DurationNotADuration", {"--json", "--duration", "abc"}},
                      BadInput{"DurationBadUnit", {"--duration", "5parsecs"}},
                      BadInput{"InterimZero", {"--json", "--interim", "0"}},
                      BadInput{"InterimNegative", {"--interim", "-1s"}},
                      BadInput{"InterimJunk", {"trace", "--interim", "often"}},
                      BadInput{"InterimTooShort", {"--interim", "10ms"}},
                      BadInput{"InterimWithLeaks", {"leaks", "--interim", "1s"}},
                      BadInput{"InterimEmpty", {"--interim", ""}},
                      BadInput{"MetricsNoPort", {"--metrics", "127.0.0.1"}},
                      BadInput{"MetricsHostName", {"--metrics", "localhost:9465"}},
                      BadInput{"MetricsUnbracketedIpv6", {"--metrics", "::1:9465"}},
                      BadInput{"MetricsPortZero", {"--json", "--metrics", "127.0.0.1:0"}},
                      BadInput{"MetricsPortTooBig", {"--metrics", "127.0.0.1:65536"}},
                      BadInput{"MetricsPortLeadingZero", {"--metrics", "127.0.0.1:09465"}},
                      BadInput{"MetricsPortSigned", {"trace", "--metrics", "[::1]:+9465"}},
                      BadInput{"MetricsEmpty", {"--metrics", ""}},
                      // TEST-NET-1 (RFC 5737): no host has it, so bind() says EADDRNOTAVAIL.
                      BadInput{"MetricsNotLocal", {"--metrics", "192.0.2.1:9465"}},
                      BadInput{"PidDoesNotExist", {"--json", "--pid", "FREE_PID"}},
                      BadInput{"PidZero", {"-p", "0"}}, BadInput{"BothFamilies", {"-4", "-6"}},
                      BadInput{"UnknownSubcommand", {"follow"}}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

TEST(CliTest, UnprivilegedUserExitsOneNamingTheCapability) {
  TempDir dir;  // the binary may sit where nobody cannot reach it: run a copy
  std::vector<std::string> argv;
  if (geteuid() == 0) {
    const std::string copy = dir.file("tcptrail");
    run_checked({"cp", tcptrail_binary(), copy});
    run_checked({"chmod", "755", dir.path(), copy});
    argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", copy};
  } else {
    argv = {tcptrail_binary()};  // already unprivileged
  }
  argv.insert(argv.end(), {"trace", "--json"});
  const RunResult r = run(argv, 20s);
  EXPECT_EQ(r.status.exit_code, 1) << r.status.describe() << "; stderr: " << r.err;
  EXPECT_EQ(r.out, "") << "nothing on stdout";
  const auto lines = split_lines(r.err);
  ASSERT_EQ(lines.size(), 1U) << "stderr: " << r.err;
  const std::string& line = lines[0];
  EXPECT_TRUE(line.find("CAP_BPF") != std::string::npos ||
              line.find("CAP_SYS_ADMIN") != std::string::npos ||
              line.find("root") != std::string::npos)
      << "the line must name the missing capability (or root): " << line;
}

}  // namespace
}  // namespace tt
