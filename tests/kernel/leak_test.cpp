// Leak detection end to end: real leaking servers (client and server in different processes),
// a server that leaves its accepted socket in CLOSE_WAIT (also when a forked worker holds it, and
// when the leak predates tcptrail), the FIN_WAIT2 mirror, half-open SYN_RECV made by dropping the
// final ACK between two namespaces, TIME_WAIT piling up in a namespace with 100 ephemeral ports,
// and `tcptrail leaks` (-p, bad thresholds). Thresholds are short (1 s) to keep each test brief.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/netns.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

// The leak record (or leak_resolved) of `kind` about the socket lport -> rport.
Predicate leak_of(const std::string& type, const std::string& kind, int lport, int rport) {
  return [=](const Json& r) {
    return r.value("type", "") == type && r.value("kind", "") == kind && r.contains("lport") &&
           r["lport"] == lport && r["rport"] == rport;
  };
}

bool has_owner(const Json& leak, pid_t pid) {
  if (!leak.contains("owners") || !leak["owners"].is_array()) {
    return false;
  }
  const Json& owners = leak["owners"];
  return std::any_of(owners.begin(), owners.end(),
                     [pid](const Json& o) { return o.value("pid", -1) == pid; });
}

Json owner(const Json& leak, pid_t pid) {
  for (const Json& o : leak.at("owners")) {
    if (o.value("pid", -1) == pid) {
      return o;
    }
  }
  return Json();
}

// The descriptor an owner names is a socket of that process (checked while the process lives).
void expect_fd_is_socket(const Json& own) {
  ASSERT_TRUE(own.is_object()) << own;
  ASSERT_TRUE(own["fd"].is_number_integer()) << own;
  const std::string link = "/proc/" + std::to_string(own["pid"].get<int>()) + "/fd/" +
                           std::to_string(own["fd"].get<int>());
  std::error_code ec;
  const auto target = std::filesystem::read_symlink(link, ec);
  ASSERT_FALSE(ec) << link << ": " << ec.message();
  EXPECT_EQ(target.string().rfind("socket:[", 0), 0U) << link << " -> " << target;
}

// A server that reads until the client's FIN and then keeps the socket in CLOSE_WAIT for ten
// minutes (until killed); the client closes first.
constexpr const char* kForever = "600000";

struct LeakingPair {
  Server server;
  Process client;
  int cport = 0;
};

LeakingPair leaking_pair(std::vector<std::string> server_args = {}) {
  server_args.insert(server_args.end(), {"--close-first", "client", "--close-delay-ms", kForever});
  Server server = start_server("127.0.0.1", server_args);
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--close-first", "client"});
  const int cport = client.wait_event("connected").at("lport").get<int>();
  const Json closed = server.process.wait_event("peer_closed");
  EXPECT_EQ(closed["rport"], cport);
  return LeakingPair{std::move(server), std::move(client), cport};
}

// A namespace whose walks found nothing is walked in one sweep of ten only, unless the kernel
// side tells that a socket entered a leak state there: a CLOSE_WAIT that forms in it later is
// still reported at its threshold, not up to nine sweeps late.
TEST(LeakTest, CloseWaitInANamespaceThatWasQuietIsReportedAtItsThreshold) {
  TT_REQUIRE_NETNS();
  NetnsPair net("quiet");
  Tracer tracer({"--close-wait-timeout", "1s"});
  Server server =
      start_server(net.server_addr(), {"--close-first", "client", "--close-delay-ms", kForever},
                   net.server_ns());
  // Its listener announced the namespace; two sweeps or more find it quiet.
  std::this_thread::sleep_for(2500ms);
  Process client = spawn_peer({"client", "--addr", net.server_addr(), "--port",
                               std::to_string(server.port), "--close-first", "client"},
                              net.client_ns());
  const int cport = client.wait_event("connected").at("lport").get<int>();
  server.process.wait_event("peer_closed");
  const Json leak = tracer.wait_for(leak_of("leak", "close_wait", server.port, cport),
                                    "close_wait leak", 1, 6s)[0];
  EXPECT_EQ(leak["threshold_ms"].get<double>(), 1000.0) << leak;
  EXPECT_LT(leak["age_ms"].get<double>(), 2500.0) << "found by the sweep after it formed\n" << leak;
  EXPECT_EQ(leak["pid"], server.process.pid()) << leak;
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
}

TEST(LeakTest, CloseWaitNamesTheServerAndResolvesWhenItCloses) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--close-wait-timeout", "1s"});
  LeakingPair p = leaking_pair();
  const int sport = p.server.port;
  const Json leak =
      tracer.wait_for(leak_of("leak", "close_wait", sport, p.cport), "close_wait leak", 1, 6s)[0];
  EXPECT_EQ(leak["laddr"], "127.0.0.1") << leak;
  EXPECT_EQ(leak["state"], "CLOSE_WAIT") << leak;
  EXPECT_EQ(leak["role"], "server") << leak;
  EXPECT_EQ(leak["threshold_ms"].get<double>(), 1000.0) << leak;
  EXPECT_GE(leak["age_ms"].get<double>(), 1000.0) << leak;
  EXPECT_EQ(leak["orphan"], false) << leak;
  EXPECT_EQ(leak["preexisting"], false) << leak;
  EXPECT_EQ(leak["pid"], p.server.process.pid()) << leak;
  EXPECT_EQ(leak["comm"], "tt_server") << leak;
  ASSERT_TRUE(has_owner(leak, p.server.process.pid())) << leak;
  const Json own = owner(leak, p.server.process.pid());
  EXPECT_EQ(own["comm"], "tt_server") << leak;
  expect_fd_is_socket(own);

  // The server finally lets go (it dies; the kernel closes its descriptors).
  std::this_thread::sleep_for(500ms);
  p.server.process.send_signal(SIGTERM);
  ASSERT_TRUE(p.server.process.wait(5s).has_value());
  const Json resolved = tracer.wait_for(leak_of("leak_resolved", "close_wait", sport, p.cport),
                                        "leak_resolved", 1, 5s)[0];
  EXPECT_GE(resolved["leaked_ms"].get<double>(), 1500.0) << resolved;
  EXPECT_GE(resolved["leaked_ms"].get<double>(), leak["age_ms"].get<double>()) << resolved;
  EXPECT_GT(resolved["ts"].get<std::string>(), leak["ts"].get<std::string>());
  EXPECT_EQ(resolved["conn_id"], leak["conn_id"]);
  EXPECT_EQ(resolved["cookie"], leak["cookie"]);
  EXPECT_EQ(resolved["went_to"], "LAST_ACK") << "its close() sent the FIN it owed\n" << resolved;
  EXPECT_EQ(resolved["state"], "LAST_ACK") << resolved;
  expect_clean_exit(p.client);

  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  EXPECT_EQ(select(stopped.records, leak_of("leak", "close_wait", sport, p.cport)).size(), 1U)
      << "once per socket\n"
      << dump_lines(stopped.records);
  EXPECT_EQ(select(stopped.records, leak_of("leak_resolved", "close_wait", sport, p.cport)).size(),
            1U);
  const Json conn = only(stopped.records, socket_record("connection", sport, p.cport),
                         "the leaking socket's connection record");
  EXPECT_EQ(conn["cookie"], leak["cookie"]) << "one socket, one cookie";
}

TEST(LeakTest, ForkedWorkerHoldingTheSocketIsNamed) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--close-wait-timeout", "1s"});
  LeakingPair p = leaking_pair({"--fork"});
  const Json forked = p.server.process.wait_event("forked");
  const pid_t worker = forked["worker"].get<pid_t>();
  ASSERT_NE(worker, p.server.process.pid());
  const Json leak = tracer.wait_for(leak_of("leak", "close_wait", p.server.port, p.cport),
                                    "close_wait leak", 1, 6s)[0];
  ASSERT_TRUE(has_owner(leak, worker)) << "the worker holds the descriptor: " << leak;
  EXPECT_EQ(owner(leak, worker)["comm"], "tt_worker") << leak;
  expect_fd_is_socket(owner(leak, worker));
  EXPECT_FALSE(has_owner(leak, p.server.process.pid()))
      << "the parent closed its copy before the threshold: " << leak;
  EXPECT_EQ(leak["pid"], worker) << leak;
  EXPECT_EQ(leak["comm"], "tt_worker") << leak;
  EXPECT_EQ(leak["orphan"], false) << leak;
}

TEST(LeakTest, LeakOlderThanTheTracerIsMarkedPreexisting) {
  TT_REQUIRE_KERNEL();
  LeakingPair p = leaking_pair();  // already in CLOSE_WAIT
  const auto started = Clock::now();
  Tracer tracer({"--close-wait-timeout", "1s"});
  const Json leak = tracer.wait_for(leak_of("leak", "close_wait", p.server.port, p.cport),
                                    "preexisting close_wait leak", 1, 6s)[0];
  EXPECT_GE(Clock::now() - started, 1s) << "age counts from when tcptrail first saw it";
  EXPECT_EQ(leak["preexisting"], true) << leak;
  EXPECT_EQ(leak["state"], "CLOSE_WAIT") << leak;
  EXPECT_GE(leak["age_ms"].get<double>(), leak["threshold_ms"].get<double>()) << leak;
  EXPECT_EQ(leak["threshold_ms"].get<double>(), 1000.0) << leak;
  EXPECT_TRUE(has_owner(leak, p.server.process.pid())) << leak;
  EXPECT_EQ(leak["pid"], p.server.process.pid()) << leak;
  EXPECT_EQ(leak["orphan"], false) << leak;
}

// A server that stopped listening (a reload) and still holds an accepted socket, found at
// start: nothing listens on its service port, yet it is the server's end, not a client's.
TEST(LeakTest, PreexistingChildWhoseListenerClosedIsTheServer) {
  TT_REQUIRE_KERNEL();
  NetnsPair net("reload");  // a fixed service port, outside the ephemeral range, free there
  Server server = start_server(net.server_addr(),
                               {"--port", "8080", "--count", "1", "--close-listener",
                                "--close-first", "client", "--close-delay-ms", kForever},
                               net.server_ns());
  Process client = spawn_peer(
      {"client", "--addr", net.server_addr(), "--port", "8080", "--close-first", "client"},
      net.client_ns());
  const int cport = client.wait_event("connected").at("lport").get<int>();
  server.process.wait_event("peer_closed");
  Tracer tracer({"--close-wait-timeout", "1s"});
  const Json leak = tracer.wait_for(leak_of("leak", "close_wait", 8080, cport),
                                    "preexisting close_wait leak", 1, 6s)[0];
  EXPECT_EQ(leak["preexisting"], true) << leak;
  EXPECT_EQ(leak["role"], "server") << leak;
  EXPECT_EQ(leak["pid"], server.process.pid()) << leak;
}

TEST(LeakTest, ServerThatClosesPromptlyIsNotReported) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--close-wait-timeout", "500ms", "--fin-wait2-timeout", "500ms"});
  Server server = start_server("127.0.0.1", {"--count", "3", "--close-first", "client"});
  Process client =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--count",
                  "3", "--send", "1000", "--reply", "1000", "--close-first", "client"});
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  // Positive control: the detector does report in this run.
  LeakingPair control = leaking_pair();
  tracer.wait_for(leak_of("leak", "close_wait", control.server.port, control.cport), "control leak",
                  1, 6s);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  const auto about_server = select(stopped.records, [&](const Json& r) {
    return (r.value("type", "") == "leak" || r.value("type", "") == "leak_resolved") &&
           r.contains("lport") && (r["lport"] == server.port || r["rport"] == server.port);
  });
  EXPECT_TRUE(about_server.empty()) << dump_lines(about_server);
}

TEST(LeakTest, FinWait2AgainstAPeerThatNeverCloses) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--fin-wait2-timeout", "1s"});
  LeakingPair p = leaking_pair();  // the client shut down its side and keeps reading
  const Json leak = tracer.wait_for(leak_of("leak", "fin_wait2", p.cport, p.server.port),
                                    "fin_wait2 leak", 1, 6s)[0];
  EXPECT_EQ(leak["state"], "FIN_WAIT2") << leak;
  EXPECT_EQ(leak["orphan"], false) << leak;
  EXPECT_EQ(leak["role"], "client") << leak;
  EXPECT_GE(leak["age_ms"].get<double>(), 1000.0) << leak;
  EXPECT_EQ(leak["threshold_ms"].get<double>(), 1000.0) << leak;
  ASSERT_TRUE(has_owner(leak, p.client.pid())) << leak;
  EXPECT_EQ(owner(leak, p.client.pid())["comm"], "tt_client") << leak;
  expect_fd_is_socket(owner(leak, p.client.pid()));
  EXPECT_EQ(leak["pid"], p.client.pid()) << leak;
  EXPECT_FALSE(has_owner(leak, p.server.process.pid())) << leak;

  // Still open when tcptrail stops: the stop record lists it, as its leak record named it.
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  const Json& stop = stopped.records.back();
  ASSERT_EQ(stop["type"], "stop");
  EXPECT_GE(stop["open_leak_count"].get<int>(), 1) << stop;
  const auto open = std::find_if(stop["open_leaks"].begin(), stop["open_leaks"].end(),
                                 [&](const Json& o) { return o["cookie"] == leak["cookie"]; });
  ASSERT_NE(open, stop["open_leaks"].end()) << stop;
  for (const char* field : {"kind", "conn_id", "pid", "comm", "owner_source", "laddr", "lport",
                            "raddr", "rport", "role", "state", "orphan"}) {
    EXPECT_EQ((*open)[field], leak[field]) << field << ": " << *open;
  }
  EXPECT_GE((*open)["age_ms"].get<double>(), leak["age_ms"].get<double>()) << *open;
}

// The client closes and goes; the kernel finishes its socket as an orphaned FIN_WAIT2 timewait
// sock against a server that holds its end. When the server closes at last, the orphan goes on
// to TIME_WAIT, which most sweeps learn by looking the socket up rather than dumping TIME_WAIT.
TEST(LeakTest, OrphanedFinWait2ResolvesToTimeWaitWhenThePeerCloses) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({"--fin-wait2-timeout", "1s", "--close-wait-timeout", "1h"});
  Server server = start_server(
      "127.0.0.1", {"--close-first", "client", "--close-delay-ms", kForever, "--no-wait"});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--close-first", "client", "--orphan"});
  const int cport = client.wait_event("connected").at("lport").get<int>();
  server.process.wait_event("peer_closed");
  expect_clean_exit(client);
  const Json leak = tracer.wait_for(leak_of("leak", "fin_wait2", cport, server.port),
                                    "orphaned fin_wait2 leak", 1, 10s)[0];
  EXPECT_EQ(leak["orphan"], true) << leak;
  EXPECT_EQ(leak["state"], "FIN_WAIT2") << leak;
  // The timewait socket is the connection tcptrail traced as a full socket: its identity, the
  // process that closed it, its role, and its age since it entered FIN_WAIT2.
  const Json full = tracer.wait_for(socket_record("connection", cport, server.port),
                                    "the full socket's connection record", 1, 5s)[0];
  EXPECT_EQ(full["close"], "active") << full;
  EXPECT_EQ(leak["cookie"], full["cookie"]) << leak;
  EXPECT_EQ(leak["conn_id"], full["conn_id"]) << "not 2^63 | cookie: " << leak;
  EXPECT_EQ(leak["pid"], client.pid()) << leak;
  EXPECT_EQ(leak["comm"], "tt_client") << leak;
  EXPECT_EQ(leak["role"], "client") << leak;
  EXPECT_EQ(leak["preexisting"], false) << leak;
  const double entered_ms = ms_of(full["ts"]) - full["states"]["FIN_WAIT2"].get<double>();
  const double aged_from_ms = ms_of(leak["ts"]) - leak["age_ms"].get<double>();
  EXPECT_NEAR(aged_from_ms, entered_ms, 5.0) << "aged from FIN_WAIT2's start\n" << leak << full;

  server.process.send_signal(SIGTERM);
  ASSERT_TRUE(server.process.wait(5s).has_value());
  const Json resolved = tracer.wait_for(leak_of("leak_resolved", "fin_wait2", cport, server.port),
                                        "leak_resolved", 1, 10s)[0];
  EXPECT_EQ(resolved["went_to"], "TIME_WAIT") << "the server's FIN came\n" << resolved;
  EXPECT_EQ(resolved["cookie"], leak["cookie"]) << resolved;
  EXPECT_EQ(resolved["conn_id"], leak["conn_id"]) << resolved;
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
}

TEST(LeakTest, HalfOpenSynRecvNamesTheListenerOwner) {
  TT_REQUIRE_NETNS();
  NetnsPair net("synrecv");
  Server server = start_server(net.server_addr(), {}, net.server_ns());
  // The client's handshake ACK (only ACK set) never reaches the server.
  NetnsPair::exec(net.server_ns(),
                  {"iptables", "-A", "INPUT", "-p", "tcp", "--dport", std::to_string(server.port),
                   "--tcp-flags", "SYN,ACK,FIN,RST", "ACK", "-j", "DROP"});
  Tracer tracer({"--syn-recv-timeout", "1s"});
  Process client = spawn_peer({"client", "--addr", net.server_addr(), "--port",
                               std::to_string(server.port), "--hold-ms", "15000"},
                              net.client_ns());
  const int cport = client.wait_event("connected").at("lport").get<int>();
  const Json leak =
      tracer.wait_for(leak_of("leak", "syn_recv", server.port, cport), "syn_recv leak", 1, 6s)[0];
  EXPECT_EQ(leak["laddr"], net.server_addr()) << leak;
  EXPECT_EQ(leak["raddr"], net.client_addr()) << leak;
  EXPECT_EQ(leak["state"], "SYN_RECV") << leak;
  EXPECT_GE(leak["age_ms"].get<double>(), 1000.0) << leak;
  EXPECT_EQ(leak["threshold_ms"].get<double>(), 1000.0) << leak;
  EXPECT_EQ(leak["orphan"], false) << leak;
  EXPECT_EQ(leak["preexisting"], false) << "the handshake began after tcptrail started: " << leak;
  ASSERT_TRUE(has_owner(leak, server.process.pid())) << "the listener's holder: " << leak;
  EXPECT_EQ(owner(leak, server.process.pid())["comm"], "tt_server") << leak;
  EXPECT_EQ(leak["pid"], server.process.pid()) << leak;
}

TEST(LeakTest, LeaksCommandPidFilterShowsOnlyThatProcessesSockets) {
  TT_REQUIRE_KERNEL();
  LeakingPair a = leaking_pair();
  LeakingPair b = leaking_pair();
  const RunResult r =
      run({tcptrail_binary(), "leaks", "--json", "-p", std::to_string(a.server.process.pid()),
           "--close-wait-timeout", "1s", "--duration", "3s"},
          15s);
  ASSERT_EQ(r.status.exit_code, 0) << r.status.describe() << "; stderr: " << r.err;
  std::vector<Json> records;
  for (const std::string& line : split_lines(r.out)) {
    Json j = Json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    records.push_back(j);
  }
  for (const Json& rec : records) {
    EXPECT_TRUE(rec["type"] == "leak" || rec["type"] == "leak_resolved")
        << "leak records only: " << rec;
    if (rec.value("kind", "") != "time_wait") {
      EXPECT_TRUE(has_owner(rec, a.server.process.pid())) << "a socket PID does not hold: " << rec;
    }
    EXPECT_FALSE(rec.contains("lport") &&
                 (rec["lport"] == b.server.port || rec["rport"] == b.server.port))
        << "the other server's leak: " << rec;
  }
  EXPECT_EQ(select(records, leak_of("leak", "close_wait", a.server.port, a.cport)).size(), 1U)
      << r.out;
}

// Three clients of one forking server leave three CLOSE_WAIT sockets from three ephemeral ports
// of one host: the view shows them as one row of the service and that host.
TEST(LeakTest, LeaksViewGroupsAServersLeaksByServiceAndClientHost) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--fork", "--count", "3", "--close-first", "client",
                                             "--close-delay-ms", kForever});
  std::vector<Process> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                                  std::to_string(server.port), "--close-first", "client"}));
    clients.back().wait_event("connected");
    server.process.wait_event("peer_closed");
  }
  const RunResult r =
      run({tcptrail_binary(), "leaks", "--close-wait-timeout", "1s", "--duration", "5s"}, 15s);
  ASSERT_EQ(r.status.exit_code, 0) << r.status.describe() << "; stderr: " << r.err;
  const std::string row = "127.0.0.1:" + std::to_string(server.port) + " <- 127.0.0.1 ";
  const std::size_t last_screen = r.out.rfind("SERVER LEAKS BY SERVICE AND CLIENT HOST");
  ASSERT_NE(last_screen, std::string::npos) << r.out;
  const std::string screen = r.out.substr(last_screen);
  std::size_t rows = 0;
  for (const std::string& line : split_lines(screen)) {
    if (line.rfind(row, 0) == 0) {
      ++rows;
      EXPECT_NE(line.find("close_wait       3"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(rows, 1U) << screen;
  EXPECT_NE(screen.find("total: 1 group(s), 3 socket(s)"), std::string::npos) << screen;
}

std::string free_pid(pid_t from) {
  for (pid_t pid = from; pid > 1; --pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      return std::to_string(pid);
    }
  }
  return std::to_string(from);
}

struct BadLeaksInput {
  const char* name;
  std::vector<std::string> args;
};

class LeaksBadInputTest : public ::testing::TestWithParam<BadLeaksInput> {};

TEST_P(LeaksBadInputTest, ExitsTwoWithOneLineOnStderr) {
  std::vector<std::string> argv = {tcptrail_binary(), "leaks"};
  for (const std::string& arg : GetParam().args) {
    argv.push_back(arg == "FREE_PID" ? free_pid(999999) : arg);
  }
  const RunResult r = run(argv, 20s);
  EXPECT_EQ(r.status.exit_code, 2) << r.status.describe() << "; stderr: " << r.err;
  EXPECT_EQ(r.out, "") << "nothing on stdout";
  EXPECT_EQ(split_lines(r.err).size(), 1U) << "stderr: " << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    LeakUsage, LeaksBadInputTest,
    ::testing::Values(BadLeaksInput{"NegativeThreshold", {"--close-wait-timeout", "-5s"}},
                      BadLeaksInput{"NegativeThresholdJoined", {"--close-wait-timeout=-5s"}},
                      BadLeaksInput{"MalformedThreshold", {"--close-wait-timeout", "abc"}},
                      BadLeaksInput{"MalformedSynRecv", {"--json", "--syn-recv-timeout", "1x"}},
                      BadLeaksInput{"PidDoesNotExist", {"--json", "-p", "FREE_PID"}}),
    [](const ::testing::TestParamInfo<BadLeaksInput>& info) { return info.param.name; });

}  // namespace
}  // namespace tt
