#include "system/socket_table.hpp"

#include "system/sock_diag.hpp"

namespace tcptrail::sys {

namespace {

SocketSnapshot to_snapshot(const SocketEntry& e) {
  SocketSnapshot s;
  s.kind = e.kind == SocketKind::kFull       ? SnapshotKind::kFull
           : e.kind == SocketKind::kTimeWait ? SnapshotKind::kTimeWait
                                             : SnapshotKind::kRequest;
  s.laddr = e.laddr;
  s.raddr = e.raddr;
  s.lport = e.lport;
  s.rport = e.rport;
  s.state = e.state;
  s.inode = e.inode;
  s.cookie = e.cookie;
  s.bytes_acked = e.bytes_acked;
  s.bytes_received = e.bytes_received;
  s.total_retrans = e.total_retrans;
  s.srtt_us = e.rtt_us;
  return s;
}

std::vector<SocketSnapshot> to_snapshots(const std::vector<SocketEntry>& entries) {
  std::vector<SocketSnapshot> out;
  out.reserve(entries.size());
  for (const SocketEntry& e : entries) {
    out.push_back(to_snapshot(e));
  }
  return out;
}

std::uint32_t states_of(SocketSet set) {
  switch (set) {
    case SocketSet::kAll:
      return ~0U;
    case SocketSet::kTimeWait:
      return state_bit(TcpState::kTimeWait);
    case SocketSet::kLeakStates:
    case SocketSet::kLeakStatesAndTimeWait:
      break;
  }
  // Listeners too: a half-open request socket's owner is its listener's holder. CLOSE_WAIT and
  // FIN_WAIT2 for the inodes of sockets accepted after they entered a leak state. The kernel
  // filters a timewait socket by its substate: FIN_WAIT2 orphans come without TIME_WAIT.
  std::uint32_t states = state_bit(TcpState::kSynRecv) | state_bit(TcpState::kFinWait2) |
                         state_bit(TcpState::kCloseWait) | state_bit(TcpState::kListen);
  if (set == SocketSet::kLeakStatesAndTimeWait) {
    states |= state_bit(TcpState::kTimeWait);
  }
  return states;
}

constexpr std::uint32_t kOpenStates =
    state_bit(TcpState::kEstablished) | state_bit(TcpState::kCloseWait) |
    state_bit(TcpState::kFinWait1) | state_bit(TcpState::kFinWait2);

}  // namespace

std::vector<SocketSnapshot> snapshot_sockets(std::uint32_t netns_ino, SocketSet set) {
  return snapshot_table(netns_ino, set, false).sockets;
}

TableSnapshot snapshot_table(std::uint32_t netns_ino, SocketSet set, bool open_connections) {
  DumpOptions options;
  const std::uint32_t states = states_of(set);
  options.states = states | (open_connections ? kOpenStates : 0);
  options.tcp_info = set == SocketSet::kAll || open_connections;
  TableSnapshot table;
  for (const SocketEntry& e : dump_tcp_sockets_in_netns(netns_ino, options)) {
    const SocketSnapshot s = to_snapshot(e);
    if ((state_bit(s.state) & states) != 0) {
      table.sockets.push_back(s);
    }
    if (open_connections && s.kind == SnapshotKind::kFull &&
        (state_bit(s.state) & kOpenStates) != 0) {
      table.open_connections.push_back(s);
    }
  }
  return table;
}

std::vector<SocketSnapshot> find_sockets(std::uint32_t netns_ino,
                                         std::span<const SocketSnapshot> wanted) {
  std::vector<SocketEntry> entries;
  entries.reserve(wanted.size());
  for (const SocketSnapshot& s : wanted) {
    SocketEntry e;
    e.family = s.laddr.family;
    e.laddr = s.laddr;
    e.raddr = s.raddr;
    e.lport = s.lport;
    e.rport = s.rport;
    e.cookie = s.cookie;
    entries.push_back(e);
  }
  return to_snapshots(find_tcp_sockets_in_netns(netns_ino, entries));
}

}  // namespace tcptrail::sys
