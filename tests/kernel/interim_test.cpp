// --interim: a real long-lived loopback connection reported while it is open, every period, with
// what each end wrote and read since its last interim record.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

// The client waits kHoldMs before it writes, and stays open kCloseDelayMs in CLOSE_WAIT after
// the server's FIN: with --interim 1s, each stretch holds at least two interim records whatever
// the phase of the tracer's cadence.
constexpr int kHoldMs = 2500;
constexpr int kCloseDelayMs = 2500;
constexpr int kRequest = 1000;
constexpr int kReply = 5000;

struct Totals {
  long tx = 0;
  long rx = 0;
};

// Each record's totals are the last one's plus its deltas (the first's are its deltas); returns
// the sums of the deltas.
Totals check_deltas_add_up(const std::vector<Json>& interims) {
  Totals sum;
  for (const Json& r : interims) {
    sum.tx += r["tx_bytes"].get<long>();
    sum.rx += r["rx_bytes"].get<long>();
    EXPECT_EQ(r["total_tx_bytes"].get<long>(), sum.tx) << r;
    EXPECT_EQ(r["total_rx_bytes"].get<long>(), sum.rx) << r;
    EXPECT_EQ(r["type"], "interim");
  }
  return sum;
}

TEST(InterimTest, LongLivedConnectionReportedWhileOpen) {
  TT_REQUIRE_KERNEL();
  Server server =
      start_server("127.0.0.1", {"--count", "1", "--expect", std::to_string(kRequest), "--reply",
                                 std::to_string(kReply), "--close-first", "server"});
  Tracer tracer({"--interim", "1s"});
  Process client = spawn_peer(
      {"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--send",
       std::to_string(kRequest), "--expect", std::to_string(kReply), "--close-first", "server",
       "--hold-ms", std::to_string(kHoldMs), "--close-delay-ms", std::to_string(kCloseDelayMs)});
  const int client_port = client.wait_event("connected").at("lport").get<int>();
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  tracer.settle(socket_record("connection", client_port, server.port));
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << stopped.err;

  const std::vector<Json> interims =
      select(stopped.records, socket_record("interim", client_port, server.port));
  ASSERT_GE(interims.size(), 4u) << "two before the request, two in CLOSE_WAIT";
  const Json conn = only(stopped.records, socket_record("connection", client_port, server.port),
                         "client connection record");
  for (const Json& r : interims) {
    EXPECT_EQ(r["conn_id"], conn["conn_id"]) << r;
    EXPECT_EQ(r["pid"], client.pid());
    EXPECT_EQ(r["comm"], "tt_client");
    EXPECT_EQ(r["role"], "client");
    EXPECT_EQ(r["retransmits"], 0) << "loopback";
  }

  // Before the request: open, nothing sent. Then, in CLOSE_WAIT, what the client wrote and read
  // arrived in one record (or two, should a period fall inside the exchange), and nothing after.
  EXPECT_EQ(interims[0]["state"], "ESTABLISHED");
  EXPECT_EQ(interims[0]["tx_bytes"], 0);
  EXPECT_EQ(interims[0]["rx_bytes"], 0);
  EXPECT_EQ(interims[1]["tx_bytes"], 0);
  const Json& last = interims.back();
  const Json& before_last = interims[interims.size() - 2];
  EXPECT_EQ(last["state"], "CLOSE_WAIT");
  EXPECT_EQ(before_last["state"], "CLOSE_WAIT");
  EXPECT_EQ(last["tx_bytes"], 0) << "nothing new in the last period";
  EXPECT_EQ(last["rx_bytes"], 0);
  EXPECT_GT(last["srtt_us"].get<long>(), 0);
  const Totals sum = check_deltas_add_up(interims);
  EXPECT_EQ(sum.tx, kRequest);
  EXPECT_EQ(sum.rx, kReply) << "the server's FIN is not application data";
  EXPECT_EQ(conn["tx_bytes"], kRequest) << "the connection record agrees with the totals";
  EXPECT_EQ(conn["rx_bytes"], kReply);

  // The server's end, from the same sweeps: it read the request and wrote the reply.
  const std::vector<Json> served =
      select(stopped.records, socket_record("interim", server.port, client_port));
  ASSERT_GE(served.size(), 2u);
  EXPECT_EQ(served.front()["role"], "server");
  EXPECT_EQ(served.front()["comm"], "tt_server");
  const Totals server_sum = check_deltas_add_up(served);
  EXPECT_EQ(server_sum.tx, kReply);
  EXPECT_EQ(server_sum.rx, kRequest);
  EXPECT_EQ(served.back()["state"], "FIN_WAIT2") << "its FIN acked, the client's not yet sent";
}

TEST(InterimTest, NoInterimRecordsUnlessAskedFor) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--count", "1", "--expect", "10", "--reply", "10"});
  Tracer tracer({});
  Process client =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--send",
                  "10", "--expect", "10", "--hold-ms", "1500"});
  const int client_port = client.wait_event("connected").at("lport").get<int>();
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  tracer.settle(socket_record("connection", client_port, server.port));
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_TRUE(select(stopped.records, of_type("interim")).empty());
  EXPECT_FALSE(
      select(stopped.records, socket_record("connection", client_port, server.port)).empty());
}

}  // namespace
}  // namespace tt
