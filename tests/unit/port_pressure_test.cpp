#include "analyzers/port_pressure.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analyzers/leak_detector.hpp"
#include "event_builder.hpp"
#include "tcptrail/live_connections.hpp"

namespace tcptrail {
namespace {

using testing::kMs;
constexpr std::uint64_t kSec = 1000 * kMs;
constexpr std::uint32_t kNetns = 4026532300u;

// The source address connect() picks for raddr.
IpAddress local_for(const char* raddr) {
  return testing::ipv4(std::string_view(raddr).starts_with("127.") ? "127.0.0.1" : "10.0.0.1");
}

SocketSnapshot time_wait_socket(const char* raddr, std::uint16_t lport) {
  SocketSnapshot s;
  s.kind = SnapshotKind::kTimeWait;
  s.state = TcpState::kTimeWait;
  s.laddr = local_for(raddr);
  s.raddr = testing::ipv4(raddr);
  s.lport = lport;
  s.rport = 6379;
  return s;
}

class PortPressureTest : public ::testing::Test {
protected:
  PortPressure pressure{PortPressureConfig{},
                        [this](const TimeWaitPressure& p) { warnings.push_back(p); }};
  std::vector<TimeWaitPressure> warnings;

  void sweep(std::uint64_t at_ns, const std::vector<SocketSnapshot>& sockets,
             std::uint32_t size = 200, std::uint8_t tw_reuse = 0, std::string name = "",
             std::uint32_t tw_reuse_delay_ms = 1000) {
    NamespacePorts ports{40000,
                         static_cast<std::uint16_t>(40000 + size - 1),
                         size,
                         tw_reuse,
                         std::move(name),
                         tw_reuse_delay_ms};
    pressure.on_sweep(digest_sweep(kNetns, sockets, std::move(ports), at_ns, nullptr));
  }
  // A connection to raddr:6379 entering TIME_WAIT at at_ns, as the table reports it.
  void enter_time_wait(std::uint64_t at_ns, const char* raddr = "10.0.0.2") {
    const SocketSnapshot s = time_wait_socket(raddr, 0);
    Connection conn;
    conn.netns_ino = kNetns;
    conn.laddr = s.laddr;
    conn.raddr = s.raddr;
    conn.rport = s.rport;
    conn.end_ns = at_ns;
    conn.time_wait = true;
    pressure.on_time_wait(conn);
  }
};

TEST_F(PortPressureTest, BurstThatFillsTheRangeInASecondIsWarnedEarly) {
  sweep(0, {}, 200, 0, "client-ns");
  // 200 connections per second, each closed first by the client: the range lasts one second,
  // and the next sweep would come too late.
  std::size_t entered = 0;
  for (; entered < 200 && warnings.empty(); ++entered) {
    enter_time_wait(100 * kMs + entered * 5 * kMs);
  }
  ASSERT_EQ(warnings.size(), 1u) << "no warning before the range ran out";
  const TimeWaitPressure& w = warnings.front();
  EXPECT_LE(entered, 25u) << "warned once a tenth was taken and the rest would last < 10 s";
  EXPECT_EQ(w.taken, entered);
  EXPECT_EQ(w.count, entered);
  EXPECT_EQ(w.live, 0u);
  EXPECT_EQ(w.port_range, 200u);
  EXPECT_NEAR(w.growth_per_s, 200, 30);
  ASSERT_TRUE(w.exhausted_in_ns.has_value());
  EXPECT_NEAR(static_cast<double>(*w.exhausted_in_ns) / kSec, (200.0 - entered) / 200, 0.2);
  EXPECT_EQ(w.netns_ino, kNetns);
  EXPECT_EQ(w.netns_name, "client-ns");
  EXPECT_FALSE(w.reusable);
}

// Most sweeps leave TIME_WAIT uncounted: what the last count saw stays, and entries add to it.
TEST_F(PortPressureTest, SweepWithoutTimeWaitCountsKeepsTheLastCount) {
  std::vector<SocketSnapshot> population;
  for (int i = 0; i < 80; ++i) {
    population.push_back(time_wait_socket("10.0.0.2", static_cast<std::uint16_t>(40000 + i)));
  }
  sweep(0, population);
  SweepDigest uncounted = digest_sweep(kNetns, {}, {40000, 40199, 200, 0, ""}, kSec, nullptr);
  uncounted.time_wait_counted = false;
  pressure.on_sweep(uncounted);
  EXPECT_TRUE(warnings.empty());
  // One more at once: 81 of 200 ports, and the range would last a blink at that rate. Had the
  // sweep counted none, 1 of 200 would be no warning.
  enter_time_wait(kSec + 100 * kMs);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings.front().count, 81u) << "80 counted, 1 entered since";
}

// The gauge behind tcptrail_local_ports_in_use_ratio: the worst destination of each swept
// namespace now, warned about or not, and back down once its TIME_WAIT is gone.
TEST_F(PortPressureTest, WorstRatiosFollowTheWorstDestinationUpAndDown) {
  const auto all = [](const TimeWaitPressure&) { return true; };
  EXPECT_TRUE(pressure.worst_ratios(0, all).empty()) << "no namespace swept yet";
  std::vector<SocketSnapshot> population;
  for (int i = 0; i < 40; ++i) {
    population.push_back(time_wait_socket("10.0.0.2", static_cast<std::uint16_t>(40000 + i)));
  }
  for (int i = 0; i < 10; ++i) {
    population.push_back(time_wait_socket("10.0.0.3", static_cast<std::uint16_t>(40100 + i)));
  }
  sweep(0, population);
  EXPECT_TRUE(warnings.empty()) << "a fifth of the range, not growing";
  using Ratios = std::map<std::uint32_t, double>;
  EXPECT_EQ(pressure.worst_ratios(kSec, all), (Ratios{{kNetns, 0.2}}));
  // Only the destinations a filter lets through.
  EXPECT_EQ(
      pressure.worst_ratios(
          kSec, [](const TimeWaitPressure& p) { return p.raddr == testing::ipv4("10.0.0.3"); }),
      (Ratios{{kNetns, 0.05}}));
  EXPECT_EQ(pressure.worst_ratios(kSec, [](const TimeWaitPressure&) { return false; }),
            (Ratios{{kNetns, 0.0}}));
  // Entries between counted sweeps count at once.
  enter_time_wait(2 * kSec);
  EXPECT_EQ(pressure.worst_ratios(2 * kSec, all), (Ratios{{kNetns, 0.205}}));
  // The next count finds them expired.
  sweep(61 * kSec, {});
  EXPECT_EQ(pressure.worst_ratios(62 * kSec, all), (Ratios{{kNetns, 0.0}}));
}

TEST_F(PortPressureTest, SteadyTimeWaitWellInsideTheRangeIsNotWarned) {
  // 100 per second for a minute: 6000 TIME_WAIT sockets of 28232 ports, as many expiring as
  // entering. Sweeps see the population; entries go on between them.
  std::vector<SocketSnapshot> population;
  for (int i = 0; i < 6000; ++i) {
    population.push_back(time_wait_socket("10.0.0.2", static_cast<std::uint16_t>(40000 + i)));
  }
  for (std::uint64_t second = 0; second < 20; ++second) {
    sweep(second * kSec, population, 28232);
    for (int i = 0; i < 100; ++i) {
      enter_time_wait(second * kSec + static_cast<std::uint64_t>(i) * 10 * kMs + 1);
    }
  }
  EXPECT_TRUE(warnings.empty()) << warnings.front().taken << " taken, growth "
                                << warnings.front().growth_per_s;
}

TEST_F(PortPressureTest, ReuseOnLoopbackCountsOnlyTheLastSecondOfTimeWait) {
  // tcp_tw_reuse=2: towards 127.0.0.1 connect() takes TIME_WAIT ports older than a second back;
  // towards 10.0.0.2 it cannot. 60 per second for 5 s against a 200-port range.
  for (std::uint64_t second = 0; second < 5; ++second) {
    sweep(second * kSec, {}, 200, 2);
    for (int i = 0; i < 60; ++i) {
      enter_time_wait(second * kSec + static_cast<std::uint64_t>(i) * 16 * kMs + 1, "127.0.0.1");
    }
  }
  EXPECT_TRUE(warnings.empty()) << warnings.front().taken << " taken";

  for (int i = 0; i < 60; ++i) {
    enter_time_wait(5 * kSec + static_cast<std::uint64_t>(i) * 16 * kMs + 1, "10.0.0.2");
  }
  ASSERT_EQ(warnings.size(), 1u) << "not reusable: the same rate runs out in seconds";
  EXPECT_EQ(warnings.front().raddr, testing::ipv4("10.0.0.2"));
  EXPECT_FALSE(warnings.front().reusable);
  EXPECT_EQ(warnings.front().tw_reuse, 2);
}

TEST_F(PortPressureTest, ReuseCountsTheTimeWaitOfTheNamespacesReuseDelay) {
  // tcp_tw_reuse_delay=3000: connect() takes a loopback TIME_WAIT port back only 3 s after it
  // entered TIME_WAIT. The same 60 per second as above then keeps 180 of 200 ports taken.
  for (std::uint64_t second = 0; second < 5; ++second) {
    sweep(second * kSec, {}, 200, 2, "", 3000);
    for (int i = 0; i < 60; ++i) {
      enter_time_wait(second * kSec + static_cast<std::uint64_t>(i) * 16 * kMs + 1, "127.0.0.1");
    }
  }
  ASSERT_FALSE(warnings.empty()) << "90% of the range is taken";
  const TimeWaitPressure& w = warnings.front();
  EXPECT_TRUE(w.reusable);
  EXPECT_GE(w.taken, 100u) << "more than the last second's 60";
  EXPECT_LE(w.taken, 180u);
}

TEST_F(PortPressureTest, LiveClientConnectionsTakePortsAndServerChildrenDoNot) {
  std::vector<SocketSnapshot> sockets;
  for (int i = 0; i < 120; ++i) {
    SocketSnapshot client;
    client.state = TcpState::kEstablished;
    client.laddr = testing::ipv4("10.0.0.1");
    client.raddr = testing::ipv4("10.0.0.2");
    client.lport = static_cast<std::uint16_t>(40000 + i);
    client.rport = 3306;
    sockets.push_back(client);
    SocketSnapshot child = client;  // accepted on a service port outside the range
    child.lport = 3306;
    child.rport = static_cast<std::uint16_t>(50000 + i);
    sockets.push_back(child);
  }
  sweep(0, sockets);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings.front().live, 120u);
  EXPECT_EQ(warnings.front().taken, 120u);
  EXPECT_EQ(warnings.front().rport, 3306);
  EXPECT_DOUBLE_EQ(warnings.front().ratio, 0.6);
}

// Every socket the kernel follows, in the state the sweep found it in.
class FollowsEverySocket : public LiveConnections {
public:
  Seeded seed(Connection& /*conn*/) override { return Seeded::kKnown; }
  void seed_listener(std::uint32_t /*netns_ino*/, std::uint16_t /*port*/,
                     const Owner& /*owner*/) override {}
  [[nodiscard]] std::optional<Connection> find(std::uint64_t sock_cookie) const override {
    Connection conn;
    conn.sock_cookie = sock_cookie;
    conn.conn_id = sock_cookie;
    return conn;
  }
  [[nodiscard]] std::size_t open() const override { return 0; }
};

TEST(PortPressureDigest, ClientsInLeakStatesAndOrphanedFinWait2TakePortsToo) {
  // A pool towards 10.0.0.2:3306: 20 established, 50 left in CLOSE_WAIT, 30 shut down in
  // FIN_WAIT2, and 40 closed whose peer never answered (FIN_WAIT2 timewait sockets).
  std::vector<SocketSnapshot> sockets;
  std::uint16_t lport = 40000;
  auto add = [&](SnapshotKind kind, TcpState state, int count) {
    for (int i = 0; i < count; ++i) {
      SocketSnapshot s;
      s.kind = kind;
      s.state = state;
      s.cookie = lport;
      s.laddr = testing::ipv4("10.0.0.1");
      s.raddr = testing::ipv4("10.0.0.2");
      s.lport = lport++;
      s.rport = 3306;
      sockets.push_back(s);
    }
  };
  add(SnapshotKind::kFull, TcpState::kEstablished, 20);
  add(SnapshotKind::kFull, TcpState::kCloseWait, 50);
  add(SnapshotKind::kFull, TcpState::kFinWait2, 30);
  add(SnapshotKind::kTimeWait, TcpState::kFinWait2, 40);
  add(SnapshotKind::kTimeWait, TcpState::kTimeWait, 10);
  const FollowsEverySocket live;
  const SweepDigest digest =
      digest_sweep(kNetns, sockets, NamespacePorts{40000, 40199, 200, 0, "", 1000}, 0, &live);
  ASSERT_EQ(digest.destinations.size(), 1u);
  EXPECT_EQ(digest.destinations.front().live, 140u);
  EXPECT_EQ(digest.destinations.front().time_wait, 10u);
  EXPECT_EQ(digest.held.size(), 80u) << "still watched as leaks";
  EXPECT_EQ(digest.minisocks.size(), 40u);
}

TEST_F(PortPressureTest, RepeatsSlowlyAndNeverWithoutAKnownRange) {
  for (int i = 0; i < 150; ++i) {
    enter_time_wait(static_cast<std::uint64_t>(i) * kMs + 1);
  }
  EXPECT_TRUE(warnings.empty()) << "no sweep yet: the range is unknown";
  sweep(200 * kMs, {});
  for (int i = 0; i < 150; ++i) {
    enter_time_wait(300 * kMs + static_cast<std::uint64_t>(i) * kMs);
  }
  EXPECT_EQ(warnings.size(), 1u) << "once, then not within the repeat interval";
  sweep(11 * kSec,
        std::vector<SocketSnapshot>(150, time_wait_socket("10.0.0.2", 40000)));  // still 150 there
  EXPECT_EQ(warnings.size(), 2u);
}

// Connection records of different CPUs arrive up to a flush interval out of their CLOSE order
// (the kernel batches those that closed in order): a late record counts as if it had come in
// order, and does not take the destination's time back.
TEST_F(PortPressureTest, TimeWaitRecordsOutOfOrderCountAsInOrder) {
  sweep(0, {});
  sweep(1 * kSec, {time_wait_socket("10.0.0.2", 40000)});  // counts one
  for (std::uint64_t i = 1; i <= 30; ++i) {
    enter_time_wait(1 * kSec + i * 10 * kMs);  // after the sweep: counted from records
    enter_time_wait(1 * kSec - i * 10 * kMs);  // before it: already in the sweep's count
  }
  ASSERT_EQ(warnings.size(), 1u) << "once: an older record is no new time to warn again";
  EXPECT_EQ(warnings.front().count, 20u) << "the swept one and the first 19 after the sweep";
  EXPECT_EQ(warnings.front().ts_ns, 1 * kSec + 190 * kMs);
}

TEST(TimeWaitReusable, FollowsTcpTwReuse) {
  const IpAddress lo = testing::ipv4("127.0.0.1");
  const IpAddress other = testing::ipv4("10.0.0.2");
  const IpAddress lo6 = testing::ipv6("::1");
  const IpAddress mapped_lo = testing::ipv6("::ffff:127.0.0.5");
  EXPECT_FALSE(time_wait_reusable(0, lo, lo));
  EXPECT_TRUE(time_wait_reusable(1, other, other));
  EXPECT_TRUE(time_wait_reusable(2, lo, lo));
  EXPECT_TRUE(time_wait_reusable(2, lo6, lo6));
  EXPECT_TRUE(time_wait_reusable(2, mapped_lo, mapped_lo));
  EXPECT_FALSE(time_wait_reusable(2, other, other));
  EXPECT_FALSE(time_wait_reusable(2, testing::ipv6("2001:db8::1"), testing::ipv6("::2")));
}

}  // namespace
}  // namespace tcptrail
