#include "system/socket_table.hpp"

#include "system/netns.hpp"
#include "system/sock_diag.hpp"

namespace tcptrail::sys {

void ProcFdOwners::refresh() {
  inodes_.clear();
  // A scan that met EMFILE or ENOMEM is tried once more; what it still missed stays unknown
  // (no holders) rather than ending the run.
  constexpr int kAttempts = 2;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    try {
      index_ = FdOwnerIndex::scan();
      if (index_->skipped() == 0) {
        return;
      }
      transient_errors_ += index_->skipped();
    } catch (const std::system_error&) {
      ++transient_errors_;  // /proc itself could not be opened
    }
  }
}

std::uint32_t ProcFdOwners::inode_of(std::uint64_t sock_cookie, std::uint32_t netns_ino) {
  auto [it, fresh] = inodes_.try_emplace(netns_ino);
  if (fresh) {
    try {
      for (const SocketSnapshot& s : snapshot_sockets(netns_ino, false)) {
        if (s.inode != 0) {
          it->second.emplace(s.cookie, s.inode);
        }
      }
    } catch (const std::system_error&) {
      // The namespace is gone: its sockets have no holders to find.
    }
  }
  auto found = it->second.find(sock_cookie);
  return found != it->second.end() ? found->second : 0;
}

std::vector<FdOwner> ProcFdOwners::owners(std::uint32_t inode) {
  if (!index_) {
    return {};
  }
  const std::vector<FdOwner>* found = index_->find(inode);
  return found != nullptr ? *found : std::vector<FdOwner>{};
}

std::vector<SocketSnapshot> snapshot_sockets(std::uint32_t netns_ino, bool only_waiting) {
  DumpOptions options;
  if (only_waiting) {
    // Listeners too: a half-open request socket's owner is its listener's holder.
    options.states = state_bit(TcpState::kTimeWait) | state_bit(TcpState::kSynRecv) |
                     state_bit(TcpState::kFinWait2) | state_bit(TcpState::kListen);
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
