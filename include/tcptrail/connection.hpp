// What tcptrail knows of one socket: kept live in the connection table and handed to the
// analyzers and sinks when it changes or ends.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tcptrail/event.hpp"

namespace tcptrail {

enum class Role : std::uint8_t { kUnknown, kClient, kServer };
std::string_view role_name(Role role);

// How a connection ended; see docs/close.md for how each is decided.
enum class CloseKind : std::uint8_t {
  kUnknown,
  kActive,         // we sent FIN first; the socket entered TIME_WAIT
  kPassive,        // the peer's FIN came first
  kSimultaneous,   // both FINs crossed (CLOSING)
  kResetSent,      // we aborted with RST
  kResetReceived,  // the peer's RST killed it
  kRefused,        // RST answering our SYN
  kTimeout,        // the kernel gave up (SYN, data or keepalive timeout)
  kAborted,        // closed by the application before the handshake finished
};
std::string_view close_kind_name(CloseKind kind);

// The states in which a connection's time is accounted, in the order they are printed.
inline constexpr std::array<TcpState, 8> kTimedStates = {
    TcpState::kSynSent,  TcpState::kSynRecv,   TcpState::kEstablished, TcpState::kFinWait1,
    TcpState::kFinWait2, TcpState::kCloseWait, TcpState::kLastAck,     TcpState::kClosing};
// Index of a state in kTimedStates, or nullopt for states that are not timed.
std::optional<std::size_t> timed_state_index(TcpState state);

// The states a connection went through, in order; at most kMaxPath are kept.
struct StatePath {
  static constexpr std::size_t kMaxPath = 14;
  std::array<TcpState, kMaxPath> states{};
  std::uint8_t size = 0;
  bool truncated = false;

  void push(TcpState state);
};

struct Connection {
  std::uint64_t conn_id = 0;
  std::uint64_t sock_cookie = 0;
  Owner owner;
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t lport = 0;
  std::uint16_t rport = 0;
  std::uint32_t netns_ino = 0;
  std::uint32_t sock_ino = 0;
  Role role = Role::kUnknown;
  TcpState state = TcpState::kClose;
  TcpState closed_from = TcpState::kClose;  // the state it left for CLOSE
  // Seen first mid-life (it existed before tracing): start, lifetime and the first state's
  // time are unknown and never reported.
  bool preexisting = false;
  bool orphan = false;          // no process holds it any more
  bool time_wait = false;       // ended by entering TIME_WAIT
  bool reset_sent = false;
  bool reset_received = false;
  CloseKind close = CloseKind::kUnknown;
  std::uint16_t error = 0;      // errno the socket reported, 0 if none
  std::uint64_t first_ns = 0;   // monotonic time of birth (or first sight if preexisting)
  std::uint64_t state_since_ns = 0;
  std::uint64_t established_ns = 0;  // 0 if never established
  std::uint64_t end_ns = 0;     // monotonic time the full socket reached CLOSE, 0 while live
  std::array<std::uint64_t, kTimedStates.size()> state_ns{};
  StatePath path;
  std::uint64_t tx_bytes = 0;   // tcpi_bytes_acked
  std::uint64_t rx_bytes = 0;   // tcpi_bytes_received
  std::uint32_t retransmits = 0;  // tcpi_total_retrans
  std::uint32_t syn_retransmits = 0;
  std::uint32_t synack_retransmits = 0;
  std::uint32_t srtt_us = 0;
  std::uint32_t handshake_us = 0;  // valid when has_handshake
  bool has_handshake = false;
  bool child_pending = false;  // server child whose tuple the kernel has not set yet

  bool ended() const { return end_ns != 0; }
  // Lifetime so far (or in all, once ended), from birth; nullopt when preexisting.
  std::optional<std::uint64_t> duration_ns(std::uint64_t now_ns) const;
};

}  // namespace tcptrail
