#include "core/close_kind.hpp"

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
  if (conn.error == ETIMEDOUT) {
    return CloseKind::kTimeout;
  }
  if (conn.reset_sent) {
    return CloseKind::kResetSent;
  }
  if (from == TcpState::kSynSent || from == TcpState::kSynRecv) {
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

}  // namespace tcptrail
