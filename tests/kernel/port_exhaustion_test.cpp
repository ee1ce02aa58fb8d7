// Ephemeral port exhaustion in a client namespace with a tiny ip_local_port_range: what the
// failed connect() looks like. The client closes first, so each connection it made keeps its port
// in TIME_WAIT; over the veth (not loopback) tcp_tw_reuse=2 does not let a new connect reuse it.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/netns.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

std::vector<std::string> client_args(const NetnsPair& net, int port, int count) {
  return {"client",
          "--addr",
          net.server_addr(),
          "--port",
          std::to_string(port),
          "--count",
          std::to_string(count),
          "--close-first",
          "client"};
}

TEST(PortExhaustionTest, ConnectWithoutAFreePortIsNoPortWithEaddrnotavail) {
  TT_REQUIRE_NETNS();
  NetnsPair net("noport");
  NetnsPair::exec(net.client_ns(),
                  {"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40001"});
  Server server =
      start_server(net.server_addr(), {"--count", "2", "--close-first", "client"}, net.server_ns());
  Tracer tracer({"--rport", std::to_string(server.port)});
  Process client = spawn_peer(client_args(net, server.port, 3), net.client_ns());
  const Json failed = client.wait_event("connect_failed", 20s);
  EXPECT_EQ(failed["errno"], "EADDRNOTAVAIL") << failed;
  EXPECT_EQ(failed["lport"], 0) << failed;
  EXPECT_EQ(client.wait_event("done", 20s)["failures"], 1);
  expect_clean_exit(client);
  auto to_server = [&](const Json& r) {
    return r["type"] == "connection" && r["raddr"] == net.server_addr() &&
           r["rport"] == server.port;
  };
  tracer.settle(to_server, 3);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  const Json no_port = only(
      stopped.records, [&](const Json& r) { return to_server(r) && r["close"] == "no_port"; },
      "the failed connect");
  EXPECT_EQ(no_port["pid"], client.pid()) << no_port;
  EXPECT_EQ(no_port["comm"], "tt_client") << no_port;
  EXPECT_EQ(no_port["role"], "client") << no_port;
  EXPECT_EQ(no_port["error"], "EADDRNOTAVAIL") << no_port;
  EXPECT_EQ(no_port["lport"], 0) << no_port;
  EXPECT_EQ(no_port["laddr"], net.client_addr()) << no_port;
  EXPECT_EQ(no_port["path"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"SYN_SENT", "CLOSE"}));
  EXPECT_EQ(no_port["handshake_ms"], nullptr) << no_port;
  const auto made = select(stopped.records, [&](const Json& r) {
    return to_server(r) && r["role"] == "client" && r["close"] == "active";
  });
  EXPECT_EQ(made.size(), 2U) << dump_lines(stopped.records);

  // The summary counts the failure against the service (--rport leaves the server's side out).
  const Json& stop = stopped.records.back();
  ASSERT_EQ(stop["type"], "stop");
  auto peer = [&](const std::string& addr, const Json& port) {
    for (const Json& row : stop["per_peer"]) {
      if (row["addr"] == addr && row["port"] == port) {
        return row;
      }
    }
    return Json();
  };
  const Json service = peer(net.server_addr(), server.port);
  ASSERT_TRUE(service.is_object()) << stop;
  EXPECT_EQ(service["failed_connects"], 1) << service;
  EXPECT_EQ(service["closes"]["no_port"], 1) << service;
  EXPECT_EQ(service["closes"]["active"], 2) << service;
  for (const Json& row : stop["per_process"]) {
    EXPECT_NE(row["pid"], 0) << "pid 0 is the no-owner row, with a null pid: " << row;
  }
}

// A client that closes first, as fast as it can, against a 200-port range: the ports run out
// within about a second, faster than the sweeps look. The warning must come before the first
// connect() that finds no port, and name the namespace.
TEST(PortExhaustionTest, BurstIsWarnedBeforeTheFirstEaddrnotavail) {
  TT_REQUIRE_NETNS();
  NetnsPair net("twburst");
  NetnsPair::exec(net.client_ns(),
                  {"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40199"});
  Server server =
      start_server(net.server_addr(), {"--count", "1000", "--close-first", "client", "--no-wait"},
                   net.server_ns());
  Tracer tracer(std::vector<std::string>{});
  auto to_server = [&](const Json& r) {
    return r.value("raddr", "") == net.server_addr() && r.contains("rport") &&
           r["rport"] == server.port;
  };
  auto pressure = [&](const Json& r) {
    return r["type"] == "leak" && r["kind"] == "time_wait" && to_server(r);
  };
  auto no_port = [&](const Json& r) {
    return r["type"] == "connection" && r["close"] == "no_port" && to_server(r);
  };
  // The scanner's first sweep of the new namespace tells its range.
  tracer.settle([](const Json&) { return false; }, 1, 1500ms);
  Process client = spawn_peer(client_args(net, server.port, 260), net.client_ns());
  // The server prints three lines per connection: read them, or it blocks on a full pipe.
  const auto deadline = Clock::now() + 20s;
  while (client.running() && Clock::now() < deadline) {
    server.process.out();
    client.out();
    std::this_thread::sleep_for(5ms);
  }
  const Json failed = client.wait_event("connect_failed", 1s);
  EXPECT_EQ(failed["errno"], "EADDRNOTAVAIL") << failed;
  const Json done = client.wait_event("done", 1s);
  expect_clean_exit(client);
  tracer.settle(no_port, 1, 3s);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  const auto failures = select(stopped.records, no_port);
  ASSERT_EQ(static_cast<int>(failures.size()), done["failures"].get<int>())
      << dump_lines(stopped.records);
  const auto warnings = select(stopped.records, pressure);
  ASSERT_FALSE(warnings.empty()) << "no warning at all";
  const Json& w = warnings.front();
  EXPECT_LT(w["ts"].get<std::string>(), failures.front()["start"].get<std::string>())
      << "the warning must come before connect() fails: " << w;
  EXPECT_EQ(w["laddr"], net.client_addr()) << w;
  EXPECT_EQ(w["port_range"], 200) << w;
  EXPECT_LT(w["taken"].get<int>(), 200) << w;
  EXPECT_GE(w["taken"].get<int>(), 20) << w;
  EXPECT_EQ(w["netns_name"], net.client_ns()) << w;
  EXPECT_TRUE(w["netns"].is_number_integer()) << w;
  EXPECT_EQ(w["reusable"], false) << "a veth address, not loopback: " << w;
  EXPECT_TRUE(w["exhausted_in_ms"].is_number()) << w;
  EXPECT_LT(w["exhausted_in_ms"].get<double>(), 10'000) << w;
}

}  // namespace
}  // namespace tt
