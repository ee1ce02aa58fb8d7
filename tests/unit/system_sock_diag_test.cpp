#include "system/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "system/unique_fd.hpp"

namespace tcptrail::sys {
namespace {

using namespace std::chrono_literals;

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

Endpoint loopback(int family, std::uint16_t port) {
  Endpoint ep;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ep.addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ep.len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
    ep.len = sizeof(sockaddr_in6);
  }
  return ep;
}

std::uint16_t local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

std::uint32_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint32_t>(st.st_ino) : 0;
}

std::uint64_t cookie_of(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  return ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) == 0 ? cookie : 0;
}

UniqueFd make_listener(int family, const std::function<void(int)>& configure = {}) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fd;
  }
  if (configure) {
    configure(fd.get());
  }
  Endpoint ep = loopback(family, 0);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len) != 0 ||
      ::listen(fd.get(), 16) != 0) {
    fd.reset();
  }
  return fd;
}

UniqueFd connect_to(int family, std::uint16_t port) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  Endpoint ep = loopback(family, port);
  if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len) != 0) {
    fd.reset();
  }
  return fd;
}

struct Pair {
  UniqueFd listener;
  UniqueFd client;
  UniqueFd server;
  std::uint16_t listen_port = 0;
  std::uint16_t client_port = 0;
};

Pair make_pair(int family) {
  Pair pair;
  pair.listener = make_listener(family);
  if (!pair.listener) {
    return pair;
  }
  pair.listen_port = local_port(pair.listener.get());
  pair.client = connect_to(family, pair.listen_port);
  if (!pair.client) {
    return pair;
  }
  pair.client_port = local_port(pair.client.get());
  pair.server = UniqueFd(::accept4(pair.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return pair;
}

std::optional<SocketEntry> find_entry(const std::vector<SocketEntry>& entries, int family,
                                      std::uint16_t lport, std::uint16_t rport) {
  const std::uint8_t want = family == AF_INET ? 4 : 6;
  for (const auto& entry : entries) {
    if (entry.family == want && entry.lport == lport && entry.rport == rport) {
      return entry;
    }
  }
  return std::nullopt;
}

// Dumps until pred holds for the entry (lport, rport) or the deadline passes.
std::optional<SocketEntry> wait_for_entry(int family, std::uint16_t lport, std::uint16_t rport,
                                          const std::function<bool(const SocketEntry&)>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  std::optional<SocketEntry> last;
  do {
    last = find_entry(dump_tcp_sockets(), family, lport, rport);
    if (last && pred(*last)) {
      return last;
    }
    std::this_thread::sleep_for(5ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return last;
}

IpAddress loopback_address(int family) {
  IpAddress addr;
  if (family == AF_INET) {
    addr.family = 4;
    addr.bytes[0] = 127;
    addr.bytes[3] = 1;
  } else {
    addr.family = 6;
    addr.bytes[15] = 1;
  }
  return addr;
}

int state_value(TcpState state) {
  return static_cast<int>(state);
}

class SystemSockDiagFamily : public ::testing::TestWithParam<int> {};

TEST_P(SystemSockDiagFamily, FindsListenerAndBothEndsOfALoopbackPair) {
  const int family = GetParam();
  Pair pair = make_pair(family);
  ASSERT_TRUE(pair.server) << std::strerror(errno);

  auto entries = dump_tcp_sockets();
  auto listener = find_entry(entries, family, pair.listen_port, 0);
  auto client = find_entry(entries, family, pair.client_port, pair.listen_port);
  auto server = find_entry(entries, family, pair.listen_port, pair.client_port);
  ASSERT_TRUE(listener && client && server);

  EXPECT_EQ(state_value(listener->state), state_value(TcpState::kListen));
  EXPECT_EQ(listener->inode, inode_of(pair.listener.get()));
  EXPECT_EQ(listener->cookie, cookie_of(pair.listener.get()));

  for (const auto& [entry, fd] :
       {std::pair{*client, pair.client.get()}, std::pair{*server, pair.server.get()}}) {
    EXPECT_EQ(entry.kind, SocketKind::kFull);
    EXPECT_EQ(state_value(entry.state), state_value(TcpState::kEstablished));
    EXPECT_EQ(entry.inode, inode_of(fd));
    EXPECT_NE(entry.inode, 0U);
    EXPECT_EQ(entry.cookie, cookie_of(fd));
    EXPECT_EQ(entry.uid, ::getuid());
    EXPECT_FALSE(entry.orphan);
    EXPECT_TRUE(entry.has_info);
    EXPECT_EQ(entry.laddr, loopback_address(family));
    EXPECT_EQ(entry.raddr, loopback_address(family));
  }
}

TEST_P(SystemSockDiagFamily, ReportsTcpInfoCounters) {
  const int family = GetParam();
  Pair pair = make_pair(family);
  ASSERT_TRUE(pair.server) << std::strerror(errno);
  std::vector<char> data(1000, 'x');
  ASSERT_EQ(::send(pair.client.get(), data.data(), data.size(), 0), 1000);
  std::size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::recv(pair.server.get(), data.data(), data.size() - got, 0);
    ASSERT_GT(n, 0);
    got += static_cast<std::size_t>(n);
  }

  auto server = wait_for_entry(family, pair.listen_port, pair.client_port,
                               [](const SocketEntry& e) { return e.bytes_received == 1000; });
  ASSERT_TRUE(server);
  EXPECT_EQ(server->bytes_received, 1000U);
  // The active opener's count includes its SYN: the SYN-ACK advances snd_una past it
  // (tcp_ack -> tcp_snd_una_update), while a server child starts at snt_isn + 1.
  auto client = wait_for_entry(family, pair.client_port, pair.listen_port,
                               [](const SocketEntry& e) { return e.bytes_acked >= 1000; });
  ASSERT_TRUE(client);
  EXPECT_EQ(client->bytes_acked, 1001U);
  EXPECT_EQ(client->bytes_received, 0U);
  EXPECT_EQ(server->bytes_acked, 0U);
  EXPECT_EQ(client->total_retrans, 0U);
}

TEST_P(SystemSockDiagFamily, TimeWaitAfterActiveClose) {
  const int family = GetParam();
  Pair pair = make_pair(family);
  ASSERT_TRUE(pair.server) << std::strerror(errno);
  pair.client.reset();
  char byte;
  ASSERT_EQ(::recv(pair.server.get(), &byte, 1, 0), 0);  // the client's FIN
  pair.server.reset();

  auto entry = wait_for_entry(family, pair.client_port, pair.listen_port,
                              [](const SocketEntry& e) { return e.state == TcpState::kTimeWait; });
  ASSERT_TRUE(entry);
  EXPECT_EQ(state_value(entry->state), state_value(TcpState::kTimeWait));
  EXPECT_EQ(entry->kind, SocketKind::kTimeWait);
  EXPECT_EQ(entry->inode, 0U);
  EXPECT_FALSE(entry->orphan);
  EXPECT_FALSE(entry->has_info);
  EXPECT_EQ(entry->timer, SocketTimer::kTimeWait);
  EXPECT_GT(entry->expires_ms, 50'000U);
  EXPECT_LE(entry->expires_ms, 60'000U);
  EXPECT_NE(entry->cookie, 0U);
}

// What the scanner does to learn where an orphaned FIN_WAIT2 went without dumping TIME_WAIT:
// one lookup by tuple and cookie follows the same socket from a FIN_WAIT2 timewait sock to
// TIME_WAIT, and finds nothing for another cookie or another tuple.
TEST_P(SystemSockDiagFamily, ExactLookupFollowsOneSocketByTupleAndCookie) {
  const int family = GetParam();
  Pair pair = make_pair(family);
  ASSERT_TRUE(pair.server) << std::strerror(errno);
  pair.client.reset();
  auto fin_wait2 =
      wait_for_entry(family, pair.client_port, pair.listen_port,
                     [](const SocketEntry& e) { return e.kind == SocketKind::kTimeWait; });
  ASSERT_TRUE(fin_wait2);
  ASSERT_EQ(state_value(fin_wait2->state), state_value(TcpState::kFinWait2));
  const SocketEntry wanted = *fin_wait2;

  std::vector<SocketEntry> found = find_tcp_sockets_in_netns(0, std::span(&wanted, 1));
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].kind, SocketKind::kTimeWait);
  EXPECT_EQ(state_value(found[0].state), state_value(TcpState::kFinWait2));
  EXPECT_EQ(found[0].cookie, wanted.cookie);

  char byte;
  ASSERT_EQ(::recv(pair.server.get(), &byte, 1, 0), 0);  // the client's FIN
  pair.server.reset();                                   // and the server's: TIME_WAIT
  auto time_wait = wait_for_entry(family, pair.client_port, pair.listen_port,
                                  [](const auto& e) { return e.state == TcpState::kTimeWait; });
  ASSERT_TRUE(time_wait);
  found = find_tcp_sockets_in_netns(0, std::span(&wanted, 1));
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].kind, SocketKind::kTimeWait);
  EXPECT_EQ(state_value(found[0].state), state_value(TcpState::kTimeWait));
  EXPECT_EQ(found[0].cookie, wanted.cookie);
  EXPECT_EQ(found[0].lport, pair.client_port);
  EXPECT_EQ(found[0].rport, pair.listen_port);

  SocketEntry other_cookie = wanted;
  other_cookie.cookie += 1;
  SocketEntry other_tuple = wanted;
  other_tuple.rport = 1;
  const std::vector<SocketEntry> strangers = {other_cookie, other_tuple};
  EXPECT_TRUE(find_tcp_sockets_in_netns(0, strangers).empty());
}

TEST_P(SystemSockDiagFamily, NarrowDumpFiltersStatesAndKeepsKinds) {
  const int family = GetParam();
  Pair pair = make_pair(family);
  ASSERT_TRUE(pair.server) << std::strerror(errno);
  DumpOptions options;
  options.states = state_bit(TcpState::kEstablished);
  options.tcp_info = false;

  auto entries = dump_tcp_sockets(options);
  for (const auto& entry : entries) {
    EXPECT_EQ(state_value(entry.state), state_value(TcpState::kEstablished));
  }
  EXPECT_FALSE(find_entry(entries, family, pair.listen_port, 0));
  auto client = find_entry(entries, family, pair.client_port, pair.listen_port);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->kind, SocketKind::kFull);
  EXPECT_FALSE(client->has_info);
  EXPECT_EQ(client->inode, inode_of(pair.client.get()));
}

INSTANTIATE_TEST_SUITE_P(Loopback, SystemSockDiagFamily, ::testing::Values(AF_INET, AF_INET6),
                         [](const auto& info) { return info.param == AF_INET ? "V4" : "V6"; });

// With TCP_DEFER_ACCEPT the listener drops the handshake's bare ACK (tcp_check_req), so the
// request sock stays in the established hash as NEW_SYN_RECV while the client is ESTABLISHED.
TEST(SystemSockDiag, RequestSocketShowsAsSynRecv) {
  UniqueFd listener = make_listener(AF_INET, [](int fd) {
    int seconds = 10;
    ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof(seconds));
  });
  ASSERT_TRUE(listener) << std::strerror(errno);
  const std::uint16_t listen_port = local_port(listener.get());
  UniqueFd client = connect_to(AF_INET, listen_port);
  ASSERT_TRUE(client) << std::strerror(errno);
  const std::uint16_t client_port = local_port(client.get());

  auto request = wait_for_entry(AF_INET, listen_port, client_port, [](const SocketEntry& e) {
    return e.kind == SocketKind::kRequest;
  });
  ASSERT_TRUE(request);
  EXPECT_EQ(request->kind, SocketKind::kRequest);
  EXPECT_EQ(state_value(request->state), state_value(TcpState::kSynRecv));
  EXPECT_EQ(request->inode, 0U);
  EXPECT_FALSE(request->orphan);
  EXPECT_EQ(request->timer, SocketTimer::kRetransmit);
  EXPECT_NE(request->cookie, 0U);
  EXPECT_NE(request->cookie, cookie_of(listener.get()));

  auto client_entry = find_entry(dump_tcp_sockets(), AF_INET, client_port, listen_port);
  ASSERT_TRUE(client_entry);
  EXPECT_EQ(state_value(client_entry->state), state_value(TcpState::kEstablished));
}

// An orphan in FIN_WAIT2 whose timeout fits in TIME_WAIT's 60 s becomes a timewait minisock
// still reporting FIN_WAIT2 (tcp_close -> tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)); with a longer
// TCP_LINGER2 the full socket stays, as an orphan.
TEST(SystemSockDiag, OrphanedFinWait2) {
  for (int linger2 : {0, 90}) {
    SCOPED_TRACE(linger2);
    Pair pair = make_pair(AF_INET);
    ASSERT_TRUE(pair.server) << std::strerror(errno);
    if (linger2 != 0) {
      ASSERT_EQ(
          ::setsockopt(pair.client.get(), IPPROTO_TCP, TCP_LINGER2, &linger2, sizeof(linger2)), 0);
    }
    pair.client.reset();

    auto entry =
        wait_for_entry(AF_INET, pair.client_port, pair.listen_port,
                       [](const SocketEntry& e) { return e.state == TcpState::kFinWait2; });
    ASSERT_TRUE(entry);
    EXPECT_EQ(state_value(entry->state), state_value(TcpState::kFinWait2));
    EXPECT_EQ(entry->inode, 0U);
    if (linger2 == 0) {
      EXPECT_EQ(entry->kind, SocketKind::kTimeWait);
      EXPECT_FALSE(entry->orphan);
      EXPECT_EQ(entry->timer, SocketTimer::kTimeWait);
    } else {
      EXPECT_EQ(entry->kind, SocketKind::kFull);
      EXPECT_TRUE(entry->orphan);
      EXPECT_TRUE(entry->has_info);
      EXPECT_EQ(entry->timer, SocketTimer::kKeepalive);
    }

    auto server = find_entry(dump_tcp_sockets(), AF_INET, pair.listen_port, pair.client_port);
    ASSERT_TRUE(server);
    EXPECT_EQ(state_value(server->state), state_value(TcpState::kCloseWait));
    EXPECT_EQ(server->inode, inode_of(pair.server.get()));
  }
}

TEST(SystemSockDiag, BoundOnlySocketShowsAsClose) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd);
  Endpoint ep = loopback(AF_INET, 0);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&ep.addr), ep.len), 0);
  auto entry = find_entry(dump_tcp_sockets(), AF_INET, local_port(fd.get()), 0);
  ASSERT_TRUE(entry);
  EXPECT_EQ(state_value(entry->state), state_value(TcpState::kClose));
  EXPECT_EQ(entry->kind, SocketKind::kFull);
  EXPECT_EQ(entry->inode, inode_of(fd.get()));
}

TEST(SystemSockDiag, DumpInOwnNamespaceMatchesPlainDump) {
  UniqueFd listener = make_listener(AF_INET6);
  ASSERT_TRUE(listener);
  auto entry = find_entry(dump_tcp_sockets_in_netns(current_netns_ino()), AF_INET6,
                          local_port(listener.get()), 0);
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->inode, inode_of(listener.get()));
}

std::vector<std::byte> synthetic_message(std::uint8_t state, bool with_shutdown,
                                         std::size_t info_len) {
  inet_diag_msg msg{};
  msg.idiag_family = AF_INET;
  msg.idiag_state = state;
  msg.idiag_timer = 3;
  msg.idiag_expires = 1234;
  msg.id.idiag_sport = htons(40000);
  msg.id.idiag_dport = htons(80);
  msg.id.idiag_src[0] = htonl(0x0a000001);
  msg.id.idiag_dst[0] = htonl(0x0a000002);
  msg.id.idiag_cookie[0] = 0x11223344;
  msg.id.idiag_cookie[1] = 0x55667788;
  std::vector<std::byte> bytes(sizeof(msg));
  std::memcpy(bytes.data(), &msg, sizeof(msg));
  auto put_attr = [&bytes](std::uint16_t type, std::size_t len) {
    const auto nla_len = static_cast<std::uint16_t>(4 + len);
    std::size_t at = bytes.size();
    bytes.resize(at + ((nla_len + 3U) & ~3U));
    std::memcpy(bytes.data() + at, &nla_len, 2);
    std::memcpy(bytes.data() + at + 2, &type, 2);
  };
  if (with_shutdown) {
    put_attr(INET_DIAG_SHUTDOWN, 1);
  }
  if (info_len != 0) {
    put_attr(INET_DIAG_INFO, info_len);
  }
  return bytes;
}

TEST(SystemSockDiag, DecodesSyntheticMessages) {
  SocketEntry entry;
  auto tw = synthetic_message(5, false, 0);
  ASSERT_TRUE(decode_inet_diag_msg(tw, entry));
  EXPECT_EQ(entry.kind, SocketKind::kTimeWait);
  EXPECT_EQ(state_value(entry.state), state_value(TcpState::kFinWait2));
  EXPECT_EQ(entry.lport, 40000);
  EXPECT_EQ(entry.rport, 80);
  EXPECT_EQ(entry.laddr.bytes[0], 10);
  EXPECT_EQ(entry.laddr.bytes[3], 1);
  EXPECT_EQ(entry.raddr.bytes[3], 2);
  EXPECT_EQ(entry.laddr.bytes[4], 0);
  EXPECT_EQ(entry.cookie, 0x5566778811223344uLL);
  EXPECT_EQ(entry.expires_ms, 1234U);

  ASSERT_TRUE(decode_inet_diag_msg(synthetic_message(3, false, 0), entry));
  EXPECT_EQ(entry.kind, SocketKind::kRequest);

  // TCP_INFO from a kernel too old to carry the byte counters.
  ASSERT_TRUE(decode_inet_diag_msg(synthetic_message(8, true, 104), entry));
  EXPECT_EQ(entry.kind, SocketKind::kFull);
  EXPECT_TRUE(entry.orphan);
  EXPECT_FALSE(entry.has_info);

  ASSERT_TRUE(decode_inet_diag_msg(synthetic_message(8, true, 400), entry));
  EXPECT_TRUE(entry.has_info);

  // A truncated attribute stops the walk without reading past the end.
  auto cut = synthetic_message(8, true, 400);
  cut.resize(cut.size() - 100);
  ASSERT_TRUE(decode_inet_diag_msg(cut, entry));
  EXPECT_FALSE(entry.has_info);

  std::vector<std::byte> short_payload(sizeof(inet_diag_msg) - 1);
  entry.lport = 7;
  EXPECT_FALSE(decode_inet_diag_msg(short_payload, entry));
  EXPECT_EQ(entry.lport, 7);
}

}  // namespace
}  // namespace tcptrail::sys
