#include "tcptrail/decode.hpp"

#include <cstring>

#include "tcptrail/events.h"

namespace tcptrail {

namespace {

IpAddress address(std::uint8_t family, const __u8 (&bytes)[16]) {
  IpAddress a;
  a.family = family;
  // Fixed sizes: the copies compile to a few moves instead of calls to memcpy and memset.
  std::memcpy(a.bytes.data(), bytes, 16);
  if (family == 4) {
    std::memset(a.bytes.data() + 4, 0, 12);
  }
  return a;
}

Owner owner(const tcptrail_event& raw) {
  Owner o;
  o.pid = raw.owner_pid;
  std::memcpy(o.comm.data(), raw.owner_comm, o.comm.size());
  o.source = raw.owner_source == TCPTRAIL_OWNER_SYSCALL ? static_cast<OwnerSource>(raw.owner_source)
                                                        : OwnerSource::kUnknown;
  return o;
}

}  // namespace

std::optional<Event> decode_event(std::span<const std::byte> bytes, DecodeStats& stats) {
  tcptrail_event raw;
  if (bytes.size() != sizeof(raw)) {
    ++stats.rejected;
    return std::nullopt;
  }
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  if (raw.kind < TCPTRAIL_EV_STATE || raw.kind > TCPTRAIL_EV_ERROR ||
      (raw.family != 4 && raw.family != 6)) {
    ++stats.rejected;
    return std::nullopt;
  }
  ++stats.decoded;
  // Every member named, so the event is built in place without zeroing it first.
  return Event{
      .kind = static_cast<EventKind>(raw.kind),
      .ts_ns = raw.ts_ns,
      .sock_cookie = raw.sock_cookie,
      .bytes_acked = raw.bytes_acked,
      .bytes_received = raw.bytes_received,
      .cgroup_id = raw.cgroup_id,
      .total_retrans = raw.total_retrans,
      .srtt_us = raw.srtt_us,
      .detail = raw.detail,
      .netns_ino = raw.netns_ino,
      .sock_ino = raw.sock_ino,
      .laddr = address(raw.family, raw.saddr),
      .raddr = address(raw.family, raw.daddr),
      .lport = raw.sport,
      .rport = raw.dport,
      .old_state = static_cast<TcpState>(raw.old_state),
      .new_state = static_cast<TcpState>(raw.new_state),
      .flags = raw.flags,
      .sk_err = raw.sk_err,
      .owner = owner(raw),
  };
}

}  // namespace tcptrail
