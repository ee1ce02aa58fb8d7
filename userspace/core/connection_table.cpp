#include "tcptrail/connection_table.hpp"

#include <algorithm>
#include <cerrno>

#include "tcptrail/events.h"

namespace tcptrail {

namespace {

bool path_has(const StatePath& path, TcpState state) {
  return std::find(path.states.begin(), path.states.begin() + path.size, state) !=
         path.states.begin() + path.size;
}

bool is_birth(const Event& e) {
  return e.kind == EventKind::kState &&
         (e.new_state == TcpState::kSynSent || (e.flags & TCPTRAIL_F_NEW_CHILD) != 0);
}

void update_from(Connection& conn, const Event& e) {
  if ((e.flags & TCPTRAIL_F_NEW_CHILD) == 0) {
    conn.laddr = e.laddr;
    conn.raddr = e.raddr;
    conn.lport = e.lport;
    conn.rport = e.rport;
    conn.child_pending = false;
  }
  // The owner only improves: a later event may know it when an earlier one did not.
  if (e.owner.known() || !conn.owner.known()) {
    conn.owner = e.owner;
  }
  if (e.sock_cookie != 0) {
    conn.sock_cookie = e.sock_cookie;
  }
  if (e.sock_ino != 0) {
    conn.sock_ino = e.sock_ino;
  }
  conn.netns_ino = e.netns_ino;
  conn.tx_bytes = e.bytes_acked;
  conn.rx_bytes = e.bytes_received;
  conn.retransmits = e.total_retrans;
  if (e.srtt_us != 0) {
    conn.srtt_us = e.srtt_us;
  }
  conn.orphan = (e.flags & TCPTRAIL_F_ORPHAN) != 0;
  if (e.sk_err != 0) {
    conn.error = e.sk_err;
  }
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

ConnectionTable::ConnectionTable(TableConfig config, TableObserver& observer)
    : config_(config), observer_(observer) {
  connections_.reserve(std::min<std::size_t>(config_.max_connections, 4096));
}

const Connection* ConnectionTable::find(std::uint64_t conn_id) const {
  auto it = connections_.find(conn_id);
  return it == connections_.end() ? nullptr : &it->second;
}

void ConnectionTable::for_each(const std::function<void(const Connection&)>& visit) const {
  for (const auto& [id, conn] : connections_) {
    visit(conn);
  }
}

std::uint64_t ConnectionTable::add_preexisting(Connection conn) {
  if (conn.sock_cookie == 0 || preexisting_by_cookie_.contains(conn.sock_cookie)) {
    return 0;
  }
  if (connections_.size() >= config_.max_connections) {
    ++stats_.overflow;
    return 0;
  }
  conn.conn_id = kPreexistingIdBit | conn.sock_cookie;
  conn.preexisting = true;
  if (conn.path.size == 0) {
    conn.path.push(conn.state);
  }
  preexisting_by_cookie_[conn.sock_cookie] = conn.conn_id;
  const std::uint64_t id = conn.conn_id;
  connections_.emplace(id, std::move(conn));
  return id;
}

Connection* ConnectionTable::admit(const Event& e) {
  auto it = connections_.find(e.conn_id);
  if (it != connections_.end()) {
    return &it->second;
  }
  const bool first_seen = (e.flags & TCPTRAIL_F_FIRST_SEEN) != 0;
  if (!is_birth(e) && !first_seen) {
    // Ids are never reused, so this is an event after the connection was reported.
    ++stats_.late;
    return nullptr;
  }
  if (connections_.size() >= config_.max_connections) {
    ++stats_.overflow;
    return nullptr;
  }
  Connection& conn = connections_[e.conn_id];
  conn.conn_id = e.conn_id;
  conn.laddr.family = e.laddr.family;
  conn.raddr.family = e.raddr.family;
  conn.first_ns = e.ts_ns;
  conn.state_since_ns = e.ts_ns;
  conn.preexisting = first_seen;
  conn.child_pending = (e.flags & TCPTRAIL_F_NEW_CHILD) != 0;
  // A socket found mid-life starts its path at the state it was found in; the time it spent
  // there before tracing is unknown and never counted.
  conn.state = e.old_state;
  if (first_seen) {
    conn.path.push(e.old_state);
  }
  return &conn;
}

void ConnectionTable::on_event(const Event& event) {
  if (event.conn_id == 0) {
    ++stats_.untracked;
    return;
  }
  if (!aliases_.empty() || !preexisting_by_cookie_.empty()) {
    if (auto id = preexisting_id(event)) {
      Event aliased = event;
      aliased.conn_id = id;
      aliased.flags &= static_cast<std::uint8_t>(~TCPTRAIL_F_FIRST_SEEN);
      apply_event(aliased);
      return;
    }
  }
  apply_event(event);
}

std::uint64_t ConnectionTable::preexisting_id(const Event& e) {
  if (auto alias = aliases_.find(e.conn_id); alias != aliases_.end()) {
    return alias->second;
  }
  if ((e.flags & TCPTRAIL_F_FIRST_SEEN) != 0 && e.sock_cookie != 0) {
    if (auto p = preexisting_by_cookie_.find(e.sock_cookie); p != preexisting_by_cookie_.end()) {
      const std::uint64_t id = p->second;
      aliases_[e.conn_id] = id;
      preexisting_by_cookie_.erase(p);
      return id;
    }
  }
  return 0;
}

void ConnectionTable::apply_event(const Event& e) {
  // Listening sockets are not connections.
  if (e.kind == EventKind::kState &&
      (e.new_state == TcpState::kListen ||
       (e.old_state == TcpState::kListen && (e.flags & TCPTRAIL_F_NEW_CHILD) == 0))) {
    return;
  }
  Connection* conn = admit(e);
  if (conn == nullptr) {
    return;
  }
  const bool child_was_pending = conn->child_pending;
  update_from(*conn, e);
  if (child_was_pending && !conn->child_pending) {
    // The child's birth was held back until the kernel had set its addresses and ports.
    observer_.on_state_change(*conn, TcpState::kListen, TcpState::kSynRecv, 0, false,
                              conn->first_ns);
  }
  switch (e.kind) {
    case EventKind::kState:
      apply_state(*conn, e);
      break;
    case EventKind::kRetransmit:
      if (conn->state == TcpState::kSynSent) {
        ++conn->syn_retransmits;
      }
      observer_.on_retransmit(*conn, conn->state, e.detail, e.ts_ns);
      break;
    case EventKind::kSynackRetransmit:
      break;
    case EventKind::kResetSent:
      conn->reset_sent = true;
      observer_.on_reset(*conn, ResetDirection::kSent, conn->state, e.ts_ns);
      break;
    case EventKind::kResetReceived:
      conn->reset_received = true;
      observer_.on_reset(*conn, ResetDirection::kReceived, conn->state, e.ts_ns);
      break;
    case EventKind::kError:
      conn->error = static_cast<std::uint16_t>(e.detail);
      break;
  }
}

void ConnectionTable::apply_state(Connection& conn, const Event& e) {
  if (conn.ended()) {
    // The same socket may connect() again after a failed attempt; BPF gives that a new id,
    // so a state change here is a stray: keep the record as it ended.
    ++stats_.late;
    return;
  }
  const TcpState old_state = conn.state;
  const std::uint64_t ns_in_old =
      e.ts_ns >= conn.state_since_ns ? e.ts_ns - conn.state_since_ns : 0;
  // The state a preexisting socket was found in was entered before tracing: its time is unknown.
  const bool accounted = !(conn.preexisting && conn.path.size == 1);
  if (auto index = timed_state_index(old_state); index && accounted) {
    conn.state_ns[*index] += ns_in_old;
  }
  if (e.new_state == TcpState::kSynSent) {
    conn.role = Role::kClient;
  } else if ((e.flags & TCPTRAIL_F_NEW_CHILD) != 0) {
    conn.role = Role::kServer;
  }
  if (e.new_state == TcpState::kEstablished && conn.established_ns == 0) {
    conn.established_ns = e.ts_ns;
    if (old_state == TcpState::kSynSent && !conn.preexisting) {
      conn.handshake_us = static_cast<std::uint32_t>((e.ts_ns - conn.first_ns) / 1000);
      conn.has_handshake = true;
    } else if (old_state == TcpState::kSynRecv) {
      // The child is born on the final ACK: the handshake it saw is the SYN-ACK round trip,
      // which the kernel measured; the request socket's SYN-ACK retransmits became its
      // total_retrans.
      conn.synack_retransmits = e.total_retrans;
      if (e.srtt_us != 0) {
        conn.handshake_us = e.srtt_us;
        conn.has_handshake = true;
      }
    }
  }
  conn.path.push(e.new_state);
  conn.state = e.new_state;
  conn.state_since_ns = e.ts_ns;
  if (!conn.child_pending) {
    observer_.on_state_change(conn, old_state, e.new_state, ns_in_old, accounted, e.ts_ns);
  }
  if (e.new_state == TcpState::kClose) {
    conn.closed_from = old_state;
    conn.end_ns = e.ts_ns;
    // tcp_time_wait() hands the connection to a timewait socket and then closes the full
    // socket: from FIN_WAIT1/FIN_WAIT2/CLOSING without an error that is TIME_WAIT (or, for an
    // orphan whose FIN was acked, the FIN_WAIT2 timewait form).
    conn.time_wait = conn.error == 0 && !conn.reset_received &&
                     (old_state == TcpState::kFinWait1 || old_state == TcpState::kFinWait2 ||
                      old_state == TcpState::kClosing);
    closing_.push_back(conn.conn_id);
  }
}

void ConnectionTable::forget_aliases(const Connection& conn) {
  if ((conn.conn_id & kPreexistingIdBit) == 0) {
    return;
  }
  preexisting_by_cookie_.erase(conn.sock_cookie);
  std::erase_if(aliases_, [&](const auto& alias) { return alias.second == conn.conn_id; });
}

void ConnectionTable::finish(Connection& conn) {
  forget_aliases(conn);
  conn.close = decide_close(conn);
  if (conn.close != CloseKind::kActive && conn.close != CloseKind::kSimultaneous) {
    conn.time_wait = false;
  }
  observer_.on_closed(conn, conn.end_ns);
}

void ConnectionTable::tick(std::uint64_t now_ns) {
  std::size_t done = 0;
  for (; done < closing_.size(); ++done) {
    auto it = connections_.find(closing_[done]);
    if (it == connections_.end()) {
      continue;
    }
    if (it->second.end_ns + config_.close_grace_ns > now_ns) {
      break;  // closing_ is in end order
    }
    finish(it->second);
    connections_.erase(it);
  }
  closing_.erase(closing_.begin(), closing_.begin() + static_cast<std::ptrdiff_t>(done));
}

void ConnectionTable::drain() {
  for (std::uint64_t id : closing_) {
    auto it = connections_.find(id);
    if (it != connections_.end()) {
      finish(it->second);
      connections_.erase(it);
    }
  }
  closing_.clear();
}

}  // namespace tcptrail
