// Where the records go: stdout or an --output file, written through a descriptor so that a
// failed write is seen with its errno, and never blocked on forever.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ostream>
#include <streambuf>
#include <string>

#include "system/unique_fd.hpp"

namespace tcptrail {

// A std::streambuf over a descriptor it does not own. It never reports a failure to the
// stream, so the sinks keep writing: the first failed write is kept (error()), and what cannot
// be written from then on is dropped and counted in lines (dropped_lines()); a regular file is
// cut back to its last complete line then, so that no half record is left. Bytes reach the
// descriptor when the stream is flushed or the buffer fills.
//
// A write that cannot proceed (a stalled pipe reader, EAGAIN on a non-blocking descriptor)
// waits in steps of 100 ms. Once `stop` is set it waits at most kStopGraceMs in all, then drops
// the rest, so a stop request is honoured within about a second whatever the reader does.
class FdStreamBuf : public std::streambuf {
public:
  static constexpr int kStopGraceMs = 500;

  explicit FdStreamBuf(const std::atomic<bool>& stop);
  FdStreamBuf(const FdStreamBuf&) = delete;
  FdStreamBuf& operator=(const FdStreamBuf&) = delete;

  // Writes go to fd from now on (-1: buffered until a descriptor is set). Does not flush.
  void set_fd(int fd) {
    fd_ = fd;
    partial_line_bytes_ = 0;
  }
  [[nodiscard]] int error() const { return error_; }  // errno of the first failed write; 0 if none
  [[nodiscard]] bool timed_out() const { return timed_out_; }
  [[nodiscard]] std::uint64_t dropped_lines() const { return dropped_lines_; }

protected:
  int_type overflow(int_type c) override;
  std::streamsize xsputn(const char* data, std::streamsize size) override;
  int sync() override;

private:
  static constexpr std::size_t kBufferBytes = std::size_t{64} * 1024;
  bool drain();
  bool write_all(const char* data, std::size_t size);
  void drop(const char* data, std::size_t size);
  void cut_partial_line();
  bool wait_writable();

  const std::atomic<bool>& stop_;
  int fd_ = -1;
  int error_ = 0;
  bool timed_out_ = false;
  std::int64_t stop_deadline_ns_ = -1;
  std::uint64_t dropped_lines_ = 0;
  std::size_t partial_line_bytes_ = 0;  // written to fd_ since its last newline
  std::string buffer_;
};

// The output of one run. For a file, open() is called once the programs are attached, so a
// run that fails before leaves an existing file as it was; it
// - never follows a symlink (O_NOFOLLOW) and refuses a hard-linked file, a file owned by
//   another user and a block device;
// - truncates only a regular file, which it sets to `mode` whatever the umask; a FIFO or a
//   character device (/dev/null, a tty) is written as is;
// - on reopen() (SIGHUP, after a log rotation moved the file away) opens the path again the
//   same way, appending instead of truncating.
// Stdout is written as it is, except that a pipe is reopened non-blocking through
// /proc/self/fd/1, a new open file description, so that the shell's is left blocking.
class Output {
public:
  // path empty: stdout.
  Output(std::string path, unsigned mode, const std::atomic<bool>& stop);

  // Throws TraceError naming the file and the errno.
  void open();
  // Flushes, then writes to a fresh open of the path. On failure keeps the old descriptor and
  // says so on stderr.
  void reopen();

  std::ostream& stream() { return stream_; }
  bool is_file() const { return !path_.empty(); }
  // A stdout pipe whose reader went away (EPIPE, or poll reporting the hang-up).
  bool reader_left();
  // A write failed for another reason than reader_left.
  bool failed() const { return buf_.error() != 0 && !reader_left_error(); }
  // At the end of the run: throws TraceError "cannot write FILE: strerror" if a write failed;
  // says on stderr how many lines were not written if a stalled reader held up the stop.
  void report() const;

private:
  bool reader_left_error() const { return !is_file() && buf_.error() == EPIPE; }
  sys::UniqueFd open_file(bool truncate) const;

  std::string path_;
  unsigned mode_;
  sys::UniqueFd fd_;  // the file, or stdout reopened; empty: fd 1 itself
  FdStreamBuf buf_;
  std::ostream stream_;
};

}  // namespace tcptrail
