// Which processes hold a socket, found as `ss -p` finds them: by reading the "socket:[INODE]"
// links in /proc/PID/fd. Only thread-group leaders are read; threads share their fd table.
// Processes that exit or deny access mid-scan are skipped, not reported as errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tcptrail/records.hpp"

namespace tcptrail::sys {

// The inode in an fd link's target "socket:[INODE]"; nullopt for any other target.
std::optional<std::uint32_t> parse_socket_link(std::string_view link);

// A snapshot of socket inode -> holders for every process visible in /proc (the /proc mount
// decides the pid namespace; inodes are unique across network namespaces).
class FdOwnerIndex {
public:
  // Reads every /proc/PID/fd. A process whose directory cannot be opened for a transient
  // reason (EMFILE, ENFILE, ENOMEM) is skipped and counted in skipped(). Throws
  // std::system_error if /proc itself cannot be read.
  static FdOwnerIndex scan();

  // The holders of the socket, one per (pid, fd), in /proc order; null when none was seen.
  // The pointer is valid while this index lives.
  const std::vector<FdOwner>* find(std::uint32_t inode) const;

  std::size_t socket_count() const { return owners_.size(); }
  std::size_t skipped() const { return skipped_; }

private:
  std::unordered_map<std::uint32_t, std::vector<FdOwner>> owners_;
  std::size_t skipped_ = 0;
};

}  // namespace tcptrail::sys
