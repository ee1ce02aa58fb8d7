// The decoder on arbitrary ring-buffer bytes, dispatched by kind as the collector does:
// accepts exactly the well-formed records and copies every field through.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "fuzz_check.hpp"
#include "tcptrail/decode.hpp"
#include "tcptrail/events.h"

namespace {

using namespace tcptrail;  // NOLINT(google-build-using-namespace)

void check_addresses(std::uint8_t family, const IpAddress& laddr, const IpAddress& raddr,
                     const tcptrail_sock& sk) {
  const std::size_t used = family == 4 ? 4 : 16;
  fuzz_check(laddr.family == family && raddr.family == family);
  fuzz_check(std::memcmp(laddr.bytes.data(), sk.saddr, used) == 0);
  fuzz_check(std::memcmp(raddr.bytes.data(), sk.daddr, used) == 0);
  for (std::size_t i = used; i < 16; ++i) {
    fuzz_check(laddr.bytes[i] == 0 && raddr.bytes[i] == 0);
  }
  // The address text must be defined for any value that decodes.
  fuzz_check(!laddr.to_string().empty() && !raddr.to_string().empty());
}

void check_event(std::span<const std::byte> bytes) {
  DecodeStats stats;
  const auto event = decode_event(bytes, stats);
  fuzz_check(stats.decoded + stats.rejected == 1);
  fuzz_check(event.has_value() == (stats.decoded == 1));
  if (!event) {
    return;
  }
  fuzz_check(bytes.size() == sizeof(tcptrail_event));
  tcptrail_event raw;
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  fuzz_check(raw.hdr.kind >= TCPTRAIL_EV_STATE && raw.hdr.kind <= TCPTRAIL_EV_NETNS);
  fuzz_check(raw.hdr.family == 4 || raw.hdr.family == 6);
  fuzz_check(static_cast<unsigned>(event->kind) == raw.hdr.kind);
  // A reset that waited in the kernel for its holder's close() carries the wait in detail.
  const bool waited = raw.hdr.kind == TCPTRAIL_EV_RESET_RECEIVED && raw.detail <= raw.hdr.ts_ns;
  fuzz_check(event->ts_ns == (waited ? raw.hdr.ts_ns - raw.detail : raw.hdr.ts_ns) &&
             event->sock_cookie == raw.sk.sock_cookie);
  fuzz_check(event->bytes_acked == raw.sk.bytes_acked &&
             event->bytes_received == raw.sk.bytes_received);
  fuzz_check(event->cgroup_id == raw.sk.cgroup_id && event->total_retrans == raw.sk.total_retrans);
  fuzz_check(event->srtt_us == raw.sk.srtt_us && event->detail == raw.detail);
  fuzz_check(event->netns_ino == raw.sk.netns_ino && event->conn_id == raw.conn_id);
  fuzz_check(event->lport == raw.sk.sport && event->rport == raw.sk.dport);
  fuzz_check(static_cast<unsigned>(event->old_state) == raw.old_state);
  fuzz_check(static_cast<unsigned>(event->new_state) == raw.new_state);
  fuzz_check(event->flags == raw.sk.flags && event->sk_err == raw.sk.sk_err);
  fuzz_check(event->owner.pid == raw.owner_pid);
  fuzz_check(std::memcmp(event->owner.comm.data(), raw.owner_comm, event->owner.comm.size()) == 0);
  fuzz_check(!state_name(event->old_state).empty() && !state_name(event->new_state).empty());
  fuzz_check(!owner_source_name(event->owner.source).empty());
  fuzz_check(!role_name(event->role).empty());
  check_addresses(raw.hdr.family, event->laddr, event->raddr, raw.sk);
}

void check_connection(std::span<const std::byte> bytes) {
  DecodeStats stats;
  const auto conn = decode_connection(bytes, stats);
  fuzz_check(stats.decoded + stats.rejected == 1);
  fuzz_check(conn.has_value() == (stats.decoded == 1));
  if (!conn) {
    return;
  }
  fuzz_check(bytes.size() == sizeof(tcptrail_conn_record));
  tcptrail_conn_record raw;
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  fuzz_check(conn->conn_id == raw.conn.conn_id && conn->conn_id != 0);
  fuzz_check(conn->sock_cookie == raw.sk.sock_cookie);
  fuzz_check(conn->path.size == (raw.conn.path_len & ~TCPTRAIL_PATH_TRUNCATED));
  fuzz_check(conn->path.size <= StatePath::kMaxPath);
  for (std::size_t i = 0; i < conn->path.size; ++i) {
    fuzz_check(static_cast<unsigned>(conn->path.states[i]) == raw.conn.path[i]);
    fuzz_check(!state_name(conn->path.states[i]).empty());
  }
  fuzz_check(conn->error == (raw.conn.error != 0 ? raw.conn.error : raw.sk.sk_err));
  fuzz_check(!role_name(conn->role).empty() && !owner_source_name(conn->owner.source).empty());
  check_addresses(raw.hdr.family, conn->laddr, conn->raddr, raw.sk);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  if (tcptrail::record_kind(bytes) == TCPTRAIL_EV_CONNECTION) {
    check_connection(bytes);
  } else if (tcptrail::record_kind(bytes) == TCPTRAIL_EV_CONNECTION_BATCH) {
    tcptrail::DecodeStats stats;
    const auto records = tcptrail::batched_connections(bytes, stats);
    fuzz_check(records.size() % TCPTRAIL_CONN_RECORD_SIZE == 0 &&
               records.size() <= std::size_t{TCPTRAIL_BATCH_MAX} * TCPTRAIL_CONN_RECORD_SIZE);
    fuzz_check(records.empty() == (stats.rejected == 1));
    for (std::size_t at = 0; at < records.size(); at += TCPTRAIL_CONN_RECORD_SIZE) {
      check_connection(records.subspan(at, TCPTRAIL_CONN_RECORD_SIZE));
    }
  } else {
    check_event(bytes);
  }
  return 0;
}
