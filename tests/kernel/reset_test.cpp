// How connections die on loopback: refused connects, SO_LINGER {1,0} aborts, a process killed
// with unread data. Close kind, error, and reset records on the right end with the right owner.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

Predicate owned_by(const std::string& type, int pid) {
  return [=](const Json& r) { return r["type"] == type && r["pid"] == pid; };
}

std::vector<std::string> path_of(const Json& r) {
  return r["path"].get<std::vector<std::string>>();
}

class RefusedTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RefusedTest, ClientRecordSaysRefusedWithResetReceived) {
  TT_REQUIRE_KERNEL();
  const std::string mode = GetParam();
  const bool ipv6 = mode.find("ipv6") != std::string::npos;
  const std::string addr = ipv6 ? "::1" : "127.0.0.1";
  ClosedPort closed(ipv6);
  std::vector<std::string> args = {
      "client", "--addr", addr, "--port", std::to_string(closed.port()), "--wait-stdin"};
  if (mode.find("nonblocking") != std::string::npos) {
    args.emplace_back("--nonblocking");
  }
  Process client = spawn_peer(args, {}, true);
  client.wait_event("ready");
  // By owner, so that the record is found whatever tuple it carries.
  Tracer tracer({"-p", std::to_string(client.pid())});
  client.write_stdin("\n");
  const Json failed = client.wait_event("connect_failed");
  EXPECT_EQ(failed["errno"], "ECONNREFUSED");
  expect_clean_exit(client);
  tracer.settle(owned_by("connection", client.pid()));
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  const Json conn = only(stopped.records, owned_by("connection", client.pid()),
                         "connection record of the client");
  EXPECT_EQ(conn["comm"], "tt_client");
  EXPECT_EQ(conn["role"], "client");
  EXPECT_EQ(conn["close"], "refused");
  EXPECT_EQ(conn["error"], "ECONNREFUSED");
  EXPECT_EQ(conn["family"], ipv6 ? "ipv6" : "ipv4");
  EXPECT_EQ(conn["raddr"], addr) << "the peer the connect was refused by";
  EXPECT_EQ(conn["rport"], closed.port()) << "the port the connect was refused on";
  EXPECT_EQ(conn["laddr"], addr);
  EXPECT_GT(conn["lport"].get<int>(), 0);
  EXPECT_EQ(path_of(conn), (std::vector<std::string>{"SYN_SENT", "CLOSE"}));
  EXPECT_EQ(conn["handshake_ms"], nullptr);
  EXPECT_EQ(conn["time_wait"], false);
  EXPECT_EQ(conn["tx_bytes"], 0);
  EXPECT_EQ(conn["rx_bytes"], 0);

  const Json reset =
      only(stopped.records, owned_by("reset", client.pid()), "reset record of the client");
  EXPECT_EQ(reset["direction"], "received");
  EXPECT_EQ(reset["state"], "SYN_SENT");
  EXPECT_EQ(reset["conn_id"], conn["conn_id"]);
  EXPECT_EQ(reset["rport"], closed.port());
}

INSTANTIATE_TEST_SUITE_P(Loopback, RefusedTest,
                         ::testing::Values("blocking_ipv4", "nonblocking_ipv4", "blocking_ipv6",
                                           "nonblocking_ipv6"),
                         [](const auto& info) { return info.param; });

// SO_LINGER {1,0} then close(): the aborting end sends RST, the other end receives it.
class AbortTest : public ::testing::TestWithParam<std::string> {};

// A connection record that got as far as ESTABLISHED (not a listener), also matching `also`.
Predicate established_end(const std::function<bool(const Json&)>& also) {
  return [also](const Json& r) {
    if (r["type"] != "connection" || !also(r)) {
      return false;
    }
    const auto path = path_of(r);
    return std::find(path.begin(), path.end(), "ESTABLISHED") != path.end();
  };
}

TEST_P(AbortTest, AbortingEndResetSentPeerResetReceived) {
  TT_REQUIRE_KERNEL();
  const bool client_aborts = GetParam() == "client_aborts";
  std::vector<std::string> server_args = {"--expect", "100", "--reply", "200"};
  std::vector<std::string> client_args = {"--send", "100", "--expect", "200"};
  (client_aborts ? client_args : server_args).emplace_back("--linger0");
  Server server = start_server("127.0.0.1", server_args);
  client_args.insert(client_args.begin(),
                     {"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port)});
  // No filter: the ends are found by what cannot change (the client's owner, the server's
  // local port), so that a wrong tuple or owner shows as such.
  Tracer tracer({});
  Process client = spawn_peer(client_args);
  const Json ci = tcp_info(client);
  const Json si = tcp_info(server.process);
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  const int cport = ci["lport"].get<int>();
  tracer.settle(
      [&](const Json& r) {
        return r["type"] == "connection" && (r["lport"] == cport || r["lport"] == server.port);
      },
      2);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  const int server_port = server.port;
  const Json cl =
      only(stopped.records,
           established_end([&](const Json& r) { return r["pid"] == client.pid(); }), "client end");
  const Json sv = only(stopped.records, established_end([&](const Json& r) {
                         return r["role"] == "server" && r["lport"] == server_port;
                       }),
                       "server end");
  EXPECT_EQ(cl["comm"], "tt_client");
  EXPECT_EQ(sv["pid"], server.process.pid());
  EXPECT_EQ(sv["comm"], "tt_server");
  EXPECT_EQ(cl["lport"], cport);
  EXPECT_EQ(cl["rport"], server.port);
  EXPECT_EQ(cl["laddr"], "127.0.0.1");
  EXPECT_EQ(sv["lport"], server.port);
  EXPECT_EQ(sv["rport"], cport);
  EXPECT_EQ(sv["raddr"], "127.0.0.1");
  const Json& aborting = client_aborts ? cl : sv;
  const Json& victim = client_aborts ? sv : cl;
  EXPECT_EQ(aborting["close"], "reset_sent");
  EXPECT_EQ(aborting["error"], nullptr) << "the aborting end had no error";
  EXPECT_EQ(victim["close"], "reset_received");
  EXPECT_EQ(victim["error"], "ECONNRESET");
  EXPECT_EQ(aborting["time_wait"], false);
  EXPECT_EQ(victim["time_wait"], false);
  EXPECT_EQ(path_of(aborting).back(), "CLOSE");
  // The peer may have sent its FIN before the abort (its side of the exchange was done):
  // then the aborter was in CLOSE_WAIT and the victim in FIN_WAIT1/FIN_WAIT2.
  const auto before_close = [](const Json& r) { return path_of(r).at(path_of(r).size() - 2); };
  EXPECT_TRUE(before_close(aborting) == "ESTABLISHED" || before_close(aborting) == "CLOSE_WAIT")
      << aborting;
  EXPECT_TRUE(before_close(victim) == "ESTABLISHED" || before_close(victim) == "FIN_WAIT1" ||
              before_close(victim) == "FIN_WAIT2")
      << victim;
  // The application's bytes, exactly. The server's reply acked the client's 100 before either
  // abort, and the client read the whole reply. An abort sends an RST, not a FIN: nothing but the
  // client's SYN (and the victim client's FIN, if acked) is taken out of the kernel's counts.
  EXPECT_EQ(cl["tx_bytes"], 100) << cl << ci;
  EXPECT_EQ(cl["rx_bytes"], 200) << cl;
  EXPECT_EQ(sv["rx_bytes"], 100) << sv;
  if (client_aborts) {
    // The server's reply counts as far as the client acked it before its RST (the server's
    // TCP_INFO is final: it was read after the reset).
    EXPECT_EQ(sv["tx_bytes"], si["bytes_acked"]) << sv << si;
  } else {
    EXPECT_EQ(sv["tx_bytes"], 200) << "the client's FIN acked the reply before the abort: " << sv;
  }

  const int aborting_pid = client_aborts ? client.pid() : server.process.pid();
  const int victim_pid = client_aborts ? server.process.pid() : client.pid();
  const Json sent = only(
      stopped.records,
      [&](const Json& r) { return r["type"] == "reset" && r["conn_id"] == aborting["conn_id"]; },
      "reset of the aborter");
  EXPECT_EQ(sent["pid"], aborting_pid);
  EXPECT_EQ(sent["direction"], "sent");
  // tcp_disconnect() moves the socket to CLOSE just before it sends the RST.
  EXPECT_TRUE(sent["state"] == "ESTABLISHED" || sent["state"] == "CLOSE_WAIT" ||
              sent["state"] == "CLOSE")
      << sent;
  const Json received = only(
      stopped.records,
      [&](const Json& r) { return r["type"] == "reset" && r["conn_id"] == victim["conn_id"]; },
      "reset of the peer");
  EXPECT_EQ(received["direction"], "received");
  EXPECT_EQ(received["pid"], victim_pid);
}

INSTANTIATE_TEST_SUITE_P(Loopback, AbortTest, ::testing::Values("client_aborts", "server_aborts"),
                         [](const auto& info) { return info.param; });

// A process killed while data it never read sits in its receive queue: the kernel closes the
// socket with RST (tcp_close: unread data means abort).
TEST(KilledProcessTest, UnreadDataMeansResetSent) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--no-read", "--expect", "5000"});
  Tracer tracer({"--port", std::to_string(server.port)});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--send", "5000", "--expect", "1"});
  const int cport = client.wait_event("connected").at("lport").get<int>();
  const Json holding = server.process.wait_event("holding");
  ASSERT_GE(holding["unread"].get<int>(), 5000) << holding;
  server.process.send_signal(SIGKILL);
  const auto killed = server.process.wait(10s);
  ASSERT_TRUE(killed && killed->signal == SIGKILL);
  const Json error = client.wait_event("error");
  EXPECT_EQ(error["errno"], "ECONNRESET");
  expect_clean_exit(client);
  tracer.settle(of_type("connection"), 2);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0);

  const Json sv =
      only(stopped.records, socket_record("connection", server.port, cport), "server end");
  const Json cl =
      only(stopped.records, socket_record("connection", cport, server.port), "client end");
  EXPECT_EQ(sv["pid"], server.process.pid());
  EXPECT_EQ(sv["comm"], "tt_server");
  EXPECT_EQ(sv["close"], "reset_sent");
  EXPECT_EQ(sv["rx_bytes"], 5000);
  EXPECT_EQ(cl["pid"], client.pid());
  EXPECT_EQ(cl["close"], "reset_received");
  EXPECT_EQ(cl["error"], "ECONNRESET");
  const Json sent = only(stopped.records, socket_record("reset", server.port, cport),
                         "reset of the killed server");
  EXPECT_EQ(sent["direction"], "sent");
  EXPECT_EQ(sent["pid"], server.process.pid());
  const Json received =
      only(stopped.records, socket_record("reset", cport, server.port), "reset of the client");
  EXPECT_EQ(received["direction"], "received");
  EXPECT_EQ(received["pid"], client.pid());
}

}  // namespace
}  // namespace tt
