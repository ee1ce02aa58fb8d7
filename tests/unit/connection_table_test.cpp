#include "tcptrail/connection_table.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "event_builder.hpp"
#include "kernel_model.hpp"

namespace tcptrail {
namespace {

using testing::kMs;
using testing::SocketEvents;
using S = TcpState;

struct Transition {
  std::uint64_t conn_id;
  TcpState old_state;
  TcpState new_state;
  std::uint64_t ns_in_old;
  bool known;
};

class RecordingObserver : public TableObserver {
public:
  void on_state_change(const Connection& conn, TcpState o, TcpState n, std::uint64_t ns, bool known,
                       std::uint64_t /*ts_ns*/) override {
    transitions.push_back({conn.conn_id, o, n, ns, known});
  }
  void on_retransmit(const Connection& /*conn*/, TcpState state, std::uint32_t segs,
                     std::uint64_t /*ts_ns*/) override {
    retransmits.emplace_back(state, segs);
  }
  void on_reset(const Connection& /*conn*/, ResetDirection direction, TcpState /*state*/,
                std::uint64_t /*ts_ns*/) override {
    resets.push_back(direction);
  }
  void on_closed(const Connection& conn, std::uint64_t /*ts_ns*/) override {
    closed.push_back(conn);
  }

  std::vector<Transition> transitions;
  std::vector<std::pair<TcpState, std::uint32_t>> retransmits;
  std::vector<ResetDirection> resets;
  std::vector<Connection> closed;
};

class ConnectionTableTest : public ::testing::Test {
protected:
  void feed(const std::vector<Event>& events) {
    for (const Event& e : events) {
      kernel.feed(e, table);
    }
  }
  // Ends every grace period and returns the one reported connection.
  const Connection& closed_one() {
    table.tick(1'000'000 * kMs);
    EXPECT_EQ(observer.closed.size(), 1u);
    return observer.closed.front();
  }
  static double ms_in(const Connection& c, TcpState s) {
    return static_cast<double>(c.state_ns[*timed_state_index(s)]) / kMs;
  }
  // A retransmit attempt of `segs` segments (0: it failed), after which the kernel's count is
  // total_retrans.
  static Event retransmit(const SocketEvents& socket, double at_ms, TcpState in, std::uint32_t segs,
                          std::uint32_t total_retrans) {
    Event e = socket.other(at_ms, EventKind::kRetransmit, in, segs);
    e.total_retrans = total_retrans;
    return e;
  }
  static std::vector<TcpState> path(const Connection& c) {
    return {c.path.states.begin(), c.path.states.begin() + c.path.size};
  }

  RecordingObserver observer;
  testing::KernelModel kernel;
  ConnectionTable table{TableConfig{}, kernel, observer};
  SocketEvents client{1,     testing::owner(100, "curl"), testing::ipv4("127.0.0.1"),
                      40000, testing::ipv4("127.0.0.1"),  8080};
  // Events of a server child name no owner: they fire in softirq.
  SocketEvents child{2,    Owner{}, testing::ipv4("127.0.0.1"), 8080, testing::ipv4("127.0.0.1"),
                     40000};
};

TEST_F(ConnectionTableTest, ClientActiveCloseEntersTimeWait) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(101, S::kEstablished, S::kFinWait1),
        client.state(102, S::kFinWait1, S::kFinWait2), client.state(103, S::kFinWait2, S::kClose)});
  EXPECT_TRUE(observer.closed.empty()) << "held for the close grace";
  const Connection& c = closed_one();
  EXPECT_EQ(c.role, Role::kClient);
  EXPECT_EQ(c.close, CloseKind::kActive);
  EXPECT_TRUE(c.time_wait);
  EXPECT_FALSE(c.preexisting);
  EXPECT_EQ(*c.duration_ns(0), 103 * kMs);
  ASSERT_TRUE(c.has_handshake);
  EXPECT_EQ(c.handshake_us, 1000u);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kSynSent), 1);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kEstablished), 100);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kFinWait1), 1);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kFinWait2), 1);
  EXPECT_EQ(path(c), (std::vector<TcpState>{S::kSynSent, S::kEstablished, S::kFinWait1,
                                            S::kFinWait2, S::kClose}));
  EXPECT_EQ(c.owner.pid, 100u);
  EXPECT_EQ(table.live(), 0u);
}

TEST_F(ConnectionTableTest, CloseIsHeldUntilGraceEnds) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(5, S::kEstablished, S::kFinWait1), client.state(6, S::kFinWait1, S::kClose)});
  table.tick(6 * kMs + TableConfig{}.close_grace_ns - 1);
  EXPECT_TRUE(observer.closed.empty());
  table.tick(6 * kMs + TableConfig{}.close_grace_ns);
  EXPECT_EQ(observer.closed.size(), 1u);
}

TEST_F(ConnectionTableTest, ServerChildInheritsListenerOwnerAndClosesPassively) {
  SocketEvents listener{9,    testing::owner(200, "php"), testing::ipv4("0.0.0.0"),
                        8080, testing::ipv4("0.0.0.0"),   0};
  Event established = child.state(10.5, S::kSynRecv, S::kEstablished);
  established.srtt_us = 42;
  established.total_retrans = 2;  // SYN-ACK retransmits of the request socket
  feed({listener.state(0, S::kClose, S::kListen), established,
        child.state(50, S::kEstablished, S::kCloseWait),
        child.state(60, S::kCloseWait, S::kLastAck), child.state(61, S::kLastAck, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.role, Role::kServer);
  EXPECT_EQ(c.close, CloseKind::kPassive);
  EXPECT_FALSE(c.time_wait);
  EXPECT_EQ(c.rport, 40000);
  EXPECT_EQ(c.owner.pid, 200u);
  EXPECT_EQ(c.synack_retransmits, 2u);
  ASSERT_TRUE(c.has_handshake);
  EXPECT_EQ(c.handshake_us, 42u);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kCloseWait), 10);
  EXPECT_EQ(ms_in(c, S::kSynRecv), 0) << "its creation is not reported: time unknown";
  EXPECT_EQ(path(c), (std::vector<TcpState>{S::kSynRecv, S::kEstablished, S::kCloseWait,
                                            S::kLastAck, S::kClose}));
  EXPECT_EQ(*c.duration_ns(0), static_cast<std::uint64_t>(50.5 * kMs));
}

TEST_F(ConnectionTableTest, ServerChildCreationTimeComesWithItsFirstTransition) {
  Event established = child.state(10.5, S::kSynRecv, S::kEstablished);
  established.detail = static_cast<std::uint32_t>(0.25 * kMs);  // created 250 us earlier
  feed({established, child.state(20, S::kEstablished, S::kCloseWait),
        child.state(21, S::kCloseWait, S::kLastAck), child.state(22, S::kLastAck, S::kClose)});
  ASSERT_GE(observer.transitions.size(), 2u);
  EXPECT_EQ(observer.transitions[0].old_state, S::kListen);
  EXPECT_EQ(observer.transitions[0].new_state, S::kSynRecv);
  EXPECT_TRUE(observer.transitions[1].known);
  EXPECT_DOUBLE_EQ(static_cast<double>(observer.transitions[1].ns_in_old) / kMs, 0.25);
  const Connection& c = closed_one();
  EXPECT_DOUBLE_EQ(ms_in(c, S::kSynRecv), 0.25);
  EXPECT_EQ(*c.duration_ns(0), static_cast<std::uint64_t>(11.75 * kMs));
}

TEST_F(ConnectionTableTest, AbortiveCloseKeepsWhatCloseSaw) {
  Event closed = client.state(5, S::kEstablished, S::kClose);
  closed.bytes_acked = 102;
  closed.bytes_received = 200;
  closed.total_retrans = 3;
  // tcp_disconnect() sends the RST from the socket as CLOSE left it, then zeroes the counters
  // and reports ECONNRESET on the socket.
  Event reset = closed;
  reset.kind = EventKind::kResetSent;
  reset.old_state = S::kClose;
  reset.ts_ns = static_cast<std::uint64_t>(5.01 * kMs);
  Event report = client.other(5.02, EventKind::kError, S::kClose, ECONNRESET);
  report.sk_err = ECONNRESET;
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        closed, reset, report});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kResetSent);
  EXPECT_EQ(c.error, 0);
  EXPECT_EQ(c.tx_bytes, 101u) << "102 of sequence space acked, less the client's SYN";
  EXPECT_EQ(c.rx_bytes, 200u);
  EXPECT_EQ(c.retransmits, 3u);
}

TEST_F(ConnectionTableTest, ChildOwnerIsTheListenersUntilItsOwnerCloses) {
  SocketEvents listener{9,    testing::owner(200, "php"), testing::ipv4("0.0.0.0"),
                        8080, testing::ipv4("0.0.0.0"),   0};
  Event close_call = child.state(20, S::kCloseWait, S::kLastAck);
  close_call.owner = testing::owner(300, "worker");
  feed({listener.state(0, S::kClose, S::kListen), child.state(1, S::kSynRecv, S::kEstablished)});
  ASSERT_TRUE(kernel.find(2).has_value());
  EXPECT_EQ(kernel.find(2)->owner.source, OwnerSource::kListener);
  feed({child.state(10, S::kEstablished, S::kCloseWait), close_call,
        child.state(21, S::kLastAck, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.owner.pid, 300u);
  EXPECT_EQ(c.owner.source, OwnerSource::kSyscall);
}

TEST_F(ConnectionTableTest, MergedFinGoesFromFinWait1StraightToTimeWait) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(2, S::kEstablished, S::kFinWait1), client.state(3, S::kFinWait1, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kActive);
  EXPECT_TRUE(c.time_wait);
}

TEST_F(ConnectionTableTest, SimultaneousCloseGoesThroughClosing) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(2, S::kEstablished, S::kFinWait1), client.state(3, S::kFinWait1, S::kClosing),
        client.state(4, S::kClosing, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kSimultaneous);
  EXPECT_TRUE(c.time_wait);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kClosing), 1);
}

TEST_F(ConnectionTableTest, ResetReceivedKillsEstablishedConnection) {
  Event closed = client.state(9, S::kEstablished, S::kClose);
  closed.sk_err = ECONNRESET;
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.other(9, EventKind::kResetReceived, S::kEstablished), closed});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kResetReceived);
  EXPECT_FALSE(c.time_wait);
  EXPECT_EQ(c.error, ECONNRESET);
  ASSERT_EQ(observer.resets.size(), 1u);
  EXPECT_EQ(observer.resets[0], ResetDirection::kReceived);
}

TEST_F(ConnectionTableTest, AbortiveCloseResetAfterCloseTransitionCounts) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(5, S::kEstablished, S::kClose),
        client.other(5.01, EventKind::kResetSent, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kResetSent);
}

// The closing task can be preempted between CLOSE and its RST for longer than any grace: the
// kernel holds the record until the RST.
TEST_F(ConnectionTableTest, ResetLongAfterAbortiveCloseStillMakesItResetSent) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(5, S::kEstablished, S::kClose)});
  table.tick(1000 * kMs);
  EXPECT_TRUE(observer.closed.empty()) << "the record waits for the RST";
  feed({client.other(1000, EventKind::kResetSent, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kResetSent);
  EXPECT_EQ(c.end_ns, 5 * kMs) << "it ended at CLOSE, not at the RST";
  EXPECT_EQ(observer.resets, std::vector{ResetDirection::kSent});
  EXPECT_EQ(table.stats().late, 0u);
}

TEST_F(ConnectionTableTest, AbortiveCloseWhoseResetNeverWentIsReportedWhenTheSocketGoes) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        client.state(5, S::kEstablished, S::kClose)});
  table.tick(1000 * kMs);
  EXPECT_TRUE(observer.closed.empty());
  kernel.destroy(client.base().sock_cookie, &table);
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kUnknown);
  EXPECT_EQ(c.end_ns, 5 * kMs);
}

TEST_F(ConnectionTableTest, RefusedConnect) {
  Event closed = client.state(0.2, S::kSynSent, S::kClose);
  closed.sk_err = ECONNREFUSED;
  feed({client.state(0, S::kClose, S::kSynSent),
        client.other(0.2, EventKind::kResetReceived, S::kSynSent), closed});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kRefused);
  EXPECT_FALSE(c.has_handshake);
  EXPECT_FALSE(c.established);
}

TEST_F(ConnectionTableTest, SynTimeoutTakesSynRetransmitsFromTheKernelCount) {
  Event closed = client.state(7000, S::kSynSent, S::kClose);
  closed.sk_err = ETIMEDOUT;
  closed.total_retrans = 3;  // the kernel resent the SYN three times; two records were seen
  feed({client.state(0, S::kClose, S::kSynSent), retransmit(client, 1000, S::kSynSent, 1, 1),
        retransmit(client, 3000, S::kSynSent, 1, 2), closed});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kTimeout);
  EXPECT_EQ(c.syn_retransmits, 3u);
  EXPECT_EQ(c.retransmits, 3u);
  EXPECT_EQ(observer.retransmits.size(), 2u);
}

// The kernel counts a retransmit's segments before sending them and keeps the count when the
// send fails (a local drop); an attempt that fails earlier counts nothing.
TEST_F(ConnectionTableTest, RetransmitEventsAddUpToTheKernelCount) {
  Event closed = client.state(900, S::kFinWait1, S::kClose);
  closed.total_retrans = 7;
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        retransmit(client, 100, S::kEstablished, 2, 2),
        retransmit(client, 200, S::kEstablished, 0, 2),  // failed before counting
        retransmit(client, 300, S::kEstablished, 0, 5),  // counted, then dropped locally
        retransmit(client, 400, S::kEstablished, 1, 6),
        client.state(500, S::kEstablished, S::kFinWait1), closed});
  ASSERT_EQ(observer.retransmits.size(), 3u);
  EXPECT_EQ(observer.retransmits[0].second, 2u);
  EXPECT_EQ(observer.retransmits[1].second, 3u);
  EXPECT_EQ(observer.retransmits[2].second, 1u);
  EXPECT_EQ(closed_one().retransmits, 7u) << "one more counted, never traced: CLOSE has it";
}

// Before 6.x the tracepoint fires only for what went out: a counted failure rides on the next.
TEST_F(ConnectionTableTest, RetransmitCountedButNotTracedIsCarriedByTheNext) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kEstablished),
        retransmit(client, 100, S::kEstablished, 1, 1),
        retransmit(client, 300, S::kEstablished, 1, 3)});
  ASSERT_EQ(observer.retransmits.size(), 2u);
  EXPECT_EQ(observer.retransmits[1].second, 2u);
}

// A socket older than tracing, first seen by a retransmit: what it retransmitted before is not
// this event's, nor is what the start-up snapshot saw.
TEST_F(ConnectionTableTest, RetransmitsBeforeTracingAreNotReportedAsEvents) {
  feed({retransmit(client, 100, S::kEstablished, 2, 40)});
  ASSERT_EQ(observer.retransmits.size(), 1u);
  EXPECT_EQ(observer.retransmits[0].second, 2u);

  Connection seeded;
  seeded.sock_cookie = child.base().sock_cookie;
  seeded.state = S::kEstablished;
  seeded.retransmits = 9;
  ASSERT_TRUE(table.add_preexisting(seeded));
  feed({retransmit(child, 200, S::kEstablished, 1, 10)});
  ASSERT_EQ(observer.retransmits.size(), 2u);
  EXPECT_EQ(observer.retransmits[1].second, 1u);
}

TEST_F(ConnectionTableTest, ConnectAbandonedByApplicationIsCanceled) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(500, S::kSynSent, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kCanceled);
  EXPECT_EQ(c.error, 0);
}

TEST_F(ConnectionTableTest, ConnectWithoutALocalPortIsNoPortWithEaddrnotavail) {
  // The kernel's SYN_SENT -> CLOSE when inet_hash_connect finds no port: microseconds apart,
  // local port 0 in both, no socket error.
  client.base().lport = 0;
  feed({client.state(0, S::kClose, S::kSynSent), client.state(0.002, S::kSynSent, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.close, CloseKind::kNoPort);
  EXPECT_EQ(c.error, EADDRNOTAVAIL);
  EXPECT_EQ(c.lport, 0);
  EXPECT_EQ(c.rport, 8080);
}

TEST_F(ConnectionTableTest, PreexistingConnectionGetsNoInventedDurations) {
  feed({client.state(5000, S::kEstablished, S::kFinWait1),
        client.state(5001, S::kFinWait1, S::kFinWait2),
        client.state(5002, S::kFinWait2, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_TRUE(c.preexisting);
  EXPECT_FALSE(c.duration_ns(0).has_value());
  EXPECT_FALSE(c.has_handshake);
  EXPECT_EQ(c.state_ns[*timed_state_index(S::kEstablished)], 0u);
  EXPECT_DOUBLE_EQ(ms_in(c, S::kFinWait1), 1);
  EXPECT_EQ(path(c).front(), S::kEstablished);
  EXPECT_EQ(c.close, CloseKind::kActive);
  ASSERT_FALSE(observer.transitions.empty());
  EXPECT_FALSE(observer.transitions.front().known);
}

TEST_F(ConnectionTableTest, EventsAfterTheRecordAreLate) {
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, S::kClose)});
  table.tick(1000 * kMs);
  feed({client.other(1001, EventKind::kResetSent, S::kClose)});
  EXPECT_EQ(table.live(), 0u);
  EXPECT_EQ(table.stats().late, 1u);
  EXPECT_EQ(observer.closed.size(), 1u);
}

TEST_F(ConnectionTableTest, ConnectAgainOnTheSameSocketIsANewConnection) {
  Event refused = client.state(1, S::kSynSent, S::kClose);
  refused.sk_err = ECONNREFUSED;
  feed({client.state(0, S::kClose, S::kSynSent), refused, client.state(2, S::kClose, S::kSynSent),
        client.state(3, S::kSynSent, S::kEstablished),
        client.state(4, S::kEstablished, S::kFinWait1), client.state(5, S::kFinWait1, S::kClose)});
  table.tick(1000 * kMs);
  ASSERT_EQ(observer.closed.size(), 2u);
  EXPECT_EQ(observer.closed[0].close, CloseKind::kRefused);
  EXPECT_EQ(observer.closed[1].close, CloseKind::kActive);
  EXPECT_NE(observer.closed[0].conn_id, observer.closed[1].conn_id);
  EXPECT_EQ(observer.closed[0].sock_cookie, observer.closed[1].sock_cookie);
}

TEST_F(ConnectionTableTest, FailedConnectKeepsItsTupleAndError) {
  Event refused = client.state(1, S::kSynSent, S::kClose);
  refused.sk_err = ECONNREFUSED;
  // connect() reports the error, then resets the socket's addresses; the error report that
  // follows finds sk_err already consumed.
  Event report = client.other(1.1, EventKind::kError, S::kClose, 0);
  report.rport = 0;
  report.raddr = testing::ipv4("0.0.0.0");
  feed({client.state(0, S::kClose, S::kSynSent), refused, report});
  const Connection& c = closed_one();
  EXPECT_EQ(c.error, ECONNREFUSED);
  EXPECT_EQ(c.rport, 8080);
  EXPECT_EQ(c.raddr, testing::ipv4("127.0.0.1"));
}

TEST_F(ConnectionTableTest, SynAckRetransmitIsReportedForTheRequestSocket) {
  SocketEvents listener{9,    testing::owner(200, "php"), testing::ipv4("0.0.0.0"),
                        8080, testing::ipv4("0.0.0.0"),   0};
  feed({listener.state(0, S::kClose, S::kListen),
        child.other(1000, EventKind::kSynackRetransmit, S::kSynRecv, 1)});
  ASSERT_EQ(observer.retransmits.size(), 1u);
  EXPECT_EQ(observer.retransmits[0].first, S::kSynRecv);
  EXPECT_EQ(table.live(), 0u) << "request sockets are not tracked";
}

TEST_F(ConnectionTableTest, UnknownStateValuesDoNotBreakTheTable) {
  const auto weird = static_cast<TcpState>(99);
  feed({client.state(0, S::kClose, S::kSynSent), client.state(1, S::kSynSent, weird),
        client.state(2, weird, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(state_name(weird), "UNKNOWN");
  EXPECT_EQ(path(c)[1], weird);
  EXPECT_EQ(c.close, CloseKind::kUnknown);
}

TEST_F(ConnectionTableTest, ListenersAreNotConnections) {
  SocketEvents listener{9,    testing::owner(200, "php"), testing::ipv4("0.0.0.0"),
                        8080, testing::ipv4("0.0.0.0"),   0};
  feed({listener.state(0, S::kClose, S::kListen), listener.state(9, S::kListen, S::kClose)});
  table.drain();
  EXPECT_TRUE(observer.closed.empty());
  EXPECT_EQ(table.live(), 0u);
}

TEST_F(ConnectionTableTest, FullTableCountsOverflowInsteadOfGrowing) {
  testing::KernelModel one{1};
  ConnectionTable small{TableConfig{}, one, observer};
  SocketEvents other{7, testing::owner(1, "x"),     testing::ipv4("127.0.0.1"),
                     1, testing::ipv4("127.0.0.1"), 2};
  one.feed(client.state(0, S::kClose, S::kSynSent), small);
  one.feed(other.state(0, S::kClose, S::kSynSent), small);
  EXPECT_EQ(small.live(), 1u);
  EXPECT_EQ(one.overflow(), 1u);
  // Sockets, not events: the turned-away socket's later events are not counted again.
  one.feed(other.state(1, S::kSynSent, S::kEstablished), small);
  one.feed(other.other(2, EventKind::kResetReceived, S::kEstablished), small);
  EXPECT_EQ(one.overflow(), 1u);
  // A socket found at start that does not fit is counted by the table.
  Connection found;
  found.sock_cookie = 8;
  found.state = S::kEstablished;
  EXPECT_FALSE(small.add_preexisting(found));
  EXPECT_EQ(small.stats().overflow, 1u);
}

TEST_F(ConnectionTableTest, BirthQueuedDuringTheStartupSnapshotReplacesItsSnapshotEntry) {
  // The snapshot at start found the socket established; its birth was already in the rings.
  Connection found;
  found.sock_cookie = 1;
  found.state = S::kEstablished;
  found.first_ns = 50 * kMs;
  found.state_since_ns = 50 * kMs;
  ASSERT_TRUE(table.add_preexisting(found));
  const std::uint64_t id = kernel.find(1)->conn_id;
  feed({client.state(10, S::kClose, S::kSynSent), client.state(11, S::kSynSent, S::kEstablished),
        client.state(60, S::kEstablished, S::kFinWait1),
        client.state(61, S::kFinWait1, S::kClose)});
  const Connection& c = closed_one();
  EXPECT_EQ(c.conn_id, id);
  EXPECT_FALSE(c.preexisting);
  EXPECT_EQ(path(c),
            (std::vector<TcpState>{S::kSynSent, S::kEstablished, S::kFinWait1, S::kClose}));
  ASSERT_TRUE(c.has_handshake);
  EXPECT_EQ(c.handshake_us, 1000u);
  EXPECT_EQ(*c.duration_ns(0), 51 * kMs);
}

TEST_F(ConnectionTableTest, ServerChildFirstTransitionHasNoKnownTimeInSynRecv) {
  feed({child.state(10.5, S::kSynRecv, S::kEstablished),
        child.state(11, S::kEstablished, S::kCloseWait)});
  ASSERT_EQ(observer.transitions.size(), 2u);
  EXPECT_EQ(observer.transitions[0].old_state, S::kSynRecv);
  EXPECT_FALSE(observer.transitions[0].known);
  EXPECT_TRUE(observer.transitions[1].known);
  EXPECT_DOUBLE_EQ(static_cast<double>(observer.transitions[1].ns_in_old) / kMs, 0.5);
}

}  // namespace
}  // namespace tcptrail
