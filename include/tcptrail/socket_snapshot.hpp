// One socket as the kernel's socket table (sock_diag) shows it, reduced to what the analyzers
// use. The loader side fills it; analyzers never read the kernel themselves.
#pragma once

#include <cstdint>

#include "tcptrail/event.hpp"

namespace tcptrail {

enum class SnapshotKind : std::uint8_t { kFull, kTimeWait, kRequest };

struct SocketSnapshot {
  SnapshotKind kind = SnapshotKind::kFull;
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t lport = 0;
  std::uint16_t rport = 0;
  TcpState state = TcpState::kClose;  // request sockets show as SYN_RECV
  std::uint32_t inode = 0;            // 0 for timewait/request sockets and orphans
  std::uint64_t cookie = 0;           // equals bpf_get_socket_cookie()
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_received = 0;
  std::uint32_t total_retrans = 0;
  std::uint32_t srtt_us = 0;  // smoothed RTT (tcpi_rtt); 0 without tcp_info
};

}  // namespace tcptrail
