// Typed kernel events, as the decoder produces them from ring-buffer bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tcptrail {

// Kernel TCP states (include/net/tcp_states.h); any other byte value may arrive from a newer
// kernel and is carried as is.
enum class TcpState : std::uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynRecv = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClose = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
  kNewSynRecv = 12,
  kBoundInactive = 13,
};

// The name netstat prints (SYN_SENT, CLOSE_WAIT, ...); "UNKNOWN" for values it does not know.
std::string_view state_name(TcpState state);

enum class EventKind : std::uint8_t {
  kState = 1,
  kRetransmit = 2,
  kSynackRetransmit = 3,
  kResetSent = 4,
  kResetReceived = 5,
  kError = 6,
  kNetns = 7,  // a namespace's first birth or listener: only netns_ino is set
};

// How the owner of a socket was learned.
enum class OwnerSource : std::uint8_t {
  kUnknown = 0,
  kSyscall = 1,   // the task that called connect/listen/close/shutdown on it
  kListener = 2,  // server child: the owner of its listening socket
  kFdScan = 3,    // a process found holding its descriptor in /proc/PID/fd
  kAcceptor = 4,  // server child: the process whose system call first read or wrote it
};
std::string_view owner_source_name(OwnerSource source);

// Values as TCPTRAIL_ROLE_* (events.h).
enum class Role : std::uint8_t { kUnknown = 0, kClient = 1, kServer = 2 };
std::string_view role_name(Role role);

struct IpAddress {
  std::uint8_t family = 4;               // 4 or 6
  std::array<std::uint8_t, 16> bytes{};  // network order; IPv4 in the first 4 bytes

  [[nodiscard]] std::string to_string() const;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it carries, which is what
  // the wire and other tools see; any other address as it is.
  [[nodiscard]] IpAddress unmapped() const;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 false positive (llvm-project#53961)
  auto operator<=>(const IpAddress&) const = default;
};

struct Owner {
  std::uint32_t pid = 0;
  std::array<char, 16> comm{};  // not NUL-terminated when 16 bytes long
  OwnerSource source = OwnerSource::kUnknown;

  [[nodiscard]] std::string_view comm_view() const;
  [[nodiscard]] bool known() const { return pid != 0; }
};

// A kernel event on a live socket (retransmit, reset, error, and with --transitions each state
// change). The owner, role and conn_id are its lifecycle's, as the kernel folds it.
struct Event {
  EventKind kind = EventKind::kState;
  std::uint64_t ts_ns = 0;        // CLOCK_MONOTONIC
  std::uint64_t sock_cookie = 0;  // the socket's identity
  std::uint64_t conn_id = 0;      // 0: no lifecycle (the kernel's table was full)
  std::uint64_t ns_in_old = 0;    // state changes: time spent in old_state, if ns_in_old_known
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t cgroup_id = 0;  // cgroup v2 id, 0 if unknown
  std::uint32_t total_retrans = 0;
  std::uint32_t srtt_us = 0;
  std::uint32_t detail = 0;  // segments for retransmits, errno for errors
  std::uint32_t netns_ino = 0;
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t lport = 0;
  std::uint16_t rport = 0;
  TcpState old_state = TcpState::kClose;
  TcpState new_state = TcpState::kClose;
  std::uint8_t flags = 0;  // TCPTRAIL_F_*
  std::uint16_t sk_err = 0;
  Role role = Role::kUnknown;
  std::uint8_t conn_flags = 0;  // TCPTRAIL_C_*
  bool ns_in_old_known = false;
  Owner owner;
};

}  // namespace tcptrail
