#include "tcptrail/connection_table.hpp"

#include <algorithm>
#include <cerrno>

#include "core/close_kind.hpp"
#include "tcptrail/events.h"

namespace tcptrail {

namespace {

std::uint64_t listener_key(std::uint32_t netns_ino, std::uint16_t port) {
  return (std::uint64_t{netns_ino} << 16) | port;
}

void update_from(Connection& conn, const Event& e) {
  // A failed connect() resets the socket's addresses after CLOSE; keep the tuple it had.
  if (e.rport != 0) {
    conn.laddr = e.laddr;
    conn.raddr = e.raddr;
    conn.lport = e.lport;
    conn.rport = e.rport;
  }
  // Only system calls' transitions name an owner; the others keep the one already known.
  if (e.owner.known()) {
    conn.owner = e.owner;
  }
  if (e.sock_ino != 0) {
    conn.sock_ino = e.sock_ino;
  }
  conn.netns_ino = e.netns_ino;
  if (e.cgroup_id != 0) {
    conn.cgroup_id = e.cgroup_id;
  }
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

ConnectionTable::ConnectionTable(TableConfig config, TableObserver& observer)
    : config_(config), observer_(observer) {
  connections_.reserve(std::min<std::size_t>(config_.max_connections, 4096));
}

const Connection* ConnectionTable::find(std::uint64_t sock_cookie) const {
  return connections_.find(sock_cookie);
}

void ConnectionTable::for_each(const std::function<void(const Connection&)>& visit) const {
  connections_.for_each(visit);
}

bool ConnectionTable::full() const {
  return connections_.size() >= std::min(config_.max_connections, ConnectionStore::kMaxSize);
}

bool ConnectionTable::add_preexisting(Connection conn) {
  if (conn.sock_cookie == 0 || connections_.find(conn.sock_cookie) != nullptr) {
    return false;
  }
  if (full()) {
    ++stats_.overflow;
    return false;
  }
  conn.conn_id = ++last_conn_id_;
  conn.preexisting = true;
  if (conn.path.size == 0) {
    conn.path.push(conn.state);
  }
  connections_.insert(conn.sock_cookie) = conn;
  return true;
}

void ConnectionTable::add_listener(std::uint32_t netns_ino, std::uint16_t port,
                                   const Owner& owner) {
  listeners_.try_emplace(listener_key(netns_ino, port), owner);
}

Owner ConnectionTable::listener_owner(std::uint32_t netns_ino, std::uint16_t port) const {
  auto it = listeners_.find(listener_key(netns_ino, port));
  if (it == listeners_.end()) {
    return {};
  }
  Owner owner = it->second;
  owner.source = OwnerSource::kListener;
  return owner;
}

void ConnectionTable::on_listener(const Event& e) {
  if (e.new_state == TcpState::kListen) {
    listeners_[listener_key(e.netns_ino, e.lport)] = e.owner;
  } else {
    listeners_.erase(listener_key(e.netns_ino, e.lport));
  }
}

Connection* ConnectionTable::admit(const Event& e) {
  if (e.sock_cookie == 0) {
    return nullptr;  // BPF always sets it; 0 is not a key the store can hold
  }
  const TcpState state = e.old_state;
  const bool client_birth = e.kind == EventKind::kState && e.new_state == TcpState::kSynSent;
  // BPF does not report a child's creation (its tuple and cookie are not set yet then), so a
  // server child is first seen leaving SYN_RECV.
  const bool child_birth = e.kind == EventKind::kState && state == TcpState::kSynRecv;
  std::uint64_t conn_id = 0;
  if (Connection* conn = connections_.find(e.sock_cookie)) {
    if (conn->ended() && client_birth) {
      // connect() again on a socket whose earlier attempt failed: a new lifecycle.
      finish_now(e.sock_cookie);
    } else if (conn->preexisting && (client_birth || child_birth)) {
      // Born while the start-up snapshot was read, so found there too; its birth, queued in
      // the rings meanwhile, tells its whole life. It keeps its id.
      conn_id = conn->conn_id;
      connections_.erase(e.sock_cookie);
    } else {
      return conn;
    }
  }
  const bool preexisting = !client_birth && !child_birth && state != TcpState::kClose;
  if (!client_birth && !child_birth && !preexisting) {
    ++stats_.late;  // an event after the connection was reported
    return nullptr;
  }
  if (full()) {
    // Sockets, not events: a socket turned away at birth is counted once.
    if (client_birth || child_birth) {
      ++stats_.overflow;
    }
    return nullptr;
  }
  Connection& conn = connections_.insert(e.sock_cookie);
  conn.conn_id = conn_id != 0 ? conn_id : ++last_conn_id_;
  conn.sock_cookie = e.sock_cookie;
  conn.laddr.family = e.laddr.family;
  conn.raddr.family = e.raddr.family;
  conn.first_ns = e.ts_ns;
  conn.state_since_ns = e.ts_ns;
  conn.preexisting = preexisting;
  conn.state = state;
  if (child_birth) {
    conn.role = Role::kServer;
    conn.owner = listener_owner(e.netns_ino, e.lport);
    conn.path.push(TcpState::kSynRecv);
    // BPF tells how long ago the child was created, when it saw that (see child_births).
    if (e.detail != 0 && e.detail <= e.ts_ns) {
      conn.first_ns = e.ts_ns - e.detail;
      conn.state_since_ns = conn.first_ns;
      conn.first_state_timed = true;
      update_from(conn, e);
      observer_.on_state_change(conn, TcpState::kListen, TcpState::kSynRecv, 0, false,
                                conn.first_ns);
    }
  } else if (client_birth) {
    conn.role = Role::kClient;
    conn.first_state_timed = true;
  } else {
    // Found mid-life: the path starts at the state it was found in, whose time before tracing
    // is unknown and never counted.
    conn.path.push(state);
  }
  return &conn;
}

void ConnectionTable::on_synack_retransmit(const Event& e) {
  // The request socket is not tracked; its child will carry the same cookie and count these
  // in synack_retransmits.
  Connection request;
  request.conn_id = kUntrackedIdBit | e.sock_cookie;
  request.sock_cookie = e.sock_cookie;
  update_from(request, e);
  request.role = Role::kServer;
  request.state = TcpState::kSynRecv;
  request.owner = listener_owner(e.netns_ino, e.lport);
  observer_.on_retransmit(request, TcpState::kSynRecv, e.detail, e.ts_ns);
}

void ConnectionTable::on_event(const Event& e) {
  if (e.kind == EventKind::kState &&
      (e.new_state == TcpState::kListen || e.old_state == TcpState::kListen)) {
    on_listener(e);
    return;
  }
  if (e.kind == EventKind::kSynackRetransmit) {
    on_synack_retransmit(e);
    return;
  }
  Connection* conn = admit(e);
  if (conn == nullptr) {
    return;
  }
  // After CLOSE the kernel may still reset the socket (tcp_disconnect zeroes its counters and
  // sets ECONNRESET on an abortive close or a failed connect): what CLOSE saw is the record.
  if (!conn->ended()) {
    update_from(*conn, e);
  }
  switch (e.kind) {
    case EventKind::kState:
      apply_state(*conn, e);
      break;
    case EventKind::kRetransmit:
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
      if (e.detail != 0 && !conn->ended()) {
        conn->error = static_cast<std::uint16_t>(e.detail);
      }
      break;
  }
}

void ConnectionTable::apply_state(Connection& conn, const Event& e) {
  if (conn.ended()) {
    ++stats_.late;  // the socket is closed; only a new connect() starts it again
    return;
  }
  const TcpState old_state = conn.state;
  // Everything a socket retransmits in SYN_SENT is a SYN: the kernel's own count when it
  // leaves that state is exact, which counting retransmit events would not always be.
  if (old_state == TcpState::kSynSent) {
    conn.syn_retransmits = e.total_retrans;
  }
  const std::uint64_t ns_in_old =
      e.ts_ns >= conn.state_since_ns ? e.ts_ns - conn.state_since_ns : 0;
  const bool accounted = conn.first_state_timed || conn.path.size > 1;
  if (auto index = timed_state_index(old_state); index && accounted) {
    conn.state_ns[*index] += ns_in_old;
  }
  if (e.new_state == TcpState::kEstablished && !conn.established) {
    conn.established = true;
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
  observer_.on_state_change(conn, old_state, e.new_state, ns_in_old, accounted, e.ts_ns);
  if (e.new_state == TcpState::kClose) {
    conn.closed_from = old_state;
    conn.end_ns = e.ts_ns;
    // tcp_time_wait() hands the connection to a timewait socket and then closes the full
    // socket: from FIN_WAIT1/FIN_WAIT2/CLOSING without an error that is TIME_WAIT (or, for an
    // orphan whose FIN was acked, the FIN_WAIT2 timewait form).
    conn.time_wait = conn.error == 0 && !conn.reset_received &&
                     (old_state == TcpState::kFinWait1 || old_state == TcpState::kFinWait2 ||
                      old_state == TcpState::kClosing);
    closing_.push_back(conn.sock_cookie);
  }
}

void ConnectionTable::finish(Connection& conn) {
  conn.close = decide_close(conn);
  if (conn.close == CloseKind::kNoPort) {
    conn.error = EADDRNOTAVAIL;  // what connect() returned; the socket itself has no error
  }
  if (conn.close != CloseKind::kActive && conn.close != CloseKind::kSimultaneous) {
    conn.time_wait = false;
  }
  observer_.on_closed(conn, conn.end_ns);
}

void ConnectionTable::finish_now(std::uint64_t sock_cookie) {
  if (Connection* conn = connections_.find(sock_cookie)) {
    finish(*conn);
    connections_.erase(sock_cookie);
  }
  std::erase(closing_, sock_cookie);
}

void ConnectionTable::tick(std::uint64_t now_ns) {
  std::size_t done = 0;
  for (; done < closing_.size(); ++done) {
    Connection* conn = connections_.find(closing_[done]);
    if (conn == nullptr) {
      continue;
    }
    if (conn->end_ns + config_.close_grace_ns > now_ns) {
      break;  // closing_ is in end order
    }
    finish(*conn);
    connections_.erase(closing_[done]);
  }
  closing_.erase(closing_.begin(), closing_.begin() + static_cast<std::ptrdiff_t>(done));
}

void ConnectionTable::drain() {
  for (std::uint64_t id : closing_) {
    if (Connection* conn = connections_.find(id)) {
      finish(*conn);
      connections_.erase(id);
    }
  }
  closing_.clear();
}

}  // namespace tcptrail
