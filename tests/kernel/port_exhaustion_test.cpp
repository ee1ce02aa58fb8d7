// Ephemeral port exhaustion in a client namespace with a tiny ip_local_port_range: what the
// failed connect() looks like. The client closes first, so each connection it made keeps its port
// in TIME_WAIT; over the veth (not loopback) tcp_tw_reuse=2 does not let a new connect reuse it.
#include <gtest/gtest.h>

#include <string>
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
}

}  // namespace
}  // namespace tt
