// The kernel's socket table and /proc, as the analyzers consume them.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "analyzers/leak_detector.hpp"
#include "system/fd_owners.hpp"
#include "tcptrail/socket_snapshot.hpp"

namespace tcptrail::sys {

// FdOwnerLookup over a full /proc scan, taken again on every refresh(); inodes by cookie come
// from one sock_diag dump per namespace asked about, also taken again on refresh().
class ProcFdOwners : public FdOwnerLookup {
public:
  void refresh() override;
  std::vector<FdOwner> owners(std::uint32_t inode) override;
  std::uint32_t inode_of(std::uint64_t sock_cookie, std::uint32_t netns_ino) override;
  // Processes (or whole scans) missed for a transient error since the start; never fatal.
  std::uint64_t transient_errors() const { return transient_errors_; }

private:
  std::optional<FdOwnerIndex> index_;
  std::uint64_t transient_errors_ = 0;
  std::unordered_map<std::uint32_t, std::unordered_map<std::uint64_t, std::uint32_t>> inodes_;
};

// The TCP sockets of a namespace (0: the caller's), reduced to snapshots: all of them, or with
// only_waiting just TIME_WAIT, FIN_WAIT2, SYN_RECV and LISTEN (what periodic sweeps need, far
// cheaper under load). Throws std::system_error.
std::vector<SocketSnapshot> snapshot_sockets(std::uint32_t netns_ino, bool only_waiting);

}  // namespace tcptrail::sys
