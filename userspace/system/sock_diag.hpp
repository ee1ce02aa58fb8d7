// The kernel's TCP socket table, read through NETLINK_SOCK_DIAG (what `ss -tan` shows).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "system/netns.hpp"
#include "tcptrail/event.hpp"

namespace tcptrail::sys {

// Which kernel object an entry describes; each is filled in by a different kernel function.
enum class SocketKind : std::uint8_t {
  kFull,      // a struct sock: has an inode unless orphaned, and TCP_INFO
  kTimeWait,  // a timewait minisock (tcp_twsk_diag_fill): no inode, uid or TCP_INFO
  kRequest,   // a request sock waiting for the handshake's ACK (tcp_req_diag_fill): ditto
};

// idiag_timer: the kernel timer pending on the socket.
enum class SocketTimer : std::uint8_t {
  kNone = 0,
  kRetransmit = 1,  // also the SYN-ACK timer of a request sock
  kKeepalive = 2,   // also the FIN_WAIT2 timer of an orphan
  kTimeWait = 3,    // the timewait minisock's lifetime
  kProbe = 4,       // zero window probe
};

struct SocketEntry {
  SocketKind kind = SocketKind::kFull;
  std::uint8_t family = 4;  // 4 or 6; an AF_INET6 socket talking IPv4 has v4-mapped addresses
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t lport = 0;  // host order
  std::uint16_t rport = 0;  // host order
  // As the kernel reports it: SYN_RECV for request socks (never NEW_SYN_RECV); TIME_WAIT, or
  // FIN_WAIT2 for an orphan handed to a timewait minisock, for kTimeWait; CLOSE for a socket
  // that is bound but neither listening nor connected.
  TcpState state = TcpState::kClose;
  std::uint32_t inode = 0;   // sockfs inode, "socket:[INODE]" in /proc/PID/fd; 0 unless kFull
  std::uint64_t cookie = 0;  // equals bpf_get_socket_cookie() of the same socket
  std::uint32_t uid = 0;     // 0 unless kFull
  SocketTimer timer = SocketTimer::kNone;
  std::uint8_t timer_retransmits = 0;  // idiag_retrans: retries of the pending timer
  std::uint32_t expires_ms = 0;        // until the timer fires; for TIME_WAIT, the time left in it
  // Bytes unread / unacknowledged; for a listener, the accept queue length / its backlog.
  std::uint32_t recv_q = 0;
  std::uint32_t send_q = 0;
  bool orphan = false;               // a full socket no file descriptor refers to (inode 0)
  bool has_info = false;             // the fields below came from TCP_INFO
  std::uint64_t bytes_acked = 0;     // tcpi_bytes_acked
  std::uint64_t bytes_received = 0;  // tcpi_bytes_received
  std::uint32_t total_retrans = 0;   // tcpi_total_retrans
  std::uint32_t rtt_us = 0;          // tcpi_rtt (smoothed)
};

constexpr std::uint32_t state_bit(TcpState state) {
  return 1U << static_cast<unsigned>(state);
}

// What the kernel is asked for; it filters, so a narrow dump is cheaper on a busy host.
struct DumpOptions {
  // Bits of state_bit(). The kernel matches a timewait sock on the state it reports (TIME_WAIT
  // or FIN_WAIT2) and adds request socks whenever SYN_RECV is asked for.
  std::uint32_t states = ~0U;
  bool tcp_info = true;  // fill has_info and the TCP_INFO fields of full sockets
};

// Every TCP socket (IPv4 and IPv6, in the kernel's hash order; all states, request and timewait
// socks included, unless options narrow it) of the calling thread's network namespace. One
// netlink dump for both families; the result is not a consistent snapshot (sockets can move between
// hash buckets during the walk). Throws std::system_error.
std::vector<SocketEntry> dump_tcp_sockets(const DumpOptions& options = {});

// The same for the namespace netns_ino (0: the caller's), read through a netlink socket
// created on a short-lived thread that joins it (see open_netns for how it is found); the
// calling thread stays where it is.
std::vector<SocketEntry> dump_tcp_sockets_in_netns(std::uint32_t netns_ino,
                                                   const DumpOptions& options = {});

// The sockets of `wanted` (by family, addresses, ports and cookie) that the namespace netns_ino
// still has, as they are now: one exact lookup each, where a dump would walk the whole table
// (on a busy host, ~100k TIME_WAIT sockets). Throws std::system_error.
std::vector<SocketEntry> find_tcp_sockets_in_netns(std::uint32_t netns_ino,
                                                   std::span<const SocketEntry> wanted);

// Decodes one SOCK_DIAG_BY_FAMILY or TCPDIAG_GETSOCK message payload (struct inet_diag_msg and
// its attributes).
// Returns false, leaving out untouched, if it is too short.
bool decode_inet_diag_msg(std::span<const std::byte> payload, SocketEntry& out);

}  // namespace tcptrail::sys
