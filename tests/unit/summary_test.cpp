#include "analyzers/summary.hpp"

#include <gtest/gtest.h>

#include "event_builder.hpp"

namespace tcptrail {
namespace {

Connection ended(Role role, const Owner& owner, const char* raddr, std::uint16_t rport,
                 CloseKind close, TcpState closed_from = TcpState::kFinWait2) {
  Connection conn;
  conn.role = role;
  conn.owner = owner;
  conn.laddr = testing::ipv4("10.0.0.1");
  conn.raddr = testing::ipv4(raddr);
  conn.rport = rport;
  conn.close = close;
  conn.closed_from = closed_from;
  conn.end_ns = 1;
  return conn;
}

std::uint64_t closes(const SummaryCounts& c, CloseKind kind) {
  return c.closes[static_cast<std::size_t>(kind)];
}

TEST(Summary, ServerPeersAreClientHostsWithoutTheirEphemeralPorts) {
  Summary summary;
  const Owner nginx = testing::owner(80, "nginx");
  for (std::uint16_t port = 50000; port < 50005; ++port) {
    summary.count_connection(
        ended(Role::kServer, nginx, "10.0.0.7", port, CloseKind::kPassive, TcpState::kLastAck));
  }
  // A socket whose role is unknown keeps no port either: it may be ephemeral.
  summary.count_connection(ended(Role::kUnknown, Owner{}, "10.0.0.7", 51000, CloseKind::kUnknown));
  const std::vector<PeerRow> peers = summary.per_peer(20);
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].addr, testing::ipv4("10.0.0.7"));
  EXPECT_FALSE(peers[0].port.has_value());
  EXPECT_EQ(peers[0].counts.connections, 6u);
  EXPECT_EQ(closes(peers[0].counts, CloseKind::kPassive), 5u);
  EXPECT_EQ(closes(peers[0].counts, CloseKind::kUnknown), 1u);
}

TEST(Summary, FailedConnectsAndCloseKindsPerService) {
  Summary summary;
  const Owner php = testing::owner(1234, "php-fpm");
  summary.count_connection(ended(Role::kClient, php, "10.0.0.2", 6379, CloseKind::kActive));
  summary.count_connection(
      ended(Role::kClient, php, "10.0.0.2", 6379, CloseKind::kNoPort, TcpState::kSynSent));
  summary.count_connection(
      ended(Role::kClient, php, "10.0.0.2", 6379, CloseKind::kNoPort, TcpState::kSynSent));
  summary.count_connection(
      ended(Role::kClient, php, "10.0.0.3", 3306, CloseKind::kRefused, TcpState::kSynSent));
  const std::vector<PeerRow> peers = summary.per_peer(20);
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].addr, testing::ipv4("10.0.0.2")) << "busiest first";
  EXPECT_EQ(peers[0].port, 6379);
  EXPECT_EQ(peers[0].counts.connections, 3u);
  EXPECT_EQ(peers[0].counts.failed_connects, 2u);
  EXPECT_EQ(closes(peers[0].counts, CloseKind::kNoPort), 2u);
  EXPECT_EQ(closes(peers[0].counts, CloseKind::kActive), 1u);
  EXPECT_EQ(peers[1].port, 3306);
  EXPECT_EQ(peers[1].counts.failed_connects, 1u);
  const std::vector<ProcessRow> processes = summary.per_process(20);
  ASSERT_EQ(processes.size(), 1u);
  EXPECT_EQ(processes[0].pid, 1234u);
  EXPECT_EQ(processes[0].comm, "php-fpm");
  EXPECT_EQ(processes[0].counts.failed_connects, 3u);
}

TEST(Summary, ConnectionsWithoutAnOwnerShareOneRow) {
  Summary summary;
  Owner stray;  // pid 0 with a comm left over: still no owner
  stray.comm[0] = 'x';
  summary.count_connection(ended(Role::kServer, Owner{}, "10.0.0.7", 1, CloseKind::kPassive));
  summary.count_connection(ended(Role::kServer, stray, "10.0.0.7", 2, CloseKind::kPassive));
  summary.count_leak(ended(Role::kServer, Owner{}, "10.0.0.7", 3, CloseKind::kUnknown));
  const std::vector<ProcessRow> processes = summary.per_process(20);
  ASSERT_EQ(processes.size(), 1u);
  EXPECT_EQ(processes[0].pid, 0u);
  EXPECT_EQ(processes[0].comm, "");
  EXPECT_EQ(processes[0].counts.connections, 2u);
  EXPECT_EQ(processes[0].counts.leaks, 1u);
}

TEST(Summary, KeepsTheBusiestRows) {
  Summary summary;
  for (std::uint32_t pid = 1; pid <= 30; ++pid) {
    for (std::uint32_t n = 0; n < pid; ++n) {
      summary.count_connection(
          ended(Role::kClient, testing::owner(pid, "w"), "10.0.0.2", 80, CloseKind::kActive));
    }
  }
  const std::vector<ProcessRow> processes = summary.per_process(20);
  ASSERT_EQ(processes.size(), 20u);
  EXPECT_EQ(processes.front().pid, 30u);
  EXPECT_EQ(processes.back().pid, 11u);
}

// Lifetimes from 1 ms to 100 ms, one each, and a handshake per connection: each percentile is
// within the histogram's 12.5% of the sample it names.
TEST(Summary, LifetimeAndHandshakePercentilesPerRow) {
  Summary summary;
  const Owner pool = testing::owner(4321, "pool");
  for (std::uint64_t ms = 1; ms <= 100; ++ms) {
    Connection conn = ended(Role::kClient, pool, "10.0.0.2", 5432, CloseKind::kActive);
    conn.established = true;
    conn.first_ns = 1'000'000'000;
    conn.end_ns = conn.first_ns + ms * 1'000'000;
    conn.has_handshake = true;
    conn.handshake_us = static_cast<std::uint32_t>(ms * 10);
    summary.count_connection(conn);
  }
  // A failed connect has no lifetime, and a preexisting socket's birth is unknown.
  summary.count_connection(
      ended(Role::kClient, pool, "10.0.0.2", 5432, CloseKind::kRefused, TcpState::kSynSent));
  Connection preexisting = ended(Role::kClient, pool, "10.0.0.2", 5432, CloseKind::kActive);
  preexisting.established = true;
  preexisting.preexisting = true;
  summary.count_connection(preexisting);

  const auto near = [](std::uint64_t reported_us, std::uint64_t sample_us) {
    EXPECT_LE(reported_us * 8, sample_us * 9) << reported_us << " for " << sample_us;
    EXPECT_GE(reported_us * 8, sample_us * 7) << reported_us << " for " << sample_us;
  };
  for (const SummaryCounts& counts :
       {summary.per_process(20).at(0).counts, summary.per_peer(20).at(0).counts}) {
    EXPECT_EQ(counts.connections, 102u);
    ASSERT_TRUE(counts.lifetime.has_value());
    near(counts.lifetime->p50_us, 50'000);
    near(counts.lifetime->p90_us, 90'000);
    near(counts.lifetime->p99_us, 99'000);
    ASSERT_TRUE(counts.handshake.has_value());
    near(counts.handshake->p50_us, 500);
    near(counts.handshake->p90_us, 900);
    near(counts.handshake->p99_us, 990);
  }
}

TEST(Summary, NoPercentilesWithoutASample) {
  Summary summary;
  summary.count_connection(ended(Role::kClient, testing::owner(1, "c"), "10.0.0.2", 80,
                                 CloseKind::kRefused, TcpState::kSynSent));
  const SummaryCounts counts = summary.per_process(20).at(0).counts;
  EXPECT_FALSE(counts.lifetime.has_value());
  EXPECT_FALSE(counts.handshake.has_value());
}

}  // namespace
}  // namespace tcptrail
