#include "cli/output.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>

namespace tcptrail {
namespace {

TEST(FdStreamBuf, KeepsTheFirstErrorAndCountsWhatIsDropped) {
  const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  std::atomic<bool> stop{false};
  FdStreamBuf buf(stop);
  std::ostream out(&buf);
  buf.set_fd(full);
  out << "one\ntwo\n" << std::flush;
  out << "three\n" << std::flush;
  EXPECT_TRUE(out.good());  // the sinks keep writing; the failure is kept here
  EXPECT_EQ(buf.error(), ENOSPC);
  EXPECT_EQ(buf.dropped_lines(), 3U);
  ::close(full);
}

TEST(FdStreamBuf, ClosedPipeIsEpipe) {
  signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[0]);
  std::atomic<bool> stop{false};
  FdStreamBuf buf(stop);
  std::ostream out(&buf);
  buf.set_fd(fds[1]);
  out << "record\n" << std::flush;
  EXPECT_EQ(buf.error(), EPIPE);
  ::close(fds[1]);
}

TEST(FdStreamBuf, StalledReaderHoldsAStopForTheGraceOnly) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);  // nobody reads fds[0]
  std::atomic<bool> stop{true};
  FdStreamBuf buf(stop);
  std::ostream out(&buf);
  buf.set_fd(fds[1]);
  const std::string line(99, 'x');
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) {  // 200 KB, three times what a pipe holds
    out << line << '\n';
  }
  out << std::flush;
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(buf.timed_out());
  EXPECT_EQ(buf.error(), 0);
  EXPECT_GE(took, std::chrono::milliseconds(FdStreamBuf::kStopGraceMs - 50));
  EXPECT_LT(took, std::chrono::milliseconds(FdStreamBuf::kStopGraceMs + 500));
  // The whole lines the pipe took plus the lines dropped (a cut one among them) are every line.
  char chunk[65536];
  std::size_t in_pipe = 0;
  for (ssize_t n; (n = ::read(fds[0], chunk, sizeof(chunk))) > 0;) {
    in_pipe += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(in_pipe / 100 + buf.dropped_lines(), 2000U);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace tcptrail
