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

}  // namespace
}  // namespace tcptrail
