#include "system/netns.hpp"

#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <string>
#include <thread>

#include "system/proc.hpp"

namespace tcptrail::sys {
namespace {

std::string netns_link_text(std::uint32_t netns_ino) {
  return "net:[" + std::to_string(netns_ino) + "]";
}

// Keeps path (relative to dir_fd) only if it really is netns_ino: the process found by the scan
// may have exited and its pid been reused in between.
UniqueFd open_if_netns(int dir_fd, const char* path, std::uint32_t netns_ino) {
  UniqueFd fd(::openat(dir_fd, path, O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return {};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_ino != netns_ino) {
    return {};
  }
  return fd;
}

DirPtr open_proc() {
  DirPtr proc = open_dir_at(AT_FDCWD, "/proc");
  if (!proc) {
    throw_errno(errno, "netns: open(/proc)");
  }
  return proc;
}

std::optional<std::uint32_t> find_in_proc(DIR* proc, std::uint32_t netns_ino) {
  const std::string wanted = netns_link_text(netns_ino);
  char link[64];
  ::rewinddir(proc);
  while (const dirent* entry = ::readdir(proc)) {
    auto pid = parse_u32(entry->d_name);
    if (!pid) {
      continue;
    }
    const std::string path = std::string(entry->d_name) + "/ns/net";
    ssize_t len = ::readlinkat(::dirfd(proc), path.c_str(), link, sizeof(link));
    if (len > 0 && std::string_view(link, static_cast<std::size_t>(len)) == wanted) {
      return pid;
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::uint32_t> list_netns() {
  std::vector<std::uint32_t> found;
  auto add = [&](int dir_fd, const char* path) {
    struct stat st {};
    if (::fstatat(dir_fd, path, &st, 0) == 0 &&
        std::find(found.begin(), found.end(), st.st_ino) == found.end()) {
      found.push_back(static_cast<std::uint32_t>(st.st_ino));
    }
  };
  DirPtr proc = open_proc();
  while (const dirent* entry = ::readdir(proc.get())) {
    if (parse_u32(entry->d_name)) {
      add(::dirfd(proc.get()), (std::string(entry->d_name) + "/ns/net").c_str());
    }
  }
  if (DirPtr mounts = open_dir_at(AT_FDCWD, "/run/netns")) {
    while (const dirent* entry = ::readdir(mounts.get())) {
      if (entry->d_name[0] != '.') {
        add(::dirfd(mounts.get()), entry->d_name);
      }
    }
  }
  return found;
}

std::uint32_t current_netns_ino() {
  struct stat st {};
  // /proc/self names the thread-group leader, whose namespace may differ from this thread's.
  if (::stat("/proc/thread-self/ns/net", &st) != 0) {
    throw_errno(errno, "netns: stat(/proc/thread-self/ns/net)");
  }
  return static_cast<std::uint32_t>(st.st_ino);
}

std::optional<std::uint32_t> find_process_in_netns(std::uint32_t netns_ino) {
  DirPtr proc = open_proc();
  return find_in_proc(proc.get(), netns_ino);
}

std::string netns_name(std::uint32_t netns_ino) {
  // Namespace files live on nsfs: a file under /run/netns with the same inode number on another
  // file system is not it.
  struct stat own {};
  if (::stat("/proc/thread-self/ns/net", &own) != 0) {
    return {};
  }
  DirPtr mounts = open_dir_at(AT_FDCWD, "/run/netns");
  if (!mounts) {
    return {};
  }
  while (const dirent* entry = ::readdir(mounts.get())) {
    struct stat st {};
    if (entry->d_name[0] != '.' &&
        ::fstatat(::dirfd(mounts.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_ino == netns_ino && st.st_dev == own.st_dev) {
      return entry->d_name;
    }
  }
  return {};
}

UniqueFd open_netns(std::uint32_t netns_ino) {
  DirPtr proc = open_proc();
  // The pid found can exit before its namespace is opened; a few rescans cover that race.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto pid = find_in_proc(proc.get(), netns_ino);
    if (!pid) {
      break;
    }
    const std::string path = std::to_string(*pid) + "/ns/net";
    if (UniqueFd fd = open_if_netns(::dirfd(proc.get()), path.c_str(), netns_ino)) {
      return fd;
    }
  }

  if (DirPtr mounts = open_dir_at(AT_FDCWD, "/run/netns")) {
    while (const dirent* entry = ::readdir(mounts.get())) {
      if (entry->d_name[0] == '.') {
        continue;
      }
      if (UniqueFd fd = open_if_netns(::dirfd(mounts.get()), entry->d_name, netns_ino)) {
        return fd;
      }
    }
  }
  throw_errno(ENOENT, "netns: no process or /run/netns mount in " + netns_link_text(netns_ino));
}

void run_in_netns(int ns_fd, const std::function<void()>& fn) {
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      if (::setns(ns_fd, CLONE_NEWNET) != 0) {
        throw_errno(errno, "netns: setns(CLONE_NEWNET)");
      }
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) {
    std::rethrow_exception(error);
  }
}

}  // namespace tcptrail::sys
