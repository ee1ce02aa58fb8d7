#include "system/socket_table.hpp"

#include "system/netns.hpp"
#include "system/sock_diag.hpp"

namespace tcptrail::sys {

void ProcFdOwners::refresh() { index_ = FdOwnerIndex::scan(); }

std::vector<FdOwner> ProcFdOwners::owners(std::uint32_t inode) const {
  if (!index_) {
    return {};
  }
  const std::vector<FdOwner>* found = index_->find(inode);
  return found != nullptr ? *found : std::vector<FdOwner>{};
}

std::vector<SocketSnapshot> snapshot_sockets(std::uint32_t netns_ino, bool only_waiting) {
  DumpOptions options;
  if (only_waiting) {
    options.states = state_bit(TcpState::kTimeWait) | state_bit(TcpState::kSynRecv) |
                     state_bit(TcpState::kFinWait2);
    options.tcp_info = false;
  }
  const std::vector<SocketEntry> entries = dump_tcp_sockets_in_netns(netns_ino, options);
  std::vector<SocketSnapshot> out;
  out.reserve(entries.size());
  for (const SocketEntry& e : entries) {
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
    out.push_back(s);
  }
  return out;
}

}  // namespace tcptrail::sys
