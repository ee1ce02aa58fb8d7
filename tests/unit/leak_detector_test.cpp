#include "analyzers/leak_detector.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <vector>

#include "event_builder.hpp"
#include "kernel_model.hpp"

namespace tcptrail {
namespace {

using testing::kMs;
constexpr std::uint64_t kSec = 1000 * kMs;

// Holders as a scan at scanned_at saw them; a lookup that needs a newer scan is counted.
class FakeFdOwners : public FdOwnerLookup {
public:
  bool fresh_since(std::uint64_t since_ns) override {
    if (scanned_at >= since_ns) {
      return true;
    }
    ++scans_requested;
    return false;
  }
  std::vector<FdOwner> owners(std::uint32_t inode) override {
    auto it = by_inode.find(inode);
    return it == by_inode.end() ? std::vector<FdOwner>{} : it->second;
  }
  std::uint32_t inode_of(std::uint64_t cookie, std::uint32_t /*netns_ino*/) override {
    auto it = inode_by_cookie.find(cookie);
    return it == inode_by_cookie.end() ? 0 : it->second;
  }
  std::map<std::uint32_t, std::vector<FdOwner>> by_inode;
  std::map<std::uint64_t, std::uint32_t> inode_by_cookie;
  std::uint64_t scanned_at = std::numeric_limits<std::uint64_t>::max();
  int scans_requested = 0;
};

class RecordingLeaks : public LeakObserver {
public:
  void on_leak(const Connection& conn, const Leak& leak) override {
    leaks.emplace_back(conn, leak);
  }
  void on_leak_resolved(const Connection& conn, const Leak& leak) override {
    resolved.emplace_back(conn, leak);
  }
  void on_time_wait_pressure(const TimeWaitPressure& p) override { pressure.push_back(p); }
  std::vector<std::pair<Connection, Leak>> leaks;
  std::vector<std::pair<Connection, Leak>> resolved;
  std::vector<TimeWaitPressure> pressure;
};

Connection server_conn(std::uint64_t id, std::uint32_t inode) {
  Connection c;
  c.conn_id = id;
  c.sock_cookie = id;
  c.sock_ino = inode;
  c.laddr = testing::ipv4("127.0.0.1");
  c.raddr = testing::ipv4("127.0.0.1");
  c.lport = 8080;
  c.rport = static_cast<std::uint16_t>(40000 + id);
  c.owner = testing::owner(50, "master");
  return c;
}

// A range of `size` ports from 40000, without tcp_tw_reuse.
NamespacePorts ports(std::uint32_t size) {
  return {40000, static_cast<std::uint16_t>(40000 + std::max<std::uint32_t>(size, 1) - 1), size, 0,
          ""};
}

class LeakDetectorTest : public ::testing::Test {
protected:
  static constexpr std::uint32_t kNetns = 7;
  LeakDetectorTest() {
    config.close_wait_ns = 30 * kSec;
    config.fin_wait2_ns = 60 * kSec;
    config.syn_recv_ns = 10 * kSec;
    config.ports.warn = 0.5;
  }
  // conn in `state` since since_ns, as the kernel folds it; returns it as a sweep sees it.
  SocketSnapshot hold(Connection conn, TcpState state, std::uint64_t since_ns) {
    conn.state = state;
    conn.state_since_ns = since_ns;
    kernel.destroy(conn.sock_cookie);
    kernel.seed(conn);
    SocketSnapshot s;
    s.state = state;
    s.cookie = conn.sock_cookie;
    s.inode = conn.sock_ino;
    s.laddr = conn.laddr;
    s.raddr = conn.raddr;
    s.lport = conn.lport;
    s.rport = conn.rport;
    return s;
  }
  void sweep(std::vector<SocketSnapshot> sockets, std::uint64_t now_ns) {
    detector.on_sweep(digest_sweep(kNetns, sockets, ports(0), now_ns, &kernel), now_ns);
  }

  LeakConfig config;
  FakeFdOwners fd_owners;
  RecordingLeaks observer;
  testing::KernelModel kernel;
  LeakDetector detector{config, fd_owners, kernel, observer};
};

TEST_F(LeakDetectorTest, CloseWaitPastThresholdIsReportedOnceWithFdHolders) {
  const SocketSnapshot seen = hold(server_conn(1, 777), TcpState::kCloseWait, 5 * kSec);
  fd_owners.by_inode[777] = {FdOwner{51, "worker", 9}};
  sweep({seen}, 6 * kSec);
  detector.tick(34 * kSec);
  EXPECT_TRUE(observer.leaks.empty()) << "29 s is below the 30 s threshold";
  detector.tick(35 * kSec);
  sweep({seen}, 35 * kSec);
  detector.tick(36 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  const Leak& leak = observer.leaks[0].second;
  EXPECT_EQ(leak.kind, LeakKind::kCloseWait);
  EXPECT_EQ(leak.age_ns, 30 * kSec);
  EXPECT_EQ(leak.threshold_ns, 30 * kSec);
  ASSERT_EQ(leak.owners.size(), 1u);
  EXPECT_EQ(leak.owners[0].pid, 51u);
  EXPECT_EQ(leak.owners[0].comm, "worker");
  EXPECT_EQ(leak.owners[0].fd, 9);
  EXPECT_FALSE(leak.orphan);
  EXPECT_EQ(observer.leaks[0].first.lport, 8080);
  EXPECT_EQ(observer.leaks[0].first.owner.pid, 50u);
  EXPECT_EQ(fd_owners.scans_requested, 0);

  // The application closes: the next sweep no longer finds it in CLOSE_WAIT.
  const SocketSnapshot closing = hold(server_conn(1, 777), TcpState::kLastAck, 100 * kSec);
  sweep({closing}, 100 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].second.age_ns, 95 * kSec);
  EXPECT_EQ(observer.resolved[0].second.went_to, TcpState::kLastAck) << "from the kernel's table";
  EXPECT_EQ(observer.resolved[0].first.state, TcpState::kLastAck);
}

TEST_F(LeakDetectorTest, ItsConnectionRecordResolvesALeak) {
  Connection conn = server_conn(1, 777);
  sweep({hold(conn, TcpState::kCloseWait, 0)}, kSec);
  detector.tick(30 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  conn.conn_id = kernel.find(1)->conn_id;
  conn.state = TcpState::kClose;
  conn.end_ns = 31 * kSec;
  for (TcpState state : {TcpState::kSynRecv, TcpState::kEstablished, TcpState::kCloseWait,
                         TcpState::kLastAck, TcpState::kClose}) {
    conn.path.push(state);
  }
  detector.on_closed(conn, 31 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].second.age_ns, 31 * kSec);
  EXPECT_EQ(observer.resolved[0].second.went_to, TcpState::kLastAck) << "the state after CW";
  EXPECT_EQ(observer.resolved[0].first.state, TcpState::kLastAck);
}

TEST_F(LeakDetectorTest, AFinWait2LeakWhosePeerClosesGoesToTimeWait) {
  Connection conn = server_conn(2, 0);
  sweep({hold(conn, TcpState::kFinWait2, 0)}, kSec);
  detector.tick(60 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  conn.conn_id = kernel.find(2)->conn_id;
  conn.state = TcpState::kClose;
  conn.closed_from = TcpState::kFinWait2;
  conn.peer_fin = true;
  conn.time_wait = true;  // tcp_time_wait() took it on, then closed the full socket
  for (TcpState state :
       {TcpState::kEstablished, TcpState::kFinWait1, TcpState::kFinWait2, TcpState::kClose}) {
    conn.path.push(state);
  }
  detector.on_closed(conn, 61 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].second.went_to, TcpState::kTimeWait);
}

TEST_F(LeakDetectorTest, ALeakMissingFromTwoSweepsWithoutItsRecordIsGone) {
  sweep({hold(server_conn(1, 777), TcpState::kCloseWait, 0)}, kSec);
  detector.tick(30 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  kernel.destroy(1);  // closed; its connection record was lost
  sweep({}, 31 * kSec);
  EXPECT_TRUE(observer.resolved.empty()) << "its record may still be on its way";
  sweep({}, 32 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_FALSE(observer.resolved[0].second.went_to.has_value());
  EXPECT_EQ(observer.resolved[0].first.state, TcpState::kCloseWait) << "the last state seen";
  EXPECT_EQ(observer.resolved[0].second.age_ns, 32 * kSec);
}

TEST_F(LeakDetectorTest, ALeakMissingFromASweepIsResolvedByItsLateRecord) {
  Connection conn = server_conn(1, 777);
  sweep({hold(conn, TcpState::kCloseWait, 0)}, kSec);
  detector.tick(30 * kSec);
  conn.conn_id = kernel.find(1)->conn_id;
  kernel.destroy(1);
  sweep({}, 31 * kSec);
  conn.state = TcpState::kClose;
  conn.path.push(TcpState::kCloseWait);
  conn.path.push(TcpState::kClose);  // reset by the peer in CLOSE_WAIT
  detector.on_closed(conn, 31 * kSec + kMs);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].second.went_to, TcpState::kClose);
  sweep({}, 32 * kSec);
  EXPECT_EQ(observer.resolved.size(), 1u);
}

TEST_F(LeakDetectorTest, WaitsForHoldersScannedAfterTheStateWasEntered) {
  fd_owners.scanned_at = 4 * kSec;  // before the socket entered CLOSE_WAIT
  sweep({hold(server_conn(1, 777), TcpState::kCloseWait, 5 * kSec)}, 6 * kSec);
  detector.tick(35 * kSec);
  EXPECT_TRUE(observer.leaks.empty()) << "a descriptor passed on since would be missed";
  EXPECT_EQ(fd_owners.scans_requested, 1);
  fd_owners.scanned_at = 35 * kSec;
  fd_owners.by_inode[777] = {FdOwner{51, "worker", 9}};
  detector.tick(35 * kSec + kMs);
  ASSERT_EQ(observer.leaks.size(), 1u);
  EXPECT_EQ(observer.leaks[0].second.age_ns, 30 * kSec + kMs);
  ASSERT_EQ(observer.leaks[0].second.owners.size(), 1u);
  EXPECT_EQ(observer.leaks[0].second.owners[0].pid, 51u);
}

TEST_F(LeakDetectorTest, SocketAcceptedAfterEnteringCloseWaitIsFoundByCookie) {
  // Still in the accept queue when the peer's FIN came: no inode then, nor at the sweep.
  fd_owners.inode_by_cookie[4] = 888;
  fd_owners.by_inode[888] = {FdOwner{52, "server", 5}};
  sweep({hold(server_conn(4, 0), TcpState::kCloseWait, 0)}, kSec);
  detector.tick(30 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  ASSERT_EQ(observer.leaks[0].second.owners.size(), 1u);
  EXPECT_EQ(observer.leaks[0].second.owners[0].pid, 52u);
  EXPECT_FALSE(observer.leaks[0].second.orphan);
}

TEST_F(LeakDetectorTest, PromptCloseIsNeverReported) {
  sweep({hold(server_conn(1, 777), TcpState::kCloseWait, 0)}, kMs);
  // Closed after the sweep saw it, before the threshold, and before the next sweep.
  hold(server_conn(1, 777), TcpState::kLastAck, 2 * kMs);
  detector.tick(100 * kSec);
  EXPECT_TRUE(observer.leaks.empty());
  EXPECT_TRUE(observer.resolved.empty());
}

TEST_F(LeakDetectorTest, SocketGoneBeforeItsThresholdIsNeverReported) {
  sweep({hold(server_conn(1, 777), TcpState::kCloseWait, 0)}, kMs);
  kernel.destroy(1);
  detector.tick(100 * kSec);
  EXPECT_TRUE(observer.leaks.empty());
}

TEST_F(LeakDetectorTest, FinWait2WithoutHolderIsOrphan) {
  sweep({hold(server_conn(2, 0), TcpState::kFinWait2, 0)}, kSec);
  detector.tick(60 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  EXPECT_EQ(observer.leaks[0].second.kind, LeakKind::kFinWait2);
  EXPECT_TRUE(observer.leaks[0].second.orphan);
  EXPECT_TRUE(observer.leaks[0].first.orphan);
}

TEST_F(LeakDetectorTest, PreexistingCloseWaitAgesFromFirstSight) {
  Connection conn = server_conn(3, 5);
  conn.preexisting = true;
  sweep({hold(conn, TcpState::kCloseWait, 1000 * kSec)}, 1000 * kSec);
  detector.tick(1029 * kSec);
  EXPECT_TRUE(observer.leaks.empty());
  detector.tick(1030 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  EXPECT_TRUE(observer.leaks[0].first.preexisting);
}

// A client's connection (conn_id 41, cookie 6, redis-server's) in `netns_ino` that closed at 3 s
// from FIN_WAIT2, entered at 1 s, as an orphan whose peer never sent its FIN.
Connection orphaned_in_fin_wait2(std::uint32_t netns_ino) {
  Connection closed = server_conn(6, 0);
  closed.conn_id = 41;
  closed.netns_ino = netns_ino;
  closed.role = Role::kClient;
  closed.owner = testing::owner(70, "redis-server");
  closed.closed_from = TcpState::kFinWait2;
  closed.state = TcpState::kClose;
  closed.end_ns = 3 * kSec;
  closed.state_ns[*timed_state_index(TcpState::kFinWait2)] = 2 * kSec;
  closed.time_wait = true;
  return closed;
}

// The FIN_WAIT2 timewait socket tcp_time_wait() hands `closed` to, as a sweep shows it.
SocketSnapshot minisock_of(const Connection& closed) {
  SocketSnapshot minisock;
  minisock.kind = SnapshotKind::kTimeWait;
  minisock.state = TcpState::kFinWait2;
  minisock.cookie = closed.sock_cookie;
  minisock.laddr = closed.laddr;
  minisock.raddr = closed.raddr;
  minisock.lport = closed.lport;
  minisock.rport = closed.rport;
  return minisock;
}

// The leak `observer` reported is `closed`'s, aged from when it entered FIN_WAIT2.
void expect_leak_of(const RecordingLeaks& observer, const Connection& closed) {
  ASSERT_EQ(observer.leaks.size(), 1u);
  const auto& [conn, leak] = observer.leaks[0];
  EXPECT_EQ(conn.conn_id, closed.conn_id) << "the connection's id, not one made from the cookie";
  EXPECT_EQ(conn.owner.pid, closed.owner.pid) << "the process that closed it";
  EXPECT_EQ(conn.role, Role::kClient);
  EXPECT_EQ(leak.kind, LeakKind::kFinWait2);
  EXPECT_EQ(leak.age_ns, 60 * kSec) << "from when it entered FIN_WAIT2, not from first sight";
  EXPECT_TRUE(leak.orphan);
}

// The kernel hands an orphan in FIN_WAIT2 whose peer never sent its FIN to a timewait socket
// with the same cookie: the sweeps then see a minisock, which is still that connection.
TEST_F(LeakDetectorTest, OrphanedFinWait2MinisockIsTheConnectionItWas) {
  const Connection closed = orphaned_in_fin_wait2(kNetns);
  detector.on_closed(closed, 3 * kSec);
  sweep({minisock_of(closed)}, 4 * kSec);
  EXPECT_TRUE(observer.leaks.empty());
  sweep({minisock_of(closed)}, 61 * kSec);
  expect_leak_of(observer, closed);
}

// The record of the connection may come after a sweep has shown its minisock: the leak is
// still that connection's.
TEST_F(LeakDetectorTest, OrphanedFinWait2MinisockSweptBeforeItsRecordIsTheConnectionItWas) {
  const Connection closed = orphaned_in_fin_wait2(kNetns);
  sweep({minisock_of(closed)}, 3 * kSec);
  detector.on_closed(closed, 3 * kSec);
  sweep({minisock_of(closed)}, 61 * kSec);
  expect_leak_of(observer, closed);
}

// Unless the unknown minisock was reported already: its leak_resolved then names what its leak
// named.
TEST_F(LeakDetectorTest, AMinisockReportedBeforeItsRecordCameKeepsItsName) {
  const Connection closed = orphaned_in_fin_wait2(kNetns);
  sweep({minisock_of(closed)}, 3 * kSec);
  sweep({minisock_of(closed)}, 64 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  detector.on_closed(closed, 64 * kSec);
  sweep({}, 65 * kSec);
  sweep({}, 66 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].first.conn_id, observer.leaks[0].first.conn_id);
}

TEST_F(LeakDetectorTest, AFullFinWait2LeakGoesOnAsItsMinisock) {
  sweep({hold(server_conn(7, 0), TcpState::kFinWait2, 0)}, kSec);
  detector.tick(60 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  Connection closed = server_conn(7, 0);
  closed.conn_id = kernel.find(7)->conn_id;
  closed.netns_ino = kNetns;
  closed.closed_from = TcpState::kFinWait2;
  closed.state = TcpState::kClose;
  closed.end_ns = 61 * kSec;
  closed.state_ns[*timed_state_index(TcpState::kFinWait2)] = 61 * kSec;
  detector.on_closed(closed, 61 * kSec);
  EXPECT_TRUE(observer.resolved.empty()) << "the same leak, not resolved and reported again";
  SocketSnapshot minisock;
  minisock.kind = SnapshotKind::kTimeWait;
  minisock.state = TcpState::kFinWait2;
  minisock.cookie = 7;
  sweep({minisock}, 62 * kSec);
  EXPECT_EQ(observer.leaks.size(), 1u);
  sweep({}, 70 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u) << "resolved once the minisock is gone";
  EXPECT_EQ(observer.resolved[0].first.conn_id, closed.conn_id);
  EXPECT_EQ(observer.resolved[0].second.age_ns, 70 * kSec);
  EXPECT_FALSE(observer.resolved[0].second.went_to.has_value()) << "its timer ran out: gone";
}

// The peer's FIN turns the FIN_WAIT2 timewait sock into TIME_WAIT in place (same cookie): the
// sweep after says where the leak went.
TEST_F(LeakDetectorTest, AnOrphanedFinWait2MinisockThatGetsItsFinGoesToTimeWait) {
  SocketSnapshot minisock;
  minisock.kind = SnapshotKind::kTimeWait;
  minisock.state = TcpState::kFinWait2;
  minisock.cookie = 9;
  const std::vector<SocketSnapshot> before{minisock};
  detector.on_sweep(digest_sweep(kNetns, before, ports(1000), 0, &kernel), 0);
  detector.on_sweep(digest_sweep(kNetns, before, ports(1000), 60 * kSec, &kernel), 60 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  minisock.state = TcpState::kTimeWait;
  const std::vector<SocketSnapshot> after{minisock};
  const SweepDigest digest = digest_sweep(kNetns, after, ports(1000), 61 * kSec, &kernel, {9});
  EXPECT_EQ(digest.to_time_wait, std::vector<std::uint64_t>{9});
  detector.on_sweep(digest, 61 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].second.went_to, TcpState::kTimeWait);
  EXPECT_EQ(observer.resolved[0].first.state, TcpState::kTimeWait);
  EXPECT_EQ(digest_sweep(kNetns, after, ports(1000), 62 * kSec, &kernel, {}).to_time_wait.size(),
            0u)
      << "only sockets that were in FIN_WAIT2 are named";
}

TEST_F(LeakDetectorTest, SocketsTheKernelDoesNotFollowAreNotWatched) {
  SocketSnapshot stranger = hold(server_conn(5, 9), TcpState::kCloseWait, 0);
  kernel.destroy(5);
  sweep({stranger}, kSec);
  detector.tick(100 * kSec);
  EXPECT_TRUE(observer.leaks.empty());
}

TEST_F(LeakDetectorTest, HalfOpenRequestSocketsComeFromSweeps) {
  SocketSnapshot listener;
  listener.state = TcpState::kListen;
  listener.laddr = testing::ipv4("0.0.0.0");
  listener.lport = 8080;
  listener.inode = 99;
  SocketSnapshot request;
  request.kind = SnapshotKind::kRequest;
  request.state = TcpState::kSynRecv;
  request.laddr = testing::ipv4("10.0.0.1");
  request.raddr = testing::ipv4("10.0.0.2");
  request.lport = 8080;
  request.rport = 5555;
  request.cookie = 1234;
  fd_owners.by_inode[99] = {FdOwner{60, "nginx", 6}};
  std::vector<SocketSnapshot> both{listener, request};
  detector.on_sweep(digest_sweep(7, both, ports(1000), 0, &kernel), 0);
  detector.on_sweep(digest_sweep(7, both, ports(1000), 9 * kSec, &kernel), 9 * kSec);
  EXPECT_TRUE(observer.leaks.empty());
  detector.on_sweep(digest_sweep(7, both, ports(1000), 10 * kSec, &kernel), 10 * kSec);
  ASSERT_EQ(observer.leaks.size(), 1u);
  EXPECT_EQ(observer.leaks[0].second.kind, LeakKind::kSynRecv);
  EXPECT_EQ(observer.leaks[0].first.owner.pid, 60u);
  EXPECT_EQ(observer.leaks[0].first.rport, 5555);
  // A sweep of another namespace does not resolve it; one of its own without it does.
  detector.on_sweep(digest_sweep(8, {}, ports(1000), 11 * kSec, &kernel), 11 * kSec);
  EXPECT_TRUE(observer.resolved.empty());
  std::vector<SocketSnapshot> only_listener{listener};
  detector.on_sweep(digest_sweep(7, only_listener, ports(1000), 12 * kSec, &kernel), 12 * kSec);
  ASSERT_EQ(observer.resolved.size(), 1u);
  EXPECT_EQ(observer.resolved[0].second.age_ns, 12 * kSec);
}

TEST_F(LeakDetectorTest, TimeWaitPressureWarnsPerDestinationAndRepeatsSlowly) {
  std::vector<SocketSnapshot> sockets;
  for (int i = 0; i < 60; ++i) {
    SocketSnapshot tw;
    tw.kind = SnapshotKind::kTimeWait;
    tw.state = TcpState::kTimeWait;
    tw.laddr = testing::ipv4("10.0.0.2");
    tw.raddr = testing::ipv4("10.0.0.1");
    tw.lport = static_cast<std::uint16_t>(40000 + i);
    tw.rport = i < 50 ? 80 : 81;  // 50 to :80, 10 to :81
    sockets.push_back(tw);
  }
  detector.on_sweep(digest_sweep(7, sockets, ports(100), 0, &kernel), 0);
  ASSERT_EQ(observer.pressure.size(), 1u);
  EXPECT_EQ(observer.pressure[0].rport, 80);
  EXPECT_EQ(observer.pressure[0].count, 50u);
  EXPECT_EQ(observer.pressure[0].port_range, 100u);
  EXPECT_DOUBLE_EQ(observer.pressure[0].ratio, 0.5);
  detector.on_sweep(digest_sweep(7, sockets, ports(100), 1 * kSec, &kernel), 1 * kSec);
  EXPECT_EQ(observer.pressure.size(), 1u) << "not again within the repeat interval";
  detector.on_sweep(digest_sweep(7, sockets, ports(100), 10 * kSec, &kernel), 10 * kSec);
  EXPECT_EQ(observer.pressure.size(), 2u);
  detector.on_sweep(digest_sweep(7, sockets, ports(0), 30 * kSec, &kernel), 30 * kSec);
  EXPECT_EQ(observer.pressure.size(), 2u) << "unknown port range: no warning";
}

}  // namespace
}  // namespace tcptrail
