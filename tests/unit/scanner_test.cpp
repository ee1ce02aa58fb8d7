#include "cli/scanner.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "kernel_model.hpp"
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

// Takes batches until one satisfies done, for at most five seconds; the scanner sweeps
// `namespaces` besides its own.
template <typename Done>
bool take_until(Scanner& scanner, Done done, const std::vector<std::uint32_t>& namespaces = {}) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto batch = scanner.take(namespaces); batch && done(*batch)) {
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
  // A socket left in CLOSE_WAIT: the peer closed, this end did not.
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  sys::UniqueFd peer(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(peer.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const sys::UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  peer = sys::UniqueFd();
  std::uint64_t cookie = 0;
  socklen_t cookie_len = sizeof(cookie);
  ASSERT_EQ(getsockopt(accepted.get(), SOL_SOCKET, SO_COOKIE, &cookie, &cookie_len), 0);
  testing::KernelModel kernel;
  Connection folded;
  folded.sock_cookie = cookie;
  folded.state = TcpState::kCloseWait;
  folded.state_since_ns = 123;
  ASSERT_EQ(kernel.seed(folded), LiveConnections::Seeded::kAdded);
  Scanner scanner(own, 50'000'000, &kernel);

  bool held = false;
  EXPECT_TRUE(take_until(scanner, [&](const ScanBatch& batch) {
    for (const SweepDigest& d : batch.digests) {
      for (const Connection& c : d.held) {
        held = held || (c.sock_cookie == cookie && c.state_since_ns == 123 &&
                        c.sock_ino == inode_of(accepted.get()) && c.netns_ino == own);
      }
      for (const SocketSnapshot& l : d.listeners) {
        if (d.netns_ino == own && l.inode == inode && d.ports.size > 0 && d.ts_ns > 0) {
          return true;
        }
      }
    }
    return false;
  })) << "no sweep of the own namespace showed the listener";
  EXPECT_TRUE(held) << "the CLOSE_WAIT socket's lifecycle did not come with the sweep";

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

// A namespace that fails with ENOENT twice in a row is reported gone (once a namespace that
// vanished was retried with a /proc walk forever), and a namespace going away is no failure:
// every benchmark round and many kernel tests delete theirs while tracers sweep them.
TEST(Scanner, ANamespaceThatIsGoneIsDroppedWithoutAFailure) {
  constexpr std::uint32_t kNoSuchNetns = 1;  // no nsfs inode is 1
  const std::uint32_t own = sys::current_netns_ino();
  Scanner scanner(own, 20'000'000, nullptr);
  bool own_swept = false;
  EXPECT_TRUE(take_until(scanner,
                         [&](const ScanBatch& batch) {
                           for (const SweepDigest& d : batch.digests) {
                             EXPECT_NE(d.netns_ino, kNoSuchNetns);
                             own_swept = own_swept || d.netns_ino == own;
                           }
                           return std::find(batch.gone.begin(), batch.gone.end(), kNoSuchNetns) !=
                                  batch.gone.end();
                         },
                         {kNoSuchNetns}))
      << "the missing namespace was never reported gone";
  EXPECT_TRUE(own_swept) << "a failing namespace kept the own one from being swept";
  scanner.stop();
  RunStats run;
  scanner.add_stats(run);
  EXPECT_EQ(run.scan_errors, 0u);
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

// A namespace is walked when first seen, then each sweep while its last walk found something
// that may cross a leak threshold or the kernel told of a new one, and otherwise in its slot, one
// sweep in kEvery, which is also when it counts TIME_WAIT (and at its first walk).
TEST(NamespaceWalks, AQuietNamespaceIsWalkedInItsSlotOneSweepInKEvery) {
  NamespaceWalks walks;
  constexpr std::uint32_t kNetns = 4026531843;  // its slot: sweeps 3, 13, 23...
  ASSERT_TRUE(walks.due(kNetns, 0, false)) << "never walked";
  EXPECT_TRUE(walks.counts_time_wait(kNetns, 0)) << "its first walk";
  walks.walked(kNetns, false);
  std::vector<std::uint64_t> walked;
  std::vector<std::uint64_t> counted;
  for (std::uint64_t sweep = 1; sweep < 3 * NamespaceWalks::kEvery; ++sweep) {
    if (walks.due(kNetns, sweep, false)) {
      walked.push_back(sweep);
    }
    if (walks.counts_time_wait(kNetns, sweep)) {
      counted.push_back(sweep);
    }
  }
  EXPECT_EQ(walked, (std::vector<std::uint64_t>{3, 13, 23}));
  EXPECT_EQ(counted, walked);
  EXPECT_TRUE(walks.due(kNetns, 4, true)) << "the kernel told of a new leak state";
  EXPECT_FALSE(walks.counts_time_wait(kNetns, 4));
  EXPECT_TRUE(walks.due(4026531841, 4, false)) << "another namespace, never walked";
}

// Namespaces found together are walked in different sweeps.
TEST(NamespaceWalks, SlotsSpreadQuietNamespacesOverTheSweeps) {
  NamespaceWalks walks;
  for (std::uint32_t netns = 4026531840; netns < 4026531840 + 20; ++netns) {
    walks.walked(netns, false);
  }
  for (std::uint64_t sweep = 1; sweep <= NamespaceWalks::kEvery; ++sweep) {
    int due = 0;
    for (std::uint32_t netns = 4026531840; netns < 4026531840 + 20; ++netns) {
      due += walks.due(netns, sweep, false) ? 1 : 0;
    }
    EXPECT_EQ(due, 2) << "sweep " << sweep;
  }
}

TEST(NamespaceWalks, ANamespaceWithSuspectsIsWalkedEachSweepUntilAWalkFindsNone) {
  NamespaceWalks walks;
  constexpr std::uint32_t kNetns = 4026531840;  // its slot: sweeps 0, 10...
  walks.walked(kNetns, true);
  EXPECT_TRUE(walks.due(kNetns, 1, false));
  walks.walked(kNetns, true);
  EXPECT_TRUE(walks.due(kNetns, 2, false));
  walks.walked(kNetns, false);
  EXPECT_FALSE(walks.due(kNetns, 3, false));
  walks.forget(kNetns);
  EXPECT_TRUE(walks.due(kNetns, 3, false)) << "forgotten: as if never walked";
  EXPECT_TRUE(walks.counts_time_wait(kNetns, 3));
}

class IgnoresRecords : public TableObserver {
public:
  void on_state_change(const Connection& /*conn*/, TcpState /*old_state*/, TcpState /*new_state*/,
                       std::uint64_t /*ns_in_old*/, bool /*known*/,
                       std::uint64_t /*ts_ns*/) override {}
  void on_retransmit(const Connection& /*conn*/, TcpState /*state*/, std::uint32_t /*segs*/,
                     std::uint64_t /*ts_ns*/) override {}
  void on_reset(const Connection& /*conn*/, ResetDirection /*direction*/, TcpState /*state*/,
                std::uint64_t /*ts_ns*/) override {}
  void on_closed(const Connection& /*conn*/, std::uint64_t /*ts_ns*/) override {}
};

// The model, as the programs do, tells which namespaces saw a socket enter a leak state or a
// SYN-ACK retransmitted, each once per take.
TEST(NamespaceWalks, TheKernelTellsEachActiveNamespaceOncePerTake) {
  testing::KernelModel kernel;
  IgnoresRecords ignored;
  ConnectionTable table(TableConfig{}, kernel, ignored);
  Event cw;
  cw.kind = EventKind::kState;
  cw.sock_cookie = 5;
  cw.netns_ino = 11;
  cw.old_state = TcpState::kEstablished;
  cw.new_state = TcpState::kCloseWait;
  kernel.feed(cw, table);
  Event established = cw;
  established.sock_cookie = 6;
  established.netns_ino = 12;
  established.old_state = TcpState::kSynSent;
  established.new_state = TcpState::kEstablished;
  kernel.feed(established, table);
  Event synack;
  synack.kind = EventKind::kSynackRetransmit;
  synack.netns_ino = 13;
  kernel.feed(synack, table);
  EXPECT_EQ(kernel.take_active_namespaces(), (std::vector<std::uint32_t>{11, 13}));
  EXPECT_EQ(kernel.take_active_namespaces(), std::vector<std::uint32_t>{});
}

}  // namespace
}  // namespace tcptrail
