#include "tcptrail/close_kind.hpp"

#include <algorithm>
#include <cerrno>

namespace tcptrail {

namespace {

bool path_has(const StatePath& path, TcpState state) {
  return std::find(path.states.begin(), path.states.begin() + path.size, state) !=
         path.states.begin() + path.size;
}

}  // namespace

CloseKind decide_close(const Connection& conn) {
  const TcpState from = conn.closed_from;
  if (conn.error == ECONNREFUSED || (from == TcpState::kSynSent && conn.reset_received)) {
    return CloseKind::kRefused;
  }
  if (conn.reset_received || conn.error == ECONNRESET || conn.error == EPIPE) {
    return CloseKind::kResetReceived;
  }
  // An ICMP error that the kernel made the socket's error: on a connect (tcp_v4_err in
  // SYN_SENT), or as the soft error tcp_write_err reports instead of ETIMEDOUT.
  if (conn.error == EHOSTUNREACH) {
    return CloseKind::kHostUnreachable;
  }
  if (conn.error == ENETUNREACH) {
    return CloseKind::kNetUnreachable;
  }
  if (conn.error == ETIMEDOUT) {
    return CloseKind::kTimeout;
  }
  if (conn.reset_sent) {
    return CloseKind::kResetSent;
  }
  if (from == TcpState::kSynSent) {
    // tcp_v4_connect/tcp_v6_connect enter SYN_SENT before inet_hash_connect picks the local
    // port; when the search finds none they go back to CLOSE with the port still 0 and no socket
    // error: EADDRNOTAVAIL reaches only the caller. A connect the application gave up on had its
    // port.
    return conn.lport == 0 ? CloseKind::kNoPort : CloseKind::kCanceled;
  }
  if (from == TcpState::kSynRecv) {
    return CloseKind::kAborted;
  }
  if (path_has(conn.path, TcpState::kClosing)) {
    return CloseKind::kSimultaneous;
  }
  if (path_has(conn.path, TcpState::kFinWait1)) {
    return CloseKind::kActive;
  }
  if (path_has(conn.path, TcpState::kCloseWait) || path_has(conn.path, TcpState::kLastAck)) {
    return CloseKind::kPassive;
  }
  return CloseKind::kUnknown;
}

bool failed_connect(const Connection& conn) {
  return conn.closed_from == TcpState::kSynSent;
}

}  // namespace tcptrail
