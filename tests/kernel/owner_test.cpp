// Who owns an accepted socket: a pre-fork server's workers accept on the listener their master
// made and holds, so every record after the accept() must name the worker that serves the
// connection, not the master; the master's name is kept only for the handshake.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

// Two workers, one connection each; each client aborts with RST once it has its reply, so the
// server end dies without its worker ever calling close(): its records can name the worker only
// if the acceptor was recognised.
TEST(OwnerTest, PreforkWorkersOwnWhatTheyAccept) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--prefork", "2", "--count", "1", "--expect", "10",
                                             "--reply", "20", "--close-first", "client"});
  const Json preforked = server.process.wait_event("preforked");
  const int master = server.process.pid();
  const std::vector<int> workers = {preforked["worker0"].get<int>(),
                                    preforked["worker1"].get<int>()};
  Tracer tracer({"--transitions", "--port", std::to_string(server.port)});
  std::map<int, int> worker_of_client_port;
  for (int i = 0; i < 2; ++i) {
    Process client =
        spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port),
                    "--send", "10", "--expect", "20", "--close-first", "client", "--linger0"});
    const int cport = client.wait_event("connected").at("lport").get<int>();
    const Json accepted = server.process.wait_json(
        [cport](const Json& line) {
          return line.value("event", "") == "accepted" && line.value("rport", 0) == cport;
        },
        10s, "the accept of client port " + std::to_string(cport));
    worker_of_client_port[cport] = accepted["pid"].get<int>();
    expect_clean_exit(client);
  }
  expect_clean_exit(server.process);
  tracer.settle(of_type("connection"), 4);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;

  ASSERT_EQ(worker_of_client_port.size(), 2u);
  for (const auto& [cport, worker] : worker_of_client_port) {
    SCOPED_TRACE("client port " + std::to_string(cport));
    EXPECT_TRUE(worker == workers[0] || worker == workers[1]) << worker;
    const Json sv =
        only(stopped.records, socket_record("connection", server.port, cport), "server end");
    EXPECT_EQ(sv["close"], "reset_received") << sv;
    EXPECT_EQ(sv["pid"], worker) << "the worker that accepted it, not the master " << master;
    EXPECT_EQ(sv["comm"], "tt_worker");
    EXPECT_EQ(sv["owner_source"], "acceptor");
    EXPECT_EQ(sv["tx_bytes"], 20);
    EXPECT_EQ(sv["rx_bytes"], 10);
    const auto resets = select(stopped.records, socket_record("reset", server.port, cport));
    ASSERT_FALSE(resets.empty()) << dump_lines(stopped.records);
    for (const Json& r : resets) {
      EXPECT_EQ(r["pid"], worker) << r;
      EXPECT_EQ(r["owner_source"], "acceptor") << r;
    }
    // The handshake came before any worker touched the socket: its owner then was the listener's.
    const auto states = select(stopped.records, socket_record("state", server.port, cport));
    ASSERT_FALSE(states.empty());
    EXPECT_EQ(states.front()["owner_source"], "listener") << states.front();
    EXPECT_EQ(states.front()["pid"], master) << states.front();
  }
}

}  // namespace
}  // namespace tt
