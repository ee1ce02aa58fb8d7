#include "system/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>

namespace tcptrail::sys {
namespace {

// A netlink dump never puts more than 32 KiB in one datagram (netlink_dump caps its skb at
// max_recvmsg_len, itself capped at SKB_WITH_OVERHEAD(32768)); twice that leaves headroom.
constexpr std::size_t kRecvBufferSize = std::size_t{64} * 1024;

template <typename T> T load(std::span<const std::byte> bytes, std::size_t offset = 0) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

UniqueFd open_diag_socket() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) {
    throw_errno(errno, "sock_diag: socket(NETLINK_SOCK_DIAG)");
  }
  return fd;
}

// A socket belongs to the namespace it was created in; only its creation needs a thread that
// joins netns_ino (0: the caller's), the calling thread stays where it is.
UniqueFd open_diag_socket_in_netns(std::uint32_t netns_ino) {
  if (netns_ino == 0 || netns_ino == current_netns_ino()) {
    return open_diag_socket();
  }
  UniqueFd ns = open_netns(netns_ino);
  UniqueFd fd;
  run_in_netns(ns.get(), [&fd] { fd = open_diag_socket(); });
  return fd;
}

// A request of type nlmsg_type: req is an inet_diag_req_v2 (SOCK_DIAG_BY_FAMILY) or an
// inet_diag_req (TCPDIAG_GETSOCK).
template <typename Request>
void send_request(int fd, std::uint16_t nlmsg_type, const Request& req, std::uint16_t flags,
                  std::uint32_t seq) {
  struct {
    nlmsghdr nlh;
    Request req;
  } request{};
  static_assert(sizeof(request) == NLMSG_LENGTH(sizeof(Request)));
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = nlmsg_type;
  request.nlh.nlmsg_flags = flags;
  request.nlh.nlmsg_seq = seq;
  request.req = req;

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t sent = ::sendto(fd, &request, sizeof(request), 0,
                            reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
    if (sent >= 0) {
      return;
    }
    if (errno != EINTR) {
      throw_errno(errno, "sock_diag: sendto");
    }
  }
}

// A dump of both families in one walk. Every dump walks the kernel's whole established hash,
// which all namespaces share (most of a sweep's cost on a host with many TIME_WAIT sockets);
// SOCK_DIAG_BY_FAMILY takes one family per walk, while the older TCPDIAG_GETSOCK request dumps
// with AF_UNSPEC, which matches both (inet_diag_dump_compat, there since 2.6).
void send_dump_request(int fd, std::uint32_t seq, const DumpOptions& options) {
  inet_diag_req req{};
  req.idiag_family = AF_INET;  // not read: the compat dump takes every family
  // The default, every bit, also walks request socks (tcp_diag_dump adds TCPF_NEW_SYN_RECV to
  // TCPF_SYN_RECV) and bound-only sockets (TCPF_BOUND_INACTIVE, Linux 6.8+).
  req.idiag_states = options.states;
  req.idiag_ext = options.tcp_info ? 1U << (INET_DIAG_INFO - 1) : 0;
  send_request(fd, TCPDIAG_GETSOCK, req, NLM_F_REQUEST | NLM_F_DUMP, seq);
}

struct NetlinkMessage {
  nlmsghdr header;
  std::span<const std::byte> payload;
};

// Splits the first message off data; nullopt when no whole header is left.
std::optional<NetlinkMessage> next_message(std::span<const std::byte>& data) {
  if (data.size() < sizeof(nlmsghdr)) {
    return std::nullopt;
  }
  const auto header = load<nlmsghdr>(data);
  if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > data.size()) {
    throw_errno(EBADMSG, "sock_diag: malformed netlink message");
  }
  NetlinkMessage message{header, data.subspan(NLMSG_HDRLEN, header.nlmsg_len - NLMSG_HDRLEN)};
  data = data.subspan(std::min<std::size_t>(NLMSG_ALIGN(header.nlmsg_len), data.size()));
  return message;
}

// Appends the entries of one datagram answering request seq; returns true at NLMSG_DONE.
bool parse_datagram(std::span<const std::byte> data, std::uint32_t seq,
                    std::vector<SocketEntry>& out) {
  while (std::optional<NetlinkMessage> message = next_message(data)) {
    const auto& [header, payload] = *message;
    if (header.nlmsg_seq != seq) {
      continue;
    }
    const int status = payload.size() >= sizeof(int) ? load<int>(payload) : 0;
    switch (header.nlmsg_type) {
      case NLMSG_DONE:
        // The dump's final status rides in NLMSG_DONE (netlink_dump_done).
        if (status < 0) {
          throw_errno(-status, "sock_diag: dump failed");
        }
        return true;
      case NLMSG_ERROR:
        if (status != 0) {
          throw_errno(-status, "sock_diag: TCPDIAG_GETSOCK");
        }
        break;
      case TCPDIAG_GETSOCK:
        if (SocketEntry entry; decode_inet_diag_msg(payload, entry)) {
          out.push_back(entry);
        }
        break;
      default:
        break;
    }
  }
  return false;
}

// One datagram from the kernel into buffer; returns its bytes.
std::span<const std::byte> receive_datagram(int fd, std::vector<std::byte>& buffer) {
  for (;;) {
    sockaddr_nl from{};
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t received = ::recvmsg(fd, &msg, 0);
    if (received < 0 && errno == EINTR) {
      continue;
    }
    if (received < 0) {
      throw_errno(errno, "sock_diag: recvmsg");
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
      throw_errno(EMSGSIZE, "sock_diag: recvmsg truncated a reply");
    }
    if (received == 0) {
      throw_errno(ENODATA, "sock_diag: netlink socket closed mid-reply");
    }
    if (from.nl_pid == 0) {
      return {buffer.data(), static_cast<std::size_t>(received)};
    }
  }
}

// Reads the reply to the request numbered seq until NLMSG_DONE, appending to out.
void receive_dump(int fd, std::uint32_t seq, std::vector<std::byte>& buffer,
                  std::vector<SocketEntry>& out) {
  while (!parse_datagram(receive_datagram(fd, buffer), seq, out)) {
  }
}

std::vector<SocketEntry> dump_with(int fd, const DumpOptions& options) {
  std::vector<std::byte> buffer(kRecvBufferSize);
  std::vector<SocketEntry> entries;
  entries.reserve(256);
  constexpr std::uint32_t kSeq = 1;
  send_dump_request(fd, kSeq, options);
  receive_dump(fd, kSeq, buffer, entries);
  return entries;
}

// The kernel's exact lookup (inet_diag_find_one_icsk): by the four-tuple as the socket sees it
// and its cookie, full, timewait or request sock alike. nullopt if no socket has that tuple
// (ENOENT) or another socket has it now (ESTALE).
std::optional<SocketEntry> find_one(int fd, const SocketEntry& wanted, std::uint32_t seq,
                                    std::vector<std::byte>& buffer) {
  inet_diag_req_v2 req{};
  req.sdiag_family = wanted.family == 6 ? AF_INET6 : AF_INET;
  req.sdiag_protocol = IPPROTO_TCP;
  req.id.idiag_sport = htons(wanted.lport);
  req.id.idiag_dport = htons(wanted.rport);
  std::memcpy(req.id.idiag_src, wanted.laddr.bytes.data(), sizeof(req.id.idiag_src));
  std::memcpy(req.id.idiag_dst, wanted.raddr.bytes.data(), sizeof(req.id.idiag_dst));
  req.id.idiag_cookie[0] = static_cast<std::uint32_t>(wanted.cookie);
  req.id.idiag_cookie[1] = static_cast<std::uint32_t>(wanted.cookie >> 32);
  send_request(fd, SOCK_DIAG_BY_FAMILY, req, NLM_F_REQUEST, seq);
  for (;;) {
    std::span<const std::byte> data = receive_datagram(fd, buffer);
    while (std::optional<NetlinkMessage> message = next_message(data)) {
      const auto& [header, payload] = *message;
      if (header.nlmsg_seq != seq) {
        continue;  // a late answer to an earlier request
      }
      const int status = payload.size() >= sizeof(int) ? load<int>(payload) : 0;
      if (header.nlmsg_type == NLMSG_ERROR && (status == -ENOENT || status == -ESTALE)) {
        return std::nullopt;
      }
      if (header.nlmsg_type == NLMSG_ERROR && status != 0) {
        throw_errno(-status, "sock_diag: SOCK_DIAG_BY_FAMILY lookup");
      }
      if (SocketEntry entry;
          header.nlmsg_type == SOCK_DIAG_BY_FAMILY && decode_inet_diag_msg(payload, entry)) {
        return entry;
      }
    }
  }
}

void copy_address(IpAddress& to, std::uint8_t family, const __be32 (&from)[4]) {
  to.family = family;
  to.bytes.fill(0);
  std::memcpy(to.bytes.data(), from, family == 4 ? 4 : 16);
}

}  // namespace

bool decode_inet_diag_msg(std::span<const std::byte> payload, SocketEntry& out) {
  if (payload.size() < sizeof(inet_diag_msg)) {
    return false;
  }
  const auto msg = load<inet_diag_msg>(payload);

  SocketEntry entry;
  entry.family = msg.idiag_family == AF_INET6 ? 6 : 4;
  copy_address(entry.laddr, entry.family, msg.id.idiag_src);
  copy_address(entry.raddr, entry.family, msg.id.idiag_dst);
  entry.lport = ntohs(msg.id.idiag_sport);
  entry.rport = ntohs(msg.id.idiag_dport);
  entry.state = static_cast<TcpState>(msg.idiag_state);
  entry.inode = msg.idiag_inode;
  entry.cookie = msg.id.idiag_cookie[0] | (std::uint64_t{msg.id.idiag_cookie[1]} << 32);
  entry.uid = msg.idiag_uid;
  entry.timer = static_cast<SocketTimer>(msg.idiag_timer);
  entry.timer_retransmits = msg.idiag_retrans;
  entry.expires_ms = msg.idiag_expires;
  entry.recv_q = msg.idiag_rqueue;
  entry.send_q = msg.idiag_wqueue;

  // Only inet_sk_diag_fill (full sockets) emits INET_DIAG_SHUTDOWN, and it always does; the
  // timewait and request fillers emit no attribute but INET_DIAG_MARK. The state alone cannot
  // tell them apart: a timewait sock may report FIN_WAIT2, a TFO child SYN_RECV.
  bool full = false;
  std::size_t offset = NLMSG_ALIGN(sizeof(inet_diag_msg));
  while (offset + NLA_HDRLEN <= payload.size()) {
    const auto attr = load<nlattr>(payload, offset);
    if (attr.nla_len < NLA_HDRLEN || attr.nla_len > payload.size() - offset) {
      break;
    }
    const auto value = payload.subspan(offset + NLA_HDRLEN, attr.nla_len - NLA_HDRLEN);
    switch (attr.nla_type & NLA_TYPE_MASK) {
      case INET_DIAG_SHUTDOWN:
        full = true;
        break;
      case INET_DIAG_INFO: {
        full = true;
        // The kernel's tcp_info may be shorter (older kernel) or longer (newer) than ours.
        tcp_info info{};
        std::memcpy(&info, value.data(), std::min(value.size(), sizeof(info)));
        if (value.size() >= offsetof(tcp_info, tcpi_bytes_received) + sizeof(__u64)) {
          entry.has_info = true;
          entry.bytes_acked = info.tcpi_bytes_acked;
          entry.bytes_received = info.tcpi_bytes_received;
          entry.total_retrans = info.tcpi_total_retrans;
          entry.rtt_us = info.tcpi_rtt;
        }
        break;
      }
      default:
        break;
    }
    offset += NLA_ALIGN(attr.nla_len);
  }

  if (full) {
    entry.kind = SocketKind::kFull;
  } else if (entry.state == TcpState::kSynRecv || entry.state == TcpState::kNewSynRecv) {
    entry.kind = SocketKind::kRequest;
  } else {
    entry.kind = SocketKind::kTimeWait;
  }
  entry.orphan = entry.kind == SocketKind::kFull && entry.inode == 0;
  out = entry;
  return true;
}

std::vector<SocketEntry> dump_tcp_sockets(const DumpOptions& options) {
  UniqueFd fd = open_diag_socket();
  return dump_with(fd.get(), options);
}

std::vector<SocketEntry> dump_tcp_sockets_in_netns(std::uint32_t netns_ino,
                                                   const DumpOptions& options) {
  UniqueFd fd = open_diag_socket_in_netns(netns_ino);
  return dump_with(fd.get(), options);
}

std::vector<SocketEntry> find_tcp_sockets_in_netns(std::uint32_t netns_ino,
                                                   std::span<const SocketEntry> wanted) {
  std::vector<SocketEntry> found;
  if (wanted.empty()) {
    return found;
  }
  UniqueFd fd = open_diag_socket_in_netns(netns_ino);
  std::vector<std::byte> buffer(kRecvBufferSize);
  std::uint32_t seq = 1;
  // One at a time: replies to requests sent ahead could overrun the socket's receive buffer.
  for (const SocketEntry& entry : wanted) {
    if (std::optional<SocketEntry> now = find_one(fd.get(), entry, seq++, buffer)) {
      found.push_back(*now);
    }
  }
  return found;
}

}  // namespace tcptrail::sys
