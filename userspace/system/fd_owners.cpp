#include "system/fd_owners.hpp"

#include <cerrno>
#include <string>
#include <string_view>

#include "system/proc.hpp"
#include "system/unique_fd.hpp"

namespace tcptrail::sys {
namespace {

constexpr std::string_view kSocketPrefix = "socket:[";

DirPtr open_proc() {
  DirPtr proc = open_dir_at(AT_FDCWD, "/proc");
  if (!proc) {
    throw_errno(errno, "fd_owners: open(/proc)");
  }
  return proc;
}

std::string read_comm(int proc_fd, std::uint32_t pid) {
  const std::string path = std::to_string(pid) + "/comm";
  UniqueFd fd(::openat(proc_fd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return {};
  }
  char buf[64];
  ssize_t len = ::read(fd.get(), buf, sizeof(buf));
  if (len <= 0) {
    return {};
  }
  std::string_view comm(buf, static_cast<std::size_t>(len));
  if (comm.ends_with('\n')) {
    comm.remove_suffix(1);
  }
  return std::string(comm);
}

enum class FdScan : std::uint8_t { kRead, kUnreadable, kSkipped };

// Calls on_socket(inode, fd) for each socket descriptor of pid. kUnreadable: the process is gone
// or not ours; kSkipped: a transient failure (EMFILE, ENFILE, ENOMEM) that a later scan may not
// meet.
template <typename OnSocket>
FdScan for_each_socket_fd(int proc_fd, std::uint32_t pid, OnSocket&& on_socket) {
  const std::string path = std::to_string(pid) + "/fd";
  DirPtr fds = open_dir_at(proc_fd, path.c_str());
  if (!fds) {
    return is_vanished_process_errno(errno) ? FdScan::kUnreadable : FdScan::kSkipped;
  }
  char link[64];
  while (const dirent* entry = ::readdir(fds.get())) {
    auto fd = parse_u32(entry->d_name);
    if (!fd) {
      continue;
    }
    ssize_t len = ::readlinkat(::dirfd(fds.get()), entry->d_name, link, sizeof(link));
    if (len < 0) {
      // Access is decided per process (ptrace_may_access), so one refusal means all of them.
      if (errno == EACCES || errno == EPERM || errno == ESRCH) {
        return FdScan::kUnreadable;
      }
      continue;  // closed since readdir
    }
    if (auto inode = parse_socket_link(std::string_view(link, static_cast<std::size_t>(len)))) {
      on_socket(*inode, static_cast<int>(*fd));
    }
  }
  return FdScan::kRead;
}

}  // namespace

std::optional<std::uint32_t> parse_socket_link(std::string_view link) {
  if (!link.starts_with(kSocketPrefix) || !link.ends_with(']')) {
    return std::nullopt;
  }
  link.remove_prefix(kSocketPrefix.size());
  link.remove_suffix(1);
  return parse_u32(link);
}

FdOwnerIndex FdOwnerIndex::scan() {
  DirPtr proc = open_proc();
  const int proc_fd = ::dirfd(proc.get());
  FdOwnerIndex index;
  std::vector<std::pair<std::uint32_t, int>> sockets;
  while (const dirent* entry = ::readdir(proc.get())) {
    auto pid = parse_u32(entry->d_name);
    if (!pid) {
      continue;
    }
    sockets.clear();
    if (for_each_socket_fd(proc_fd, *pid, [&](std::uint32_t inode, int fd) {
          sockets.emplace_back(inode, fd);
        }) == FdScan::kSkipped) {
      ++index.skipped_;
    }
    if (sockets.empty()) {
      continue;
    }
    const std::string comm = read_comm(proc_fd, *pid);
    for (auto [inode, fd] : sockets) {
      index.owners_[inode].push_back(FdOwner{*pid, comm, fd});
    }
  }
  return index;
}

const std::vector<FdOwner>* FdOwnerIndex::find(std::uint32_t inode) const {
  auto it = owners_.find(inode);
  return it == owners_.end() ? nullptr : &it->second;
}

}  // namespace tcptrail::sys
