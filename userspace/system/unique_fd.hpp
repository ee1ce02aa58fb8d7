// Owning file descriptor and the errno-keeping error every userspace/system function throws.
#pragma once

#include <unistd.h>

#include <string>
#include <system_error>
#include <utility>

namespace tcptrail::sys {

// Closes the descriptor it holds on destruction; -1 means empty.
class UniqueFd {
public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.fd_, -1));
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

// Throws std::system_error whose what() reads "<what>: <strerror(err)>".
[[noreturn]] inline void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

}  // namespace tcptrail::sys
