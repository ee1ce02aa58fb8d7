#include "tcptrail/connection_table.hpp"

#include <cerrno>

#include "tcptrail/close_kind.hpp"
#include "tcptrail/events.h"

namespace tcptrail {

namespace {

// A live socket as one of its events shows it: its lifecycle's identity and owner, the tuple
// and counters at the event.
Connection from_event(const Event& e) {
  Connection conn;
  conn.conn_id = e.conn_id;
  conn.sock_cookie = e.sock_cookie;
  conn.laddr = e.laddr;
  conn.raddr = e.raddr;
  conn.lport = e.lport;
  conn.rport = e.rport;
  conn.owner = e.owner;
  conn.role = e.role;
  conn.netns_ino = e.netns_ino;
  conn.cgroup_id = e.cgroup_id;
  conn.tx_bytes = e.bytes_acked;
  conn.rx_bytes = e.bytes_received;
  conn.retransmits = e.total_retrans;
  conn.srtt_us = e.srtt_us;
  conn.error = e.sk_err;
  conn.state = e.old_state;
  conn.orphan = (e.flags & TCPTRAIL_F_ORPHAN) != 0;
  conn.preexisting = (e.conn_flags & TCPTRAIL_C_PREEXISTING) != 0;
  return conn;
}

}  // namespace

ConnectionTable::ConnectionTable(TableConfig config, LiveConnections& live, TableObserver& observer)
    : config_(config), live_(live), observer_(observer) {}

bool ConnectionTable::add_preexisting(Connection conn) {
  if (conn.sock_cookie == 0) {
    return false;
  }
  conn.preexisting = true;
  if (conn.path.size == 0) {
    conn.path.push(conn.state);
  }
  switch (live_.seed(conn)) {
    case LiveConnections::Seeded::kAdded:
      return true;
    case LiveConnections::Seeded::kFull:
      ++stats_.overflow;
      return false;
    case LiveConnections::Seeded::kKnown:
      break;
  }
  return false;
}

void ConnectionTable::add_listener(std::uint32_t netns_ino, std::uint16_t port,
                                   const Owner& owner) {
  live_.seed_listener(netns_ino, port, owner);
}

void ConnectionTable::on_connection(const Connection& conn) {
  if (closing_head_ == closing_.size()) {
    closing_.clear();
    closing_head_ = 0;
  }
  closing_.push_back(conn);
}

Connection* ConnectionTable::held(std::uint64_t sock_cookie) {
  // Newest first: what follows a CLOSE comes right after it.
  for (std::size_t i = closing_.size(); i > closing_head_; --i) {
    if (closing_[i - 1].sock_cookie == sock_cookie) {
      return &closing_[i - 1];
    }
  }
  return nullptr;
}

void ConnectionTable::on_event(const Event& e) {
  if (e.kind == EventKind::kNetns) {
    return;
  }
  if (e.kind == EventKind::kSynackRetransmit) {
    // The request socket has no lifecycle yet; its child will carry the same cookie and count
    // these in synack_retransmits.
    Connection request = from_event(e);
    request.conn_id = kUntrackedIdBit | e.sock_cookie;
    request.state = TcpState::kSynRecv;
    observer_.on_retransmit(request, TcpState::kSynRecv, e.detail, e.ts_ns);
    return;
  }
  if (e.conn_id == 0) {
    ++stats_.untracked;
    return;
  }
  const bool closing = e.kind == EventKind::kState && e.new_state == TcpState::kClose;
  if ((e.conn_flags & TCPTRAIL_C_CLOSED) != 0 && !closing) {
    // After CLOSE the kernel may still reset the socket (tcp_disconnect zeroes its counters
    // and sets ECONNRESET on an abortive close or a failed connect): what CLOSE saw is the
    // record, and only a reset is added to it.
    Connection* conn = held(e.sock_cookie);
    if (conn == nullptr || conn->conn_id != e.conn_id || e.kind == EventKind::kState) {
      ++stats_.late;
      return;
    }
    if (e.kind == EventKind::kResetSent || e.kind == EventKind::kResetReceived) {
      const bool sent = e.kind == EventKind::kResetSent;
      // Bit-fields: clang cannot assign through a conditional of two of them.
      if (sent) {
        conn->reset_sent = true;
      } else {
        conn->reset_received = true;
      }
      observer_.on_reset(*conn, sent ? ResetDirection::kSent : ResetDirection::kReceived,
                         conn->state, e.ts_ns);
    } else if (e.kind == EventKind::kRetransmit) {
      observer_.on_retransmit(*conn, conn->state, e.detail, e.ts_ns);
    }
    return;
  }
  const Connection conn = from_event(e);
  switch (e.kind) {
    case EventKind::kState:
      // A child's creation, seen by the kernel before its tuple was set, is told by its first
      // change: detail is how long ago it was.
      if (e.old_state == TcpState::kSynRecv && e.detail != 0 && e.detail <= e.ts_ns) {
        observer_.on_state_change(conn, TcpState::kListen, TcpState::kSynRecv, 0, false,
                                  e.ts_ns - e.detail);
      }
      observer_.on_state_change(conn, e.old_state, e.new_state, e.ns_in_old, e.ns_in_old_known,
                                e.ts_ns);
      break;
    case EventKind::kRetransmit:
      observer_.on_retransmit(conn, conn.state, e.detail, e.ts_ns);
      break;
    case EventKind::kResetSent:
      observer_.on_reset(conn, ResetDirection::kSent, conn.state, e.ts_ns);
      break;
    case EventKind::kResetReceived:
      observer_.on_reset(conn, ResetDirection::kReceived, conn.state, e.ts_ns);
      break;
    case EventKind::kError:
    case EventKind::kSynackRetransmit:
    case EventKind::kNetns:
      break;
  }
}

void ConnectionTable::finish(Connection& conn) {
  // tcp_time_wait() hands the connection to a timewait socket and then closes the full
  // socket: from FIN_WAIT1/FIN_WAIT2/CLOSING without an error that is TIME_WAIT (or, for an
  // orphan whose FIN was acked, the FIN_WAIT2 timewait form).
  const TcpState from = conn.closed_from;
  conn.time_wait =
      conn.error == 0 && !conn.reset_received &&
      (from == TcpState::kFinWait1 || from == TcpState::kFinWait2 || from == TcpState::kClosing);
  conn.close = decide_close(conn);
  if (conn.close == CloseKind::kNoPort) {
    conn.error = EADDRNOTAVAIL;  // what connect() returned; the socket itself has no error
  }
  if (conn.close != CloseKind::kActive && conn.close != CloseKind::kSimultaneous) {
    conn.time_wait = false;
  }
  observer_.on_closed(conn, conn.end_ns);
}

void ConnectionTable::tick(std::uint64_t now_ns) {
  while (closing_head_ < closing_.size() &&
         closing_[closing_head_].end_ns + config_.close_grace_ns <= now_ns) {
    finish(closing_[closing_head_++]);
  }
  if (closing_head_ > 0 && closing_head_ * 2 >= closing_.size()) {
    closing_.erase(closing_.begin(), closing_.begin() + static_cast<std::ptrdiff_t>(closing_head_));
    closing_head_ = 0;
  }
}

void ConnectionTable::drain() {
  for (; closing_head_ < closing_.size(); ++closing_head_) {
    finish(closing_[closing_head_]);
  }
  closing_.clear();
  closing_head_ = 0;
}

}  // namespace tcptrail
