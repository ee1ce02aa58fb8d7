#include "tcptrail/decode.hpp"

#include <cstring>

#include "tcptrail/events.h"

namespace tcptrail {

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
  Event e;
  e.kind = static_cast<EventKind>(raw.kind);
  e.ts_ns = raw.ts_ns;
  e.conn_id = raw.conn_id;
  e.sock_cookie = raw.sock_cookie;
  e.bytes_acked = raw.bytes_acked;
  e.bytes_received = raw.bytes_received;
  e.total_retrans = raw.total_retrans;
  e.srtt_us = raw.srtt_us;
  e.detail = raw.detail;
  e.netns_ino = raw.netns_ino;
  e.sock_ino = raw.sock_ino;
  e.laddr.family = raw.family;
  e.raddr.family = raw.family;
  std::memcpy(e.laddr.bytes.data(), raw.saddr, raw.family == 4 ? 4 : 16);
  std::memcpy(e.raddr.bytes.data(), raw.daddr, raw.family == 4 ? 4 : 16);
  e.lport = raw.sport;
  e.rport = raw.dport;
  e.old_state = static_cast<TcpState>(raw.old_state);
  e.new_state = static_cast<TcpState>(raw.new_state);
  e.flags = raw.flags;
  e.sk_err = raw.sk_err;
  e.owner.pid = raw.owner_pid;
  std::memcpy(e.owner.comm.data(), raw.owner_comm, e.owner.comm.size());
  e.owner.source = raw.owner_source <= TCPTRAIL_OWNER_LISTENER
                       ? static_cast<OwnerSource>(raw.owner_source)
                       : OwnerSource::kUnknown;
  ++stats.decoded;
  return e;
}

}  // namespace tcptrail
