#include "system/fd_owners.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "system/socket_table.hpp"
#include "system/unique_fd.hpp"

namespace tcptrail::sys {
namespace {

std::uint32_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint32_t>(st.st_ino) : 0;
}

std::string own_comm() {
  std::ifstream in("/proc/self/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::uint32_t self_pid() {
  return static_cast<std::uint32_t>(::getpid());
}

bool holds(const std::vector<FdOwner>& owners, std::uint32_t pid, int fd) {
  return std::any_of(owners.begin(), owners.end(),
                     [&](const FdOwner& o) { return o.pid == pid && o.fd == fd; });
}

// A forked child that holds every descriptor of the test until it is killed.
class HoldingChild {
public:
  HoldingChild() : pid_(::fork()) {
    if (pid_ == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~HoldingChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  HoldingChild(const HoldingChild&) = delete;
  HoldingChild& operator=(const HoldingChild&) = delete;
  [[nodiscard]] pid_t pid() const { return pid_; }

private:
  pid_t pid_;
};

TEST(SystemFdOwners, ParsesSocketLinks) {
  EXPECT_EQ(parse_socket_link("socket:[12345]"), 12345U);
  EXPECT_EQ(parse_socket_link("socket:[4294967295]"), 4294967295U);
  for (const char* link :
       {"socket:[]", "socket:[4294967296]", "socket:[1", "socket:1]", "pipe:[12345]",
        "anon_inode:[eventpoll]", "/dev/null", "socket:[-1]", "socket:[ 1]"}) {
    EXPECT_FALSE(parse_socket_link(link)) << link;
  }
}

TEST(SystemFdOwners, ScanFindsThisProcessAndItsDuplicate) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(sock) << std::strerror(errno);
  UniqueFd dup(::fcntl(sock.get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(dup);
  const std::uint32_t inode = inode_of(sock.get());

  FdOwnerIndex index = FdOwnerIndex::scan();
  EXPECT_GT(index.socket_count(), 0U);
  const auto* owners = index.find(inode);
  ASSERT_NE(owners, nullptr);
  ASSERT_EQ(owners->size(), 2U);
  EXPECT_TRUE(holds(*owners, self_pid(), sock.get()));
  EXPECT_TRUE(holds(*owners, self_pid(), dup.get()));
  EXPECT_EQ(owners->front().comm, own_comm());
  EXPECT_FALSE(owners->front().comm.empty());
  EXPECT_EQ(owners->front().comm.find('\n'), std::string::npos);
}

TEST(SystemFdOwners, ScanMissesClosedSocket) {
  UniqueFd sock(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(sock);
  const std::uint32_t inode = inode_of(sock.get());
  sock.reset();
  EXPECT_EQ(FdOwnerIndex::scan().find(inode), nullptr);
}

TEST(SystemFdOwners, ForkedChildSharesTheSocket) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(sock);
  const std::uint32_t inode = inode_of(sock.get());
  HoldingChild child;
  ASSERT_GT(child.pid(), 0);
  const auto child_pid = static_cast<std::uint32_t>(child.pid());

  FdOwnerIndex index = FdOwnerIndex::scan();
  const auto* owners = index.find(inode);
  ASSERT_NE(owners, nullptr);
  EXPECT_TRUE(holds(*owners, self_pid(), sock.get()));
  EXPECT_TRUE(holds(*owners, child_pid, sock.get()));

  for (const FdOwner& owner : *owners) {
    EXPECT_EQ(owner.comm, own_comm()) << owner.pid;
  }
}

}  // namespace
}  // namespace tcptrail::sys

namespace tcptrail::sys {
namespace {

// Lowers RLIMIT_NOFILE so that only `free_fds` more descriptors can be opened; restores it.
class FdLimit {
public:
  explicit FdLimit(int free_fds) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    const int lowest_free = ::dup(0);
    ::close(lowest_free);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(lowest_free) + free_fds;
    setrlimit(RLIMIT_NOFILE, &lowered);
  }
  FdLimit(const FdLimit&) = delete;
  FdLimit& operator=(const FdLimit&) = delete;
  ~FdLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }

private:
  rlimit saved_{};
};

// Once an EMFILE ended the run with exit 1 and no stop record.
TEST(SystemFdOwners, EmfileInAProcessIsCountedNotThrown) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(sock);
  struct stat st {};
  ASSERT_EQ(::fstat(sock.get(), &st), 0);
  const auto inode = static_cast<std::uint32_t>(st.st_ino);
  {
    FdLimit limit(1);  // /proc opens, no /proc/PID/fd does
    const FdOwnerIndex index = FdOwnerIndex::scan();
    EXPECT_GT(index.skipped(), 0u);
    EXPECT_EQ(index.find(inode), nullptr);
  }
  const FdOwnerIndex index = FdOwnerIndex::scan();  // the limit lifted: found again
  EXPECT_EQ(index.skipped(), 0u);
  EXPECT_NE(index.find(inode), nullptr);
}

}  // namespace
}  // namespace tcptrail::sys
