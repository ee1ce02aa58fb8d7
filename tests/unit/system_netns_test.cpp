#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

#include "system/netns.hpp"
#include "system/port_range.hpp"
#include "system/sock_diag.hpp"

namespace tcptrail::sys {
namespace {

using namespace std::chrono_literals;

#define REQUIRE_ROOT()                                                                             \
  do {                                                                                             \
    if (::geteuid() != 0) {                                                                        \
      if (std::getenv("CI") != nullptr)                                                            \
        FAIL() << "needs root (CAP_SYS_ADMIN)";                                                    \
      GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) to create network namespaces";                   \
    }                                                                                              \
  } while (0)

int run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

// `ip netns add NAME` with a `sleep` running inside; both removed on destruction, whatever
// the test did.
class ScratchNetns {
public:
  ScratchNetns() : name_("tt-sysdiag-" + std::to_string(::getpid())) {
    run("ip netns del " + name_);
    if (run("ip netns add " + name_) != 0) {
      return;
    }
    created_ = true;
    struct stat st {};
    if (::stat(("/run/netns/" + name_).c_str(), &st) == 0) {
      ino_ = static_cast<std::uint32_t>(st.st_ino);
    }
    sleeper_ = ::fork();
    if (sleeper_ == 0) {
      ::execlp("ip", "ip", "netns", "exec", name_.c_str(), "sleep", "30", nullptr);
      ::_exit(127);
    }
  }
  ~ScratchNetns() {
    stop_sleeper();
    if (created_) {
      run("ip netns del " + name_);
    }
  }
  ScratchNetns(const ScratchNetns&) = delete;
  ScratchNetns& operator=(const ScratchNetns&) = delete;

  void stop_sleeper() {
    if (sleeper_ <= 0) {
      return;
    }
    ::kill(sleeper_, SIGKILL);
    ::waitpid(sleeper_, nullptr, 0);
    sleeper_ = -1;
  }
  [[nodiscard]] bool ok() const { return created_ && ino_ != 0 && sleeper_ > 0; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::uint32_t ino() const { return ino_; }
  [[nodiscard]] pid_t sleeper() const { return sleeper_; }

private:
  std::string name_;
  bool created_ = false;
  std::uint32_t ino_ = 0;
  pid_t sleeper_ = -1;
};

bool has_inode(const std::vector<SocketEntry>& entries, std::uint32_t inode) {
  return std::any_of(entries.begin(), entries.end(),
                     [inode](const SocketEntry& e) { return e.inode == inode; });
}

TEST(SystemNetns, ReadsAndDumpsAnotherNamespace) {
  REQUIRE_ROOT();
  const std::uint32_t own_ns = current_netns_ino();
  const PortRange own_range = read_port_range();
  ScratchNetns ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add " << ns.name() << " failed";
  ASSERT_NE(ns.ino(), own_ns);

  // `ip netns exec` joins the namespace before it execs sleep; wait until it has.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::optional<std::uint32_t> holder;
  while (!(holder = find_process_in_netns(ns.ino())) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(holder);
  EXPECT_EQ(*holder, static_cast<std::uint32_t>(ns.sleeper()));

  ASSERT_EQ(
      run("ip netns exec " + ns.name() + " sysctl -w net.ipv4.ip_local_port_range='40000 40099'"),
      0);
  PortRange range = read_port_range(ns.ino());
  EXPECT_EQ(range, (PortRange{40000, 40099}));
  EXPECT_EQ(range.size(), 100U);
  EXPECT_EQ(read_port_range(), own_range);
  ASSERT_EQ(run("ip netns exec " + ns.name() + " sysctl -w net.ipv4.tcp_tw_reuse=1"), 0);
  const PortSettings settings = read_port_settings(ns.ino());
  EXPECT_EQ(settings.range, range);
  EXPECT_EQ(settings.tw_reuse, 1);
  EXPECT_EQ(netns_name(ns.ino()), ns.name());

  // A listener created inside the namespace appears in its dump and not in ours.
  UniqueFd ns_fd = open_netns(ns.ino());
  UniqueFd listener;
  run_in_netns(ns_fd.get(), [&listener] {
    listener = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in any{};
    any.sin_family = AF_INET;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0 ||
        ::listen(listener.get(), 1) != 0) {
      listener.reset();
    }
  });
  ASSERT_TRUE(listener);
  struct stat st {};
  ASSERT_EQ(::fstat(listener.get(), &st), 0);
  const auto inode = static_cast<std::uint32_t>(st.st_ino);

  auto inside = dump_tcp_sockets_in_netns(ns.ino());
  EXPECT_TRUE(has_inode(inside, inode));
  EXPECT_FALSE(has_inode(dump_tcp_sockets(), inode));
  EXPECT_EQ(current_netns_ino(), own_ns);

  // With no process left inside, the /run/netns bind mount still leads there.
  ns.stop_sleeper();
  EXPECT_FALSE(find_process_in_netns(ns.ino()));
  EXPECT_TRUE(has_inode(dump_tcp_sockets_in_netns(ns.ino()), inode));
  EXPECT_EQ(read_port_range(ns.ino()).size(), 100U);
}

TEST(SystemNetns, UnknownNamespaceThrowsEnoent) {
  try {
    dump_tcp_sockets_in_netns(1);
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& error) {
    EXPECT_EQ(error.code().value(), ENOENT);
    EXPECT_NE(std::string(error.what()).find("net:[1]"), std::string::npos) << error.what();
  }
  EXPECT_THROW(read_port_range(1), std::system_error);
}

}  // namespace
}  // namespace tcptrail::sys
