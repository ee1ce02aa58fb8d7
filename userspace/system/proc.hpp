// Small helpers for walking /proc, shared by the files in this directory.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "system/unique_fd.hpp"

namespace tcptrail::sys {

// The decimal number that is all of text, or nullopt ("self", "1a", "" and overflow are not).
inline std::optional<std::uint32_t> parse_u32(std::string_view text) {
  std::uint32_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return value;
}

// The first bytes of a short /proc or /sys file (a sysctl, a CPU list). Throws
// std::system_error naming who asked.
inline std::string read_small_file(const char* path, const char* who) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) {
    throw_errno(errno, std::string(who) + ": open(" + path + ")");
  }
  char buf[4096];
  const ssize_t len = ::read(fd.get(), buf, sizeof(buf));
  if (len < 0) {
    throw_errno(errno, std::string(who) + ": read(" + path + ")");
  }
  return {buf, static_cast<std::size_t>(len)};
}

// errno values that mean the process went away or is not ours to look at while /proc is walked.
inline bool is_vanished_process_errno(int err) {
  return err == ENOENT || err == ESRCH || err == EACCES || err == EPERM;
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Opens path (relative to dir_fd) for readdir; ::dirfd() of the result serves the *at() calls.
// Returns null with errno set on failure.
inline DirPtr open_dir_at(int dir_fd, const char* path) {
  int fd = ::openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return nullptr;
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    errno = err;
  }
  return DirPtr(dir);
}

}  // namespace tcptrail::sys
