#include "cli/output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>

#include "tcptrail/error.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

namespace {

constexpr int kWaitStepMs = 100;

}  // namespace

FdStreamBuf::FdStreamBuf(const std::atomic<bool>& stop) : stop_(stop) {
  buffer_.reserve(kBufferBytes);
}

FdStreamBuf::int_type FdStreamBuf::overflow(int_type c) {
  if (!traits_type::eq_int_type(c, traits_type::eof())) {
    const char byte = traits_type::to_char_type(c);
    xsputn(&byte, 1);
  }
  return traits_type::not_eof(c);
}

std::streamsize FdStreamBuf::xsputn(const char* data, std::streamsize size) {
  const auto length = static_cast<std::size_t>(size);
  if (buffer_.size() + length > kBufferBytes && fd_ >= 0) {
    drain();
  }
  if (error_ != 0 || timed_out_) {
    drop(data, length);
  } else {
    buffer_.append(data, length);
  }
  return size;
}

int FdStreamBuf::sync() {
  if (fd_ >= 0) {
    drain();
  }
  return 0;
}

bool FdStreamBuf::drain() {
  const bool ok = error_ == 0 && !timed_out_ && write_all(buffer_.data(), buffer_.size());
  buffer_.clear();
  return ok;
}

bool FdStreamBuf::write_all(const char* data, std::size_t size) {
  while (size != 0) {
    const ssize_t result = ::write(fd_, data, size);
    if (result >= 0) {
      const auto written = static_cast<std::size_t>(result);
      const auto* newline = static_cast<const char*>(::memrchr(data, '\n', written));
      partial_line_bytes_ = newline == nullptr
                                ? partial_line_bytes_ + written
                                : static_cast<std::size_t>(data + written - newline - 1);
      data += written;
      size -= written;
      continue;
    }
    // EINTR: a signal, maybe the one that asks to stop; EAGAIN: a non-blocking pipe is full.
    if ((errno == EINTR || errno == EAGAIN) && wait_writable()) {
      continue;
    }
    if (errno != EINTR && errno != EAGAIN) {
      error_ = errno;
    }
    drop(data, size);
    cut_partial_line();
    return false;
  }
  return true;
}

// True when the descriptor may take more; false once the stop grace is used up.
bool FdStreamBuf::wait_writable() {
  for (;;) {
    int timeout = kWaitStepMs;
    if (stop_.load()) {
      const auto now = static_cast<std::int64_t>(monotonic_ns());
      if (stop_deadline_ns_ < 0) {
        stop_deadline_ns_ = now + std::int64_t{kStopGraceMs} * 1'000'000;
      }
      const std::int64_t left_ms = (stop_deadline_ns_ - now) / 1'000'000;
      if (left_ms <= 0) {
        timed_out_ = true;
        return false;
      }
      timeout = static_cast<int>(std::min<std::int64_t>(left_ms, kWaitStepMs));
    }
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, timeout) == 1) {
      return true;  // writable, or an error the next write reports
    }
  }
}

// A record written in part (ENOSPC after a short write) is taken back from a regular file.
void FdStreamBuf::cut_partial_line() {
  struct stat st {};
  if (partial_line_bytes_ == 0 || ::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    return;
  }
  const off_t end = ::lseek(fd_, 0, SEEK_CUR);
  if (end >= static_cast<off_t>(partial_line_bytes_) &&
      ::ftruncate(fd_, end - static_cast<off_t>(partial_line_bytes_)) == 0) {
    ++dropped_lines_;
    partial_line_bytes_ = 0;
  }
}

void FdStreamBuf::drop(const char* data, std::size_t size) {
  dropped_lines_ += static_cast<std::uint64_t>(std::count(data, data + size, '\n'));
}

Output::Output(std::string path, unsigned mode, const std::atomic<bool>& stop)
    : path_(std::move(path)), mode_(mode), buf_(stop), stream_(&buf_) {}

sys::UniqueFd Output::open_file(bool truncate) const {
  // O_NONBLOCK: opening a FIFO without a reader fails at once instead of hanging, and a
  // stalled reader cannot block a write; regular files ignore it.
  const int flags =
      O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (truncate ? 0 : O_APPEND);
  sys::UniqueFd fd(::open(path_.c_str(), flags, 0600));
  if (!fd) {
    const int err = errno;
    throw TraceError("cannot open " + path_ + ": " +
                         (err == ELOOP ? std::string("is a symbolic link") : std::strerror(err)),
                     err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw TraceError("cannot open " + path_ + ": " + std::strerror(errno), errno);
  }
  if (S_ISBLK(st.st_mode)) {
    throw TraceError("cannot open " + path_ + ": is a block device", EINVAL);
  }
  if (S_ISREG(st.st_mode)) {
    // A file someone else owns, or a second name of one, is not ours to fill with the trace of
    // every connection on the host (or to truncate).
    if (st.st_uid != ::geteuid()) {
      throw TraceError("cannot open " + path_ + ": owned by uid " + std::to_string(st.st_uid) +
                           ", not by this user",
                       EPERM);
    }
    if (st.st_nlink > 1) {
      throw TraceError("cannot open " + path_ + ": has other hard links", EPERM);
    }
    if (::fchmod(fd.get(), mode_) != 0 || (truncate && ::ftruncate(fd.get(), 0) != 0)) {
      throw TraceError("cannot open " + path_ + ": " + std::strerror(errno), errno);
    }
  }
  return fd;
}

void Output::open() {
  if (is_file()) {
    fd_ = open_file(true);
  } else {
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode)) {
      // Fails (ENXIO) if the reader already left: fd 1 then reports EPIPE.
      fd_.reset(::open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    }
  }
  buf_.set_fd(fd_ ? fd_.get() : STDOUT_FILENO);
}

void Output::reopen() {
  if (!is_file()) {
    return;
  }
  stream_.flush();
  try {
    fd_ = open_file(false);
    buf_.set_fd(fd_.get());
  } catch (const TraceError& e) {
    std::cerr << "tcptrail: warning: " << e.what() << "; still writing to the old file\n";
  }
}

bool Output::reader_left() {
  if (is_file()) {
    return false;
  }
  if (reader_left_error()) {
    return true;
  }
  // `| head -1`: poll reports POLLERR on the write end even when there is nothing to write.
  pollfd p{fd_ ? fd_.get() : STDOUT_FILENO, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
}

void Output::report() const {
  if (failed()) {
    throw TraceError("cannot write " + (is_file() ? path_ : std::string("stdout")) + ": " +
                         std::strerror(buf_.error()),
                     buf_.error());
  }
  if (buf_.timed_out()) {
    std::cerr << "tcptrail: warning: " << buf_.dropped_lines()
              << " lines not written: the output did not drain within " << FdStreamBuf::kStopGraceMs
              << " ms of the stop\n";
  }
}

}  // namespace tcptrail
