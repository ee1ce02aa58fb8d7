// What tcptrail knows of one socket: kept live in the connection table and handed to the
// analyzers and sinks when it changes or ends.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tcptrail/event.hpp"

namespace tcptrail {

// How a connection ended; README.md ("Close kinds") says how each is decided.
enum class CloseKind : std::uint8_t {
  kUnknown,
  kActive,           // we sent FIN first; the socket entered TIME_WAIT
  kPassive,          // the peer's FIN came first
  kSimultaneous,     // both FINs crossed (CLOSING)
  kResetSent,        // we aborted with RST
  kResetReceived,    // the peer's RST killed it
  kRefused,          // RST answering our SYN
  kTimeout,          // the kernel gave up (SYN, data or keepalive timeout)
  kAborted,          // a server child closed before the handshake finished
  kNoPort,           // connect() found no free local port (EADDRNOTAVAIL)
  kHostUnreachable,  // ICMP host unreachable (EHOSTUNREACH)
  kNetUnreachable,   // ICMP network unreachable (ENETUNREACH)
  kCanceled,         // the application closed it in SYN_SENT
};
inline constexpr std::size_t kCloseKindCount = static_cast<std::size_t>(CloseKind::kCanceled) + 1;
std::string_view close_kind_name(CloseKind kind);

// The states in which a connection's time is accounted, in the order they are printed.
inline constexpr std::array<TcpState, 8> kTimedStates = {
    TcpState::kSynSent,  TcpState::kSynRecv,   TcpState::kEstablished, TcpState::kFinWait1,
    TcpState::kFinWait2, TcpState::kCloseWait, TcpState::kLastAck,     TcpState::kClosing};
namespace detail {
inline constexpr auto kTimedStateIndex = [] {
  std::array<std::int8_t, 256> index{};
  index.fill(-1);
  for (std::size_t i = 0; i < kTimedStates.size(); ++i) {
    index[static_cast<std::uint8_t>(kTimedStates[i])] = static_cast<std::int8_t>(i);
  }
  return index;
}();
}  // namespace detail

// Index of a state in kTimedStates, or nullopt for states that are not timed. Inline, from a
// table indexed by the state byte: it runs for every state change and every record.
inline std::optional<std::size_t> timed_state_index(TcpState state) {
  const std::int8_t i = detail::kTimedStateIndex[static_cast<std::uint8_t>(state)];
  if (i < 0) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(i);
}

// The states a connection went through, in order; at most kMaxPath are kept.
struct StatePath {
  static constexpr std::size_t kMaxPath = 14;
  std::array<TcpState, kMaxPath> states{};
  std::uint8_t size : 7 = 0;  // bit-fields: one byte less per connection
  bool truncated : 1 = false;

  void push(TcpState state);
};

// Members are ordered by alignment and the flags are bit-fields so that the table, which may
// hold a million of these, spends at most 256 bytes on each (issue 5).
struct Connection {
  std::uint64_t conn_id = 0;
  std::uint64_t sock_cookie = 0;
  std::uint64_t first_ns = 0;  // monotonic time of birth (or first sight if preexisting)
  std::uint64_t state_since_ns = 0;
  std::uint64_t end_ns = 0;  // monotonic time the full socket reached CLOSE, 0 while live
  std::array<std::uint64_t, kTimedStates.size()> state_ns{};
  std::uint64_t tx_bytes = 0;   // tcpi_bytes_acked
  std::uint64_t rx_bytes = 0;   // tcpi_bytes_received
  std::uint64_t cgroup_id = 0;  // cgroup v2 id of the socket, 0 if unknown
  std::uint32_t netns_ino = 0;
  std::uint32_t sock_ino = 0;
  std::uint32_t retransmits = 0;  // tcpi_total_retrans
  std::uint32_t syn_retransmits = 0;
  std::uint32_t synack_retransmits = 0;
  std::uint32_t srtt_us = 0;
  std::uint32_t handshake_us = 0;  // valid when has_handshake
  Owner owner;
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t lport = 0;
  std::uint16_t rport = 0;
  std::uint16_t error = 0;  // errno the socket reported, 0 if none
  StatePath path;
  Role role = Role::kUnknown;
  TcpState state = TcpState::kClose;
  TcpState closed_from = TcpState::kClose;  // the state it left for CLOSE
  CloseKind close = CloseKind::kUnknown;
  // Seen first mid-life (it existed before tracing): start, lifetime and the first state's
  // time are unknown and never reported.
  bool preexisting : 1 = false;
  bool orphan : 1 = false;     // no process holds it any more
  bool time_wait : 1 = false;  // ended by entering TIME_WAIT
  bool reset_sent : 1 = false;
  bool reset_received : 1 = false;
  bool has_handshake : 1 = false;
  bool established : 1 = false;  // reached ESTABLISHED at least once
  // Whether the time spent in the path's first state is known: not for a socket found
  // mid-life, nor for a server child whose creation was not seen.
  bool first_state_timed : 1 = false;
  bool peer_fin : 1 = false;  // the peer's FIN came

  [[nodiscard]] bool ended() const { return end_ns != 0; }
  // Lifetime so far (or in all, once ended), from birth; nullopt when preexisting.
  [[nodiscard]] std::optional<std::uint64_t> duration_ns(std::uint64_t now_ns) const;
};

}  // namespace tcptrail
