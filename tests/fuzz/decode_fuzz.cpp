// decode_event on arbitrary ring-buffer bytes: accepts exactly the well-formed records and
// copies every field through.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "fuzz_check.hpp"
#include "tcptrail/decode.hpp"
#include "tcptrail/events.h"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tcptrail;  // NOLINT(google-build-using-namespace)
  DecodeStats stats;
  const auto event = decode_event(std::as_bytes(std::span(data, size)), stats);
  fuzz_check(stats.decoded + stats.rejected == 1);
  fuzz_check(event.has_value() == (stats.decoded == 1));
  if (!event) {
    return 0;
  }
  fuzz_check(size == sizeof(tcptrail_event));
  tcptrail_event raw;
  std::memcpy(&raw, data, sizeof(raw));
  fuzz_check(raw.kind >= TCPTRAIL_EV_STATE && raw.kind <= TCPTRAIL_EV_ERROR);
  fuzz_check(raw.family == 4 || raw.family == 6);
  fuzz_check(static_cast<unsigned>(event->kind) == raw.kind);
  fuzz_check(event->ts_ns == raw.ts_ns && event->sock_cookie == raw.sock_cookie);
  fuzz_check(event->bytes_acked == raw.bytes_acked && event->bytes_received == raw.bytes_received);
  fuzz_check(event->cgroup_id == raw.cgroup_id && event->total_retrans == raw.total_retrans);
  fuzz_check(event->srtt_us == raw.srtt_us && event->detail == raw.detail);
  fuzz_check(event->netns_ino == raw.netns_ino && event->sock_ino == raw.sock_ino);
  fuzz_check(event->lport == raw.sport && event->rport == raw.dport);
  fuzz_check(static_cast<unsigned>(event->old_state) == raw.old_state);
  fuzz_check(static_cast<unsigned>(event->new_state) == raw.new_state);
  fuzz_check(event->flags == raw.flags && event->sk_err == raw.sk_err);
  fuzz_check(event->owner.pid == raw.owner_pid);
  fuzz_check(std::memcmp(event->owner.comm.data(), raw.owner_comm, event->owner.comm.size()) == 0);
  const std::size_t used = raw.family == 4 ? 4 : 16;
  for (const auto* addr : {&event->laddr, &event->raddr}) {
    fuzz_check(addr->family == raw.family);
  }
  fuzz_check(std::memcmp(event->laddr.bytes.data(), raw.saddr, used) == 0);
  fuzz_check(std::memcmp(event->raddr.bytes.data(), raw.daddr, used) == 0);
  for (std::size_t i = used; i < 16; ++i) {
    fuzz_check(event->laddr.bytes[i] == 0 && event->raddr.bytes[i] == 0);
  }
  // The names and address text must be defined for any value that decodes.
  fuzz_check(!state_name(event->old_state).empty() && !state_name(event->new_state).empty());
  fuzz_check(!owner_source_name(event->owner.source).empty());
  fuzz_check(!event->laddr.to_string().empty() && !event->raddr.to_string().empty());
  return 0;
}
