#include "tcptrail/decode.hpp"

#include <cstddef>
#include <cstring>

#include "tcptrail/events.h"

namespace tcptrail {

namespace {

IpAddress address(std::uint8_t family, const __u8 (&bytes)[16]) {
  IpAddress a;
  a.family = family;
  // Fixed sizes: the copies compile to a few moves instead of calls to memcpy and memset.
  std::memcpy(a.bytes.data(), bytes, 16);
  if (family == 4) {
    std::memset(a.bytes.data() + 4, 0, 12);
  }
  return a;
}

bool owner(std::uint32_t pid, std::uint8_t source, const char (&comm)[TCPTRAIL_COMM_LEN],
           Owner& o) {
  if (source > TCPTRAIL_OWNER_ACCEPTOR) {
    return false;
  }
  o.pid = pid;
  std::memcpy(o.comm.data(), comm, o.comm.size());
  o.source = static_cast<OwnerSource>(source);
  return true;
}

bool valid_family(std::uint8_t family) {
  return family == 4 || family == 6;
}

// The socket part of a record onto conn.
void apply_sock(std::uint8_t family, const tcptrail_sock& s, Connection& conn) {
  conn.sock_cookie = s.sock_cookie;
  conn.laddr = address(family, s.saddr);
  conn.raddr = address(family, s.daddr);
  conn.lport = s.sport;
  conn.rport = s.dport;
  conn.netns_ino = s.netns_ino;
  conn.cgroup_id = s.cgroup_id;
  // The application's bytes: the sequence space the counters count less our SYN (an active
  // open's is acked before the first byte; a child's snd_una starts past its SYN-ACK) and each
  // FIN that was acked or received. Ours was sent only if the socket left a state that had sent
  // it: an abortive close() (SO_LINGER {1,0}, unread data) also shuts the sending side down, and
  // with everything acked snd_una is at write_seq, but it sends an RST from ESTABLISHED or
  // CLOSE_WAIT, never a FIN.
  const bool syn_counted = conn.role == Role::kClient && (conn.established || conn.preexisting);
  const bool fin_sent =
      conn.closed_from == TcpState::kFinWait1 || conn.closed_from == TcpState::kFinWait2 ||
      conn.closed_from == TcpState::kClosing || conn.closed_from == TcpState::kLastAck;
  const bool fin_acked = fin_sent && (s.flags & TCPTRAIL_F_FIN_ACKED) != 0;
  const std::uint64_t ours = (syn_counted ? 1 : 0) + (fin_acked ? 1 : 0);
  conn.peer_fin = (s.flags & TCPTRAIL_F_FIN_RECEIVED) != 0;
  const std::uint64_t theirs = conn.peer_fin ? 1 : 0;
  conn.tx_bytes = s.bytes_acked >= ours ? s.bytes_acked - ours : 0;
  conn.rx_bytes = s.bytes_received >= theirs ? s.bytes_received - theirs : 0;
  conn.retransmits = s.total_retrans;
  conn.srtt_us = s.srtt_us;
  conn.orphan = (s.flags & TCPTRAIL_F_ORPHAN) != 0;
}

}  // namespace

std::uint8_t record_kind(std::span<const std::byte> bytes) {
  if (bytes.size() < sizeof(tcptrail_header)) {
    return 0;
  }
  return static_cast<std::uint8_t>(bytes[offsetof(tcptrail_header, kind)]);
}

std::optional<Event> decode_event(std::span<const std::byte> bytes, DecodeStats& stats) {
  tcptrail_event raw;
  Owner who;
  if (bytes.size() != sizeof(raw)) {
    ++stats.rejected;
    return std::nullopt;
  }
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  if (raw.hdr.kind < TCPTRAIL_EV_STATE || raw.hdr.kind > TCPTRAIL_EV_NETNS ||
      !valid_family(raw.hdr.family) || raw.role > TCPTRAIL_ROLE_SERVER ||
      !owner(raw.owner_pid, raw.owner_source, raw.owner_comm, who)) {
    ++stats.rejected;
    return std::nullopt;
  }
  ++stats.decoded;
  const std::uint8_t family = raw.hdr.family;
  // Every member named, so the event is built in place without zeroing it first.
  return Event{
      .kind = static_cast<EventKind>(raw.hdr.kind),
      // A reset that waited in the kernel for its holder's close() was sent at the close.
      .ts_ns = raw.hdr.kind == TCPTRAIL_EV_RESET_RECEIVED && raw.detail <= raw.hdr.ts_ns
                   ? raw.hdr.ts_ns - raw.detail
                   : raw.hdr.ts_ns,
      .sock_cookie = raw.sk.sock_cookie,
      .conn_id = raw.conn_id,
      .ns_in_old = raw.ns_in_old,
      .bytes_acked = raw.sk.bytes_acked,
      .bytes_received = raw.sk.bytes_received,
      .cgroup_id = raw.sk.cgroup_id,
      .total_retrans = raw.sk.total_retrans,
      .srtt_us = raw.sk.srtt_us,
      .detail = raw.detail,
      .netns_ino = raw.sk.netns_ino,
      .laddr = address(family, raw.sk.saddr),
      .raddr = address(family, raw.sk.daddr),
      .lport = raw.sk.sport,
      .rport = raw.sk.dport,
      .old_state = static_cast<TcpState>(raw.old_state),
      .new_state = static_cast<TcpState>(raw.new_state),
      .flags = raw.sk.flags,
      .sk_err = raw.sk.sk_err,
      .role = static_cast<Role>(raw.role),
      .conn_flags = raw.conn_flags,
      .ns_in_old_known = (raw.sk.flags & TCPTRAIL_F_NS_IN_OLD) != 0,
      .owner = who,
  };
}

bool decode_lifecycle(const tcptrail_conn& raw, Connection& conn) {
  const std::uint8_t path_len = raw.path_len & ~TCPTRAIL_PATH_TRUNCATED;
  if (raw.conn_id == 0 || path_len > TCPTRAIL_PATH_MAX || raw.role > TCPTRAIL_ROLE_SERVER ||
      !owner(raw.owner_pid, raw.owner_source, raw.owner_comm, conn.owner)) {
    return false;
  }
  conn.conn_id = raw.conn_id;
  conn.first_ns = raw.first_ns;
  conn.state_since_ns = raw.state_since_ns;
  conn.end_ns = raw.end_ns;
  std::memcpy(conn.state_ns.data(), raw.state_ns, sizeof(raw.state_ns));
  if (raw.sock_ino != 0) {
    conn.sock_ino = raw.sock_ino;
  }
  conn.handshake_us = raw.handshake_us;
  conn.syn_retransmits = raw.syn_retransmits;
  conn.synack_retransmits = raw.synack_retransmits;
  if (raw.error != 0) {
    conn.error = raw.error;
  }
  conn.path.size = path_len;
  conn.path.truncated = (raw.path_len & TCPTRAIL_PATH_TRUNCATED) != 0;
  for (std::size_t i = 0; i < path_len; ++i) {
    conn.path.states[i] = static_cast<TcpState>(raw.path[i]);
  }
  conn.role = static_cast<Role>(raw.role);
  conn.state = static_cast<TcpState>(raw.state);
  conn.closed_from = static_cast<TcpState>(raw.closed_from);
  conn.preexisting = (raw.flags & TCPTRAIL_C_PREEXISTING) != 0;
  conn.reset_sent = (raw.flags & TCPTRAIL_C_RESET_SENT) != 0;
  conn.reset_received = (raw.flags & TCPTRAIL_C_RESET_RECEIVED) != 0;
  conn.has_handshake = (raw.flags & TCPTRAIL_C_HANDSHAKE) != 0;
  conn.established = (raw.flags & TCPTRAIL_C_ESTABLISHED) != 0;
  conn.first_state_timed = (raw.flags & TCPTRAIL_C_FIRST_TIMED) != 0;
  return true;
}

tcptrail_conn encode_lifecycle(const Connection& conn) {
  tcptrail_conn raw{};
  raw.conn_id = conn.conn_id;
  raw.first_ns = conn.first_ns;
  raw.state_since_ns = conn.state_since_ns;
  raw.owner_pid = conn.owner.pid;
  raw.owner_source = static_cast<std::uint8_t>(conn.owner.source);
  std::memcpy(raw.owner_comm, conn.owner.comm.data(), sizeof(raw.owner_comm));
  raw.sock_ino = conn.sock_ino;
  raw.state = static_cast<std::uint8_t>(conn.state);
  raw.role = static_cast<std::uint8_t>(conn.role);
  raw.flags = conn.preexisting ? TCPTRAIL_C_PREEXISTING : 0;
  // Retransmits before tracing are not reported as events.
  raw.retrans_reported = conn.retransmits;
  raw.path_len = conn.path.size;
  for (std::size_t i = 0; i < conn.path.size; ++i) {
    raw.path[i] = static_cast<std::uint8_t>(conn.path.states[i]);
  }
  return raw;
}

std::optional<Connection> decode_connection(std::span<const std::byte> bytes, DecodeStats& stats) {
  tcptrail_conn_record raw;
  if (bytes.size() != sizeof(raw)) {
    ++stats.rejected;
    return std::nullopt;
  }
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  Connection conn;
  if (raw.hdr.kind != TCPTRAIL_EV_CONNECTION || !valid_family(raw.hdr.family) ||
      !(raw.conn.flags & TCPTRAIL_C_CLOSED) || !decode_lifecycle(raw.conn, conn)) {
    ++stats.rejected;
    return std::nullopt;
  }
  ++stats.decoded;
  apply_sock(raw.hdr.family, raw.sk, conn);
  if (conn.error == 0) {
    conn.error = raw.sk.sk_err;
  }
  return conn;
}

std::span<const std::byte> batched_connections(std::span<const std::byte> bytes,
                                               DecodeStats& stats) {
  tcptrail_header hdr;
  __u32 count = 0;
  constexpr std::size_t kCountAt = sizeof(hdr);
  constexpr std::size_t kRecordsAt = offsetof(tcptrail_conn_batch, records);
  if (bytes.size() != sizeof(tcptrail_conn_batch)) {
    ++stats.rejected;
    return {};
  }
  std::memcpy(&hdr, bytes.data(), sizeof(hdr));
  std::memcpy(&count, bytes.data() + kCountAt, sizeof(count));
  if (hdr.kind != TCPTRAIL_EV_CONNECTION_BATCH || count == 0 || count > TCPTRAIL_BATCH_MAX) {
    ++stats.rejected;
    return {};
  }
  return bytes.subspan(kRecordsAt, count * std::size_t{TCPTRAIL_CONN_RECORD_SIZE});
}

}  // namespace tcptrail
