#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "tcptrail/connection.hpp"
#include "tcptrail/event.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

std::string_view state_name(TcpState state) {
  switch (state) {
    case TcpState::kEstablished:
      return "ESTABLISHED";
    case TcpState::kSynSent:
      return "SYN_SENT";
    case TcpState::kSynRecv:
      return "SYN_RECV";
    case TcpState::kFinWait1:
      return "FIN_WAIT1";
    case TcpState::kFinWait2:
      return "FIN_WAIT2";
    case TcpState::kTimeWait:
      return "TIME_WAIT";
    case TcpState::kClose:
      return "CLOSE";
    case TcpState::kCloseWait:
      return "CLOSE_WAIT";
    case TcpState::kLastAck:
      return "LAST_ACK";
    case TcpState::kListen:
      return "LISTEN";
    case TcpState::kClosing:
      return "CLOSING";
    case TcpState::kNewSynRecv:
      return "NEW_SYN_RECV";
    case TcpState::kBoundInactive:
      return "BOUND_INACTIVE";
  }
  return "UNKNOWN";
}

std::string_view owner_source_name(OwnerSource source) {
  switch (source) {
    case OwnerSource::kUnknown:
      return "unknown";
    case OwnerSource::kSyscall:
      return "syscall";
    case OwnerSource::kListener:
      return "listener";
    case OwnerSource::kFdScan:
      return "fd_scan";
    case OwnerSource::kAcceptor:
      return "acceptor";
  }
  return "unknown";
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kUnknown:
      return "unknown";
    case Role::kClient:
      return "client";
    case Role::kServer:
      return "server";
  }
  return "unknown";
}

std::string_view close_kind_name(CloseKind kind) {
  switch (kind) {
    case CloseKind::kUnknown:
      return "unknown";
    case CloseKind::kActive:
      return "active";
    case CloseKind::kPassive:
      return "passive";
    case CloseKind::kSimultaneous:
      return "simultaneous";
    case CloseKind::kResetSent:
      return "reset_sent";
    case CloseKind::kResetReceived:
      return "reset_received";
    case CloseKind::kRefused:
      return "refused";
    case CloseKind::kTimeout:
      return "timeout";
    case CloseKind::kAborted:
      return "aborted";
    case CloseKind::kNoPort:
      return "no_port";
    case CloseKind::kHostUnreachable:
      return "host_unreachable";
    case CloseKind::kNetUnreachable:
      return "net_unreachable";
    case CloseKind::kCanceled:
      return "canceled";
  }
  return "unknown";
}

std::string_view leak_kind_name(LeakKind kind) {
  switch (kind) {
    case LeakKind::kCloseWait:
      return "close_wait";
    case LeakKind::kFinWait2:
      return "fin_wait2";
    case LeakKind::kSynRecv:
      return "syn_recv";
    case LeakKind::kTimeWait:
      return "time_wait";
  }
  return "unknown";
}

std::string IpAddress::to_string() const {
  char text[INET6_ADDRSTRLEN];
  const int af = family == 6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, bytes.data(), text, sizeof(text)) == nullptr) {
    return {};
  }
  return text;
}

IpAddress IpAddress::unmapped() const {
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family != 6 || !std::equal(kMappedPrefix, kMappedPrefix + 12, bytes.begin())) {
    return *this;
  }
  IpAddress v4;
  v4.family = 4;
  std::copy(bytes.begin() + 12, bytes.end(), v4.bytes.begin());
  return v4;
}

std::string_view Owner::comm_view() const {
  return {comm.data(), strnlen(comm.data(), comm.size())};
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

WallClock WallClock::system() {
  timespec mono_before{};
  timespec real{};
  timespec mono_after{};
  clock_gettime(CLOCK_MONOTONIC, &mono_before);
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono_after);
  auto ns = [](const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
  };
  // The realtime read lies between the two monotonic reads; their midpoint halves the error.
  const std::int64_t mono = ns(mono_before) + (ns(mono_after) - ns(mono_before)) / 2;
  return WallClock{ns(real) - mono};
}

void StatePath::push(TcpState state) {
  if (size < kMaxPath) {
    states[size++] = state;
  } else {
    truncated = true;
  }
}

std::optional<std::uint64_t> Connection::duration_ns(std::uint64_t now_ns) const {
  if (preexisting) {
    return std::nullopt;
  }
  const std::uint64_t end = end_ns != 0 ? end_ns : now_ns;
  return end >= first_ns ? end - first_ns : 0;
}

}  // namespace tcptrail
