// Whole connections over loopback, client and server in separate processes: both ends reported,
// each with its own owner, bytes as the kernel counted them, close side, path and durations.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

struct Case {
  bool ipv6;
  std::string close_first;  // "client" or "server"
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << (c.ipv6 ? "IPv6" : "IPv4") << ", " << c.close_first << " closes first";
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.ipv6 ? "IPv6" : "IPv4") + "_" + info.param.close_first +
         "_closes_first";
}

class LifecycleTest : public ::testing::TestWithParam<Case> {};

constexpr int kHoldMs = 200;        // both ends wait this long once established
constexpr int kCloseDelayMs = 300;  // the passive end waits this long after the peer's FIN
constexpr int kRequest = 1000;
constexpr int kReply = 5000;

void expect_common_fields(const Json& r, const std::string& family) {
  EXPECT_TRUE(is_rfc3339_utc_ns(r["ts"])) << r["ts"];
  EXPECT_TRUE(is_rfc3339_utc_ns(r["start"])) << r["start"];
  EXPECT_TRUE(r["conn_id"].is_string()) << r["conn_id"];
  EXPECT_EQ(r["family"], family);
  EXPECT_EQ(r["preexisting"], false);
  EXPECT_TRUE(r["handshake_ms"].is_number()) << r["handshake_ms"];
  if (r["handshake_ms"].is_number()) {
    EXPECT_GE(r["handshake_ms"].get<double>(), 0.0);
    EXPECT_LT(r["handshake_ms"].get<double>(), 1000.0);
  }
  EXPECT_EQ(r["error"], nullptr);
  EXPECT_EQ(r["orphan"], false) << "the peer keeps its descriptor until the socket is closed";
}

TEST_P(LifecycleTest, BothEndsWithOwnersBytesAndCloseSide) {
  TT_REQUIRE_KERNEL();
  const Case c = GetParam();
  const std::string addr = c.ipv6 ? "::1" : "127.0.0.1";
  const std::string family = c.ipv6 ? "ipv6" : "ipv4";
  const bool client_active = c.close_first == "client";

  Server server = start_server(addr, {"--count", "1", "--expect", std::to_string(kRequest),
                                      "--reply", std::to_string(kReply), "--close-first",
                                      c.close_first, "--hold-ms", std::to_string(kHoldMs),
                                      "--close-delay-ms", std::to_string(kCloseDelayMs)});
  Tracer tracer({});
  Process client = spawn_peer(
      {"client", "--addr", addr, "--port", std::to_string(server.port), "--send",
       std::to_string(kRequest), "--expect", std::to_string(kReply), "--close-first", c.close_first,
       "--hold-ms", std::to_string(kHoldMs), "--close-delay-ms", std::to_string(kCloseDelayMs)});
  const int client_port = client.wait_event("connected").at("lport").get<int>();
  const Json client_info = tcp_info(client);
  const Json server_info = tcp_info(server.process);
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  ASSERT_TRUE(client_info["final"].get<bool>()) << client_info;
  ASSERT_TRUE(server_info["final"].get<bool>()) << server_info;

  tracer.settle(
      [&](const Json& r) {
        return socket_record("connection", client_port, server.port)(r) ||
               socket_record("connection", server.port, client_port)(r);
      },
      2);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << stopped.err;

  const Json cl = only(stopped.records, socket_record("connection", client_port, server.port),
                       "client connection record");
  const Json sv = only(stopped.records, socket_record("connection", server.port, client_port),
                       "server connection record");
  EXPECT_TRUE(select(stopped.records, of_type("state")).empty())
      << "state records need --transitions";

  // Owners: each end its own process, whatever was on-CPU when the transition fired.
  EXPECT_EQ(cl["pid"], client.pid());
  EXPECT_EQ(cl["comm"], "tt_client");
  EXPECT_EQ(cl["role"], "client");
  EXPECT_EQ(sv["pid"], server.process.pid());
  EXPECT_EQ(sv["comm"], "tt_server");
  EXPECT_EQ(sv["role"], "server");
  EXPECT_NE(cl["conn_id"], sv["conn_id"]);
  // The socket cookie each end read with SO_COOKIE: logs join on it.
  EXPECT_EQ(cl["cookie"], client_info["cookie"]) << cl;
  EXPECT_EQ(sv["cookie"], server_info["cookie"]) << sv;
  EXPECT_NE(cl["cookie"], "0") << cl;
  for (const Json* r : {&cl, &sv}) {
    SCOPED_TRACE((*r)["role"].dump());
    expect_common_fields(*r, family);
    EXPECT_EQ((*r)["laddr"], addr);
    EXPECT_EQ((*r)["raddr"], addr);
  }

  // The application's bytes: exactly what each end wrote and the other read.
  EXPECT_EQ(cl["tx_bytes"], kRequest);
  EXPECT_EQ(cl["rx_bytes"], kReply);
  EXPECT_EQ(sv["tx_bytes"], kReply);
  EXPECT_EQ(sv["rx_bytes"], kRequest);
  EXPECT_EQ(cl["retransmits"], client_info["total_retrans"]);
  EXPECT_EQ(sv["retransmits"], server_info["total_retrans"]);
  // The kernel's counters at CLOSE count sequence space: each acked or received FIN, and the
  // client's SYN (acked by the SYN-ACK), on top of the payload.
  EXPECT_EQ(client_info["bytes_acked"], kRequest + 2);
  EXPECT_EQ(client_info["bytes_received"], kReply + 1);
  EXPECT_EQ(server_info["bytes_acked"], kReply + 1);
  EXPECT_EQ(server_info["bytes_received"], kRequest + 1);
  EXPECT_GT(cl["srtt_us"].get<long>(), 0);
  EXPECT_GT(sv["srtt_us"].get<long>(), 0);

  const Json& active = client_active ? cl : sv;
  const Json& passive = client_active ? sv : cl;
  EXPECT_EQ(active["close"], "active");
  EXPECT_EQ(active["time_wait"], true);
  EXPECT_EQ(passive["close"], "passive");
  EXPECT_EQ(passive["time_wait"], false);

  const std::vector<std::string> active_tail = {"ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"};
  const std::vector<std::string> passive_tail = {"ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"};
  std::vector<std::string> client_path = {"SYN_SENT"};
  std::vector<std::string> server_path = {"SYN_RECV"};
  const auto& client_tail = client_active ? active_tail : passive_tail;
  const auto& server_tail = client_active ? passive_tail : active_tail;
  client_path.insert(client_path.end(), client_tail.begin(), client_tail.end());
  server_path.insert(server_path.end(), server_tail.begin(), server_tail.end());
  EXPECT_EQ(cl["path"].get<std::vector<std::string>>(), client_path);
  EXPECT_EQ(sv["path"].get<std::vector<std::string>>(), server_path);

  // Time in states covers what the peers slept there.
  for (const Json* r : {&cl, &sv}) {
    SCOPED_TRACE((*r)["role"].dump());
    const Json& states = (*r)["states"];
    ASSERT_TRUE(states.contains("ESTABLISHED")) << states;
    EXPECT_GE(states["ESTABLISHED"].get<double>(), kHoldMs);
    EXPECT_GE((*r)["duration_ms"].get<double>(), kHoldMs + kCloseDelayMs - 50);
    double sum = 0;
    for (const auto& [name, ms] : states.items()) {
      EXPECT_GE(ms.get<double>(), 0.0) << name;
      sum += ms.get<double>();
    }
    EXPECT_NEAR(sum, (*r)["duration_ms"].get<double>(), 1.0) << states;
  }
  ASSERT_TRUE(active["states"].contains("FIN_WAIT2")) << active["states"];
  // Less whatever the passive end delayed its ACK of our FIN by.
  EXPECT_GE(active["states"]["FIN_WAIT2"].get<double>(), kCloseDelayMs / 2);
  ASSERT_TRUE(passive["states"].contains("CLOSE_WAIT")) << passive["states"];
  EXPECT_GE(passive["states"]["CLOSE_WAIT"].get<double>(), kCloseDelayMs);
  EXPECT_TRUE(cl["states"].contains("SYN_SENT")) << cl["states"];
  EXPECT_TRUE(sv["states"].contains("SYN_RECV")) << sv["states"];
}

INSTANTIATE_TEST_SUITE_P(Loopback, LifecycleTest,
                         ::testing::Values(Case{false, "client"}, Case{false, "server"},
                                           Case{true, "client"}, Case{true, "server"}),
                         case_name);

// Many short connections back to back, nobody waiting anywhere (FIN and ACK may merge): every
// end of every connection is reported once, with the right owner, bytes and close side.
TEST(LifecycleChurnTest, EveryEndOfManyShortConnections) {
  TT_REQUIRE_KERNEL();
  constexpr std::size_t kCount = 30;
  Server server = start_server("127.0.0.1", {"--count", std::to_string(kCount), "--expect", "100",
                                             "--reply", "300", "--close-first", "client"});
  Tracer tracer({"--port", std::to_string(server.port)});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--count", std::to_string(kCount),
                               "--send", "100", "--expect", "300", "--close-first", "client"});
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  tracer.settle(of_type("connection"), 2 * kCount);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  for (int i = 0; i < static_cast<int>(kCount); ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    const Json ci = tcp_info(client, i);
    const Json si = tcp_info(server.process, i);
    const int cport = ci["lport"].get<int>();
    const Json cl =
        only(stopped.records, socket_record("connection", cport, server.port), "client end");
    const Json sv =
        only(stopped.records, socket_record("connection", server.port, cport), "server end");
    EXPECT_EQ(cl["pid"], client.pid());
    EXPECT_EQ(cl["comm"], "tt_client");
    EXPECT_EQ(cl["role"], "client");
    EXPECT_EQ(sv["pid"], server.process.pid());
    EXPECT_EQ(sv["comm"], "tt_server");
    EXPECT_EQ(sv["role"], "server");
    EXPECT_EQ(cl["close"], "active");
    EXPECT_EQ(cl["time_wait"], true);
    EXPECT_EQ(sv["close"], "passive");
    EXPECT_EQ(sv["time_wait"], false);
    EXPECT_EQ(cl["tx_bytes"], 100);
    EXPECT_EQ(cl["rx_bytes"], 300);
    EXPECT_EQ(sv["tx_bytes"], 300);
    EXPECT_EQ(sv["rx_bytes"], 100);
    const auto path = cl["path"].get<std::vector<std::string>>();
    ASSERT_GE(path.size(), 4U);
    EXPECT_EQ(path.front(), "SYN_SENT");
    EXPECT_EQ(path[1], "ESTABLISHED");
    EXPECT_EQ(path[2], "FIN_WAIT1");
    EXPECT_EQ(path.back(), "CLOSE");
  }
  // The listener is no connection of this workload: nothing else on the server port but the
  // 2 x kCount ends (and at most the listener itself).
  const auto conns = select(stopped.records, of_type("connection"));
  for (const Json& r : conns) {
    if (r["rport"] == 0 || (r["role"] != "client" && r["role"] != "server")) {
      continue;
    }
    EXPECT_TRUE(r["pid"] == client.pid() || r["pid"] == server.process.pid()) << r;
  }
}

// The first and last CPU this test may run on (the same one on a single-CPU machine).
std::pair<int, int> first_and_last_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  int first = -1;
  int last = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) {
      first = first < 0 ? cpu : first;
      last = cpu;
    }
  }
  return {first, last};
}

// `tcptrail_test_peer <args...>` allowed to run on one CPU only.
Process spawn_pinned_peer(int cpu, const std::vector<std::string>& args) {
  SpawnOptions options;
  options.argv = {"taskset", "-c", std::to_string(cpu), peer_binary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  return Process(options);
}

// Writes "0" or "1" to a CPU's sysfs `online` file; true when it took.
bool set_cpu_online(const std::string& path, bool online) {
  std::ofstream file(path);
  file << (online ? "1" : "0");
  file.flush();
  return file.good();
}

// A CPU's finished connections wait there to travel together, and a CPU taken offline runs
// nothing that would send them: the collector sends them from another. With the tracer stopped
// (SIGSTOP: no flushes), one connection closes in order with both ends on the last CPU, whose
// stage then holds both records; that CPU goes offline, and stays so until tracing ended.
TEST(LifecycleChurnTest, RecordsStagedOnACpuTakenOfflineAreSent) {
  TT_REQUIRE_KERNEL();
  const auto [first_cpu, last_cpu] = first_and_last_cpu();
  const std::string online = "/sys/devices/system/cpu/cpu" + std::to_string(last_cpu) + "/online";
  TT_SKIP_OR_FAIL_IF(first_cpu != last_cpu && access(online.c_str(), W_OK) == 0
                         ? ""
                         : "needs a second CPU that can be taken offline (" + online + ")");
  Process server_process = spawn_pinned_peer(
      last_cpu, {"server", "--addr", "127.0.0.1", "--port", "0", "--close-first", "client"});
  const int port = server_process.wait_event("listening").at("port").get<int>();
  Tracer tracer({"--port", std::to_string(port)});
  tracer.process().send_signal(SIGSTOP);
  Process client = spawn_pinned_peer(last_cpu, {"client", "--addr", "127.0.0.1", "--port",
                                                std::to_string(port), "--close-first", "client"});
  expect_clean_exit(client);
  expect_clean_exit(server_process);
  struct BackOnline {
    std::string path;
    ~BackOnline() { set_cpu_online(path, true); }
  } back_online{online};
  ASSERT_TRUE(set_cpu_online(online, false)) << online;
  tracer.process().send_signal(SIGCONT);
  tracer.settle(of_type("connection"), 2);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  const int cport = tcp_info(client, 0)["lport"].get<int>();
  only(stopped.records, socket_record("connection", cport, port), "client end");
  only(stopped.records, socket_record("connection", port, cport), "server end");
}

// Each CPU has its own ring buffer. With the client pinned to one CPU and the server to another,
// a connection's events land in both rings, interleaved: loopback delivers in the sender's
// softirq, so with the server closing first the server socket changes state on the client's
// CPU, then twice on its own, then on the client's again. Processing the rings one after the
// other would put its CLOSE before its FIN_WAIT1: the collector must merge them by time.
TEST(LifecycleChurnTest, ConnectionsSplitAcrossCpusKeepTheirOrder) {
  TT_REQUIRE_KERNEL();
  constexpr std::size_t kCount = 40;
  const auto [client_cpu, server_cpu] = first_and_last_cpu();
  Process server_process =
      spawn_pinned_peer(server_cpu, {"server", "--addr", "127.0.0.1", "--port", "0", "--count",
                                     std::to_string(kCount), "--expect", "10", "--reply", "10",
                                     "--close-first", "server"});
  const int port = server_process.wait_event("listening").at("port").get<int>();
  Tracer tracer({"--port", std::to_string(port)});
  Process client =
      spawn_pinned_peer(client_cpu, {"client", "--addr", "127.0.0.1", "--port",
                                     std::to_string(port), "--count", std::to_string(kCount),
                                     "--send", "10", "--expect", "10", "--close-first", "server"});
  expect_clean_exit(client);
  expect_clean_exit(server_process);
  tracer.settle(of_type("connection"), 2 * kCount);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);
  for (int i = 0; i < static_cast<int>(kCount); ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    const int cport = tcp_info(client, i)["lport"].get<int>();
    const Json cl = only(stopped.records, socket_record("connection", cport, port), "client end");
    const Json sv = only(stopped.records, socket_record("connection", port, cport), "server end");
    EXPECT_EQ(
        cl["path"].get<std::vector<std::string>>(),
        (std::vector<std::string>{"SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"}));
    const auto server_path = sv["path"].get<std::vector<std::string>>();
    ASSERT_GE(server_path.size(), 4U);
    EXPECT_EQ(server_path[0], "SYN_RECV");
    EXPECT_EQ(server_path[1], "ESTABLISHED");
    EXPECT_EQ(server_path[2], "FIN_WAIT1");
    EXPECT_EQ(server_path.back(), "CLOSE");
    EXPECT_EQ(cl["close"], "passive");
    EXPECT_EQ(sv["close"], "active");
    EXPECT_EQ(cl["owner_source"], "syscall");
  }
}

// --transitions: one state record per change, in order, with the time spent in the old state.
TEST(TransitionsTest, StateRecordsForBothEnds) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--expect", "10", "--reply", "10", "--close-first",
                                             "client", "--close-delay-ms", "300"});
  Tracer tracer({"--transitions", "--port", std::to_string(server.port)});
  Process client =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--send",
                  "10", "--expect", "10", "--close-first", "client", "--hold-ms", "200"});
  const Json ci = tcp_info(client);
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  const int cport = ci["lport"].get<int>();
  tracer.settle(of_type("connection"), 2);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  const Json cl =
      only(stopped.records, socket_record("connection", cport, server.port), "client end");
  const Json sv =
      only(stopped.records, socket_record("connection", server.port, cport), "server end");
  auto changes = [&](const Json& conn) {
    std::vector<std::pair<std::string, std::string>> seen;
    for (const Json& r : select(stopped.records, of_type("state"))) {
      if (r["conn_id"] != conn["conn_id"]) {
        continue;
      }
      // The owner from the first record on, also for the server end born in softirq.
      EXPECT_EQ(r["pid"], conn["pid"]) << r;
      EXPECT_EQ(r["comm"], conn["comm"]) << r;
      EXPECT_EQ(r["role"], conn["role"]) << r;
      if (!seen.empty()) {
        // At birth the kernel may not have chosen the whole tuple yet (connect() sets
        // SYN_SENT before it picks the local port).
        EXPECT_EQ(r["lport"], conn["lport"]) << r;
        EXPECT_EQ(r["rport"], conn["rport"]) << r;
      }
      EXPECT_TRUE(is_rfc3339_utc_ns(r["ts"])) << r;
      EXPECT_TRUE(r["ms_in_old"].is_number() || r["ms_in_old"].is_null()) << r;
      seen.emplace_back(r["old"].get<std::string>(), r["new"].get<std::string>());
    }
    return seen;
  };
  using Steps = std::vector<std::pair<std::string, std::string>>;
  const Steps client_steps = changes(cl);
  EXPECT_EQ(client_steps, (Steps{{"CLOSE", "SYN_SENT"},
                                 {"SYN_SENT", "ESTABLISHED"},
                                 {"ESTABLISHED", "FIN_WAIT1"},
                                 {"FIN_WAIT1", "FIN_WAIT2"},
                                 {"FIN_WAIT2", "CLOSE"}}));
  const Steps server_steps = changes(sv);
  ASSERT_FALSE(server_steps.empty());
  EXPECT_EQ(server_steps.front().second, "SYN_RECV");
  EXPECT_EQ(Steps(server_steps.begin() + 1, server_steps.end()),
            (Steps{{"SYN_RECV", "ESTABLISHED"},
                   {"ESTABLISHED", "CLOSE_WAIT"},
                   {"CLOSE_WAIT", "LAST_ACK"},
                   {"LAST_ACK", "CLOSE"}}));

  // Time spent in the old state, where the peers slept.
  for (const Json& r : select(stopped.records, of_type("state"))) {
    if (r["conn_id"] == cl["conn_id"] && r["old"] == "ESTABLISHED") {
      EXPECT_GE(r["ms_in_old"].get<double>(), 200.0) << r;
      EXPECT_NEAR(r["ms_in_old"].get<double>(), cl["states"]["ESTABLISHED"].get<double>(), 0.01);
    }
    if (r["conn_id"] == sv["conn_id"] && r["old"] == "CLOSE_WAIT") {
      EXPECT_GE(r["ms_in_old"].get<double>(), 300.0) << r;
    }
  }
  // The connection record comes after the transition that ended it.
  std::size_t last_state = 0;
  std::size_t conn_index = 0;
  for (std::size_t i = 0; i < stopped.records.size(); ++i) {
    const Json& r = stopped.records[i];
    if (r.value("conn_id", Json()) == cl["conn_id"]) {
      (r["type"] == "state" ? last_state : conn_index) = i;
    }
  }
  EXPECT_LT(last_state, conn_index);
}

}  // namespace
}  // namespace tt
