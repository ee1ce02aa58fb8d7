#include "cli/scanner.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "system/netns.hpp"
#include "system/unique_fd.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {
namespace {

using namespace std::chrono_literals;

// sock_diag dumps need no privilege for the caller's own namespace; /proc/self/fd neither.
sys::UniqueFd listening_socket() {
  sys::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(listen(fd.get(), 1), 0);
  return fd;
}

std::uint32_t inode_of(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return static_cast<std::uint32_t>(st.st_ino);
}

// Takes batches until one satisfies done, for at most five seconds.
template <typename Done> bool take_until(Scanner& scanner, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto batch = scanner.take({}); batch && done(*batch)) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TEST(Scanner, SweepsTheOwnNamespaceAndScansHoldersOnRequest) {
  const sys::UniqueFd listener = listening_socket();
  const std::uint32_t inode = inode_of(listener.get());
  const std::uint32_t own = sys::current_netns_ino();
  const std::uint64_t before = monotonic_ns();
  Scanner scanner(own, 50'000'000);

  EXPECT_TRUE(take_until(scanner, [&](const ScanBatch& batch) {
    for (const SweepDigest& d : batch.digests) {
      for (const SocketSnapshot& l : d.listeners) {
        if (d.netns_ino == own && l.inode == inode && d.port_range > 0) {
          return true;
        }
      }
    }
    return false;
  })) << "no sweep of the own namespace showed the listener";

  scanner.request_holders();
  std::shared_ptr<const HolderSnapshot> holders;
  EXPECT_TRUE(take_until(scanner, [&](const ScanBatch& batch) {
    holders = batch.holders;
    return holders != nullptr;
  })) << "no holder scan after a request";
  ASSERT_NE(holders, nullptr);
  EXPECT_GE(holders->ts_ns, before);
  const std::vector<FdOwner>* found = holders->fd_index.find(inode);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->front().pid, static_cast<std::uint32_t>(getpid()));
  EXPECT_EQ(found->front().fd, listener.get());

  scanner.stop();
  RunStats run;
  scanner.add_stats(run);
  EXPECT_GE(run.sweeps, 2u);
  EXPECT_EQ(run.scan_errors, 0u);
}

// Lowers RLIMIT_NOFILE so that no descriptor can be opened; restores it.
class NoFreeFds {
public:
  NoFreeFds() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    const int lowest_free = ::dup(0);
    ::close(lowest_free);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
    setrlimit(RLIMIT_NOFILE, &lowered);
  }
  NoFreeFds(const NoFreeFds&) = delete;
  NoFreeFds& operator=(const NoFreeFds&) = delete;
  ~NoFreeFds() { setrlimit(RLIMIT_NOFILE, &saved_); }

private:
  rlimit saved_{};
};

// Once an EMFILE in a /proc scan ended the run with exit 1 and no stop record.
TEST(Scanner, FailedSweepsAndScansAreCountedAndRetried) {
  Scanner scanner(sys::current_netns_ino(), 20'000'000);
  {
    const NoFreeFds limit;  // neither netlink sockets nor /proc open
    scanner.request_holders();
    std::this_thread::sleep_for(200ms);
  }
  RunStats failing;
  scanner.add_stats(failing);
  EXPECT_GT(failing.scan_errors, 0u);
  EXPECT_TRUE(take_until(scanner, [](const ScanBatch& batch) { return !batch.digests.empty(); }))
      << "sweeps did not recover once descriptors were free again";
  scanner.stop();
}

TEST(ScannedFdOwners, AsksForAScanWhenWhatItKnowsIsOlderThanAsked) {
  int requests = 0;
  ScannedFdOwners lookup([&] { ++requests; });
  EXPECT_FALSE(lookup.fresh_since(0)) << "nothing scanned yet";
  auto holders = std::make_shared<HolderSnapshot>();
  holders->ts_ns = 100;
  holders->inodes[42] = 7;
  lookup.install(holders);
  EXPECT_TRUE(lookup.fresh_since(100));
  EXPECT_FALSE(lookup.fresh_since(101));
  EXPECT_EQ(requests, 2);
  EXPECT_EQ(lookup.inode_of(42, 0), 7u);
  EXPECT_EQ(lookup.inode_of(43, 0), 0u);
  EXPECT_TRUE(lookup.owners(7).empty());
}

}  // namespace
}  // namespace tcptrail
