// Synthetic kernel events for unit tests, with a fake clock in milliseconds.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

#include "tcptrail/event.hpp"
#include "tcptrail/events.h"

namespace tcptrail::testing {

constexpr std::uint64_t kMs = 1'000'000;

inline IpAddress ipv4(const char* text) {
  IpAddress a;
  a.family = 4;
  inet_pton(AF_INET, text, a.bytes.data());
  return a;
}

inline IpAddress ipv6(const char* text) {
  IpAddress a;
  a.family = 6;
  inet_pton(AF_INET6, text, a.bytes.data());
  return a;
}

inline Owner owner(std::uint32_t pid, std::string_view comm,
                   OwnerSource source = OwnerSource::kSyscall) {
  Owner o;
  o.pid = pid;
  std::memcpy(o.comm.data(), comm.data(), std::min(comm.size(), o.comm.size()));
  o.source = source;
  return o;
}

// Builds the events of one socket: each call stamps the time given in ms.
class SocketEvents {
public:
  SocketEvents(std::uint64_t cookie, Owner who, IpAddress local, std::uint16_t lport,
               IpAddress remote, std::uint16_t rport)
      : base_() {
    base_.sock_cookie = cookie;
    base_.owner = who;
    base_.laddr = local;
    base_.raddr = remote;
    base_.lport = lport;
    base_.rport = rport;
    base_.netns_ino = 4026531840u;
  }

  [[nodiscard]] Event state(double at_ms, TcpState from, TcpState to,
                            std::uint8_t flags = 0) const {
    Event e = base_;
    e.kind = EventKind::kState;
    e.ts_ns = static_cast<std::uint64_t>(at_ms * kMs);
    e.old_state = from;
    e.new_state = to;
    e.flags = flags;
    return e;
  }

  [[nodiscard]] Event other(double at_ms, EventKind kind, TcpState in,
                            std::uint32_t detail = 0) const {
    Event e = state(at_ms, in, in);
    e.kind = kind;
    e.detail = detail;
    return e;
  }

  Event& base() { return base_; }

private:
  Event base_;
};

}  // namespace tcptrail::testing
