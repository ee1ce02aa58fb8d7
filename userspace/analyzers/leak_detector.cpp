#include "analyzers/leak_detector.hpp"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_set>

#include "tcptrail/connection_table.hpp"

namespace tcptrail {

namespace {

std::optional<LeakKind> leak_kind_of(TcpState state) {
  switch (state) {
    case TcpState::kCloseWait:
      return LeakKind::kCloseWait;
    case TcpState::kFinWait2:
      return LeakKind::kFinWait2;
    case TcpState::kSynRecv:
      return LeakKind::kSynRecv;
    default:
      return std::nullopt;
  }
}

Leak make_leak(LeakKind kind, std::uint64_t now_ns, std::uint64_t since_ns,
               std::uint64_t threshold_ns, std::vector<FdOwner> owners) {
  Leak leak;
  leak.kind = kind;
  leak.ts_ns = now_ns;
  leak.age_ns = now_ns > since_ns ? now_ns - since_ns : 0;
  leak.threshold_ns = threshold_ns;
  leak.orphan = owners.empty();
  leak.owners = std::move(owners);
  return leak;
}

TcpState leak_state(LeakKind kind) {
  switch (kind) {
    case LeakKind::kCloseWait:
      return TcpState::kCloseWait;
    case LeakKind::kFinWait2:
      return TcpState::kFinWait2;
    case LeakKind::kSynRecv:
    case LeakKind::kTimeWait:
      break;
  }
  return TcpState::kSynRecv;
}

// Where a closed connection went from `left`: the state its path entered next, CLOSE standing
// for TIME_WAIT when tcp_time_wait() took it on (the full socket closes, its timewait sock goes
// on). A path cut at kMaxPath may have lost the visit: then its last state.
TcpState state_after(const Connection& conn, TcpState left) {
  TcpState next = conn.state;
  for (std::size_t i = conn.path.size; i-- > 1;) {
    if (conn.path.states[i - 1] == left) {
      next = conn.path.states[i];
      break;
    }
  }
  return next == TcpState::kClose && conn.time_wait ? TcpState::kTimeWait : next;
}

bool same_or_wildcard(const IpAddress& listener, const IpAddress& addr) {
  return listener == addr ||
         std::all_of(listener.bytes.begin(), listener.bytes.end(), [](auto b) { return b == 0; });
}

}  // namespace

Owner owner_from_holders(const std::vector<FdOwner>& holders) {
  Owner owner;
  if (holders.empty()) {
    return owner;
  }
  owner.pid = holders.front().pid;
  const std::string& comm = holders.front().comm;
  std::copy_n(comm.begin(), std::min(comm.size(), owner.comm.size()), owner.comm.begin());
  owner.source = OwnerSource::kFdScan;
  return owner;
}

LeakDetector::LeakDetector(LeakConfig config, FdOwnerLookup& lookup, LiveConnections& live,
                           LeakObserver& observer)
    : config_(config), lookup_(lookup), live_(live), observer_(observer),
      ports_(config.ports,
             [this](const TimeWaitPressure& p) { observer_.on_time_wait_pressure(p); }) {}

std::uint64_t LeakDetector::threshold(LeakKind kind) const {
  switch (kind) {
    case LeakKind::kCloseWait:
      return config_.close_wait_ns;
    case LeakKind::kFinWait2:
      return config_.fin_wait2_ns;
    case LeakKind::kSynRecv:
      return config_.syn_recv_ns;
    case LeakKind::kTimeWait:
      break;
  }
  return 0;
}

void LeakDetector::resolve(std::unordered_map<std::uint64_t, Watch>::iterator it,
                           std::uint64_t now_ns, std::optional<TcpState> went_to) {
  Watch& w = it->second;
  if (w.reported) {
    if (went_to) {
      w.conn->state = *went_to;
    }
    Leak leak = make_leak(w.kind, now_ns, w.since_ns, threshold(w.kind), w.owners);
    leak.went_to = went_to;
    observer_.on_leak_resolved(*w.conn, leak);
  }
  watches_.erase(it);
}

void LeakDetector::on_closed(const Connection& conn, std::uint64_t ts_ns) {
  // Port pressure is the namespace's, whoever owns the connection.
  if (conn.time_wait) {
    ports_.on_time_wait(conn);
  }
  auto it = watches_.find(conn.sock_cookie);
  const bool watched = it != watches_.end() && it->second.conn->conn_id == conn.conn_id;
  // An orphan in FIN_WAIT2 whose peer never sent its FIN: tcp_time_wait() hands it to a
  // FIN_WAIT2 timewait socket with the same cookie, and the leak goes on there, as the same
  // connection (its conn_id, owner and role, aged from when it entered FIN_WAIT2).
  if (conn.closed_from == TcpState::kFinWait2 && !conn.peer_fin && conn.error == 0 &&
      !conn.reset_received) {
    Connection carried = conn;
    const std::uint64_t in_fin_wait2 = conn.state_ns[*timed_state_index(TcpState::kFinWait2)];
    carried.state = TcpState::kFinWait2;
    carried.state_since_ns = conn.end_ns >= in_fin_wait2 ? conn.end_ns - in_fin_wait2 : 0;
    carried.orphan = true;
    if (watched) {
      Watch moved = std::move(it->second);
      watches_.erase(it);
      *moved.conn = carried;
      moved.kind = LeakKind::kFinWait2;
      moved.since_ns = carried.state_since_ns;
      requests_.insert_or_assign(conn.sock_cookie, std::move(moved));
      return;
    }
    // A sweep may show the minisock before the record arrives (records wait up to 50 ms in the
    // kernel, and the table's close grace): it is then this connection from now on, unless it
    // was reported already (its leak_resolved names what its leak named).
    if (auto seen = requests_.find(conn.sock_cookie);
        seen != requests_.end() && seen->second.kind == LeakKind::kFinWait2 &&
        !seen->second.reported &&
        (seen->second.conn->conn_id & ConnectionTable::kUntrackedIdBit) != 0) {
      *seen->second.conn = carried;
      seen->second.since_ns = carried.state_since_ns;
      return;
    }
    // Until a sweep shows the minisock; a few sweeps at most, so few are ever remembered.
    constexpr std::uint64_t kHandedForNs = 10'000'000'000;
    constexpr std::size_t kMaxHanded = 1 << 16;
    while (!handed_order_.empty() && (handed_order_.size() >= kMaxHanded ||
                                      handed_order_.front().second + kHandedForNs < ts_ns)) {
      handed_.erase(handed_order_.front().first);
      handed_order_.pop_front();
    }
    handed_.insert_or_assign(conn.sock_cookie, carried);
    handed_order_.emplace_back(conn.sock_cookie, ts_ns);
    return;
  }
  if (watched) {
    *it->second.conn = conn;
    resolve(it, ts_ns, state_after(conn, leak_state(it->second.kind)));
  }
}

void LeakDetector::sweep_held(const SweepDigest& digest, std::uint64_t now_ns) {
  std::unordered_set<std::uint64_t> present;
  for (const Connection& conn : digest.held) {
    const auto kind = leak_kind_of(conn.state);
    if (!kind) {
      continue;
    }
    present.insert(conn.sock_cookie);
    auto it = watches_.find(conn.sock_cookie);
    if (it != watches_.end() && it->second.since_ns != conn.state_since_ns) {
      // It left the state and came back since the last sweep: where it went between is lost.
      resolve(it, now_ns, std::nullopt);
      it = watches_.end();
    }
    if (it == watches_.end()) {
      watches_.emplace(
          conn.sock_cookie,
          Watch{*kind, conn.state_since_ns, false, {}, std::make_unique<Connection>(conn)});
    } else {
      it->second.missed = false;
      if (!it->second.reported) {
        *it->second.conn = conn;
      }
    }
  }
  // What this namespace's sweep no longer shows in a leak state has left it: for the state the
  // kernel's table has it in now, or for CLOSE, which its connection record tells.
  for (auto it = watches_.begin(); it != watches_.end();) {
    auto next = std::next(it);
    Watch& w = it->second;
    if (w.conn->netns_ino == digest.netns_ino && !present.contains(it->first)) {
      const std::optional<Connection> now = live_.find(it->first);
      if (now && now->state != w.conn->state) {
        resolve(it, now_ns, now->state);
      } else if (w.missed) {
        resolve(it, now_ns, std::nullopt);
      } else {
        w.missed = true;
      }
    }
    it = next;
  }
}

void LeakDetector::tick(std::uint64_t now_ns) {
  for (auto it = watches_.begin(); it != watches_.end();) {
    Watch& watch = it->second;
    if (watch.reported || now_ns < watch.since_ns ||
        now_ns - watch.since_ns < threshold(watch.kind) ||
        // The holders must have been read after the socket entered the state, or a
        // descriptor passed on since (to a worker, say) would be missed.
        !lookup_.fresh_since(watch.since_ns)) {
      ++it;
      continue;
    }
    // The last sweep may be up to a second old: only a socket still in the state it was seen
    // in is reported.
    const std::optional<Connection> now = live_.find(it->first);
    if (!now || now->state != watch.conn->state || now->state_since_ns != watch.since_ns) {
      it = watches_.erase(it);
      continue;
    }
    Connection& conn = *watch.conn;
    const std::uint32_t inode =
        conn.sock_ino != 0 ? conn.sock_ino : lookup_.inode_of(it->first, conn.netns_ino);
    watch.owners = inode != 0 ? lookup_.owners(inode) : std::vector<FdOwner>{};
    watch.reported = true;
    observer_.on_leak(
        conn, make_leak(watch.kind, now_ns, watch.since_ns, threshold(watch.kind), watch.owners));
    ++it;
  }
}

SweepDigest digest_sweep(std::uint32_t netns_ino, std::span<const SocketSnapshot> sockets,
                         NamespacePorts ports, std::uint64_t ts_ns, const LiveConnections* live,
                         const std::unordered_set<std::uint64_t>& fin_wait2_before) {
  SweepDigest digest;
  digest.ts_ns = ts_ns;
  digest.netns_ino = netns_ino;
  digest.ports = std::move(ports);
  std::map<std::tuple<IpAddress, IpAddress, std::uint16_t>, DestinationCount> destinations;
  auto destination = [&](const SocketSnapshot& s) -> DestinationCount& {
    DestinationCount& c = destinations[{s.laddr, s.raddr, s.rport}];
    c.laddr = s.laddr;
    c.raddr = s.raddr;
    c.rport = s.rport;
    return c;
  };
  for (const SocketSnapshot& s : sockets) {
    // A port of the range is taken towards the peer by every client socket that still has it,
    // whatever its state (a pool's connection left in CLOSE_WAIT too), and by an orphan in a
    // FIN_WAIT2 timewait socket, which tcp_tw_reuse never takes back (tcp_twsk_unique). A
    // server's children use its service port, outside the range.
    const bool holds_port = (s.kind == SnapshotKind::kFull && s.state != TcpState::kListen &&
                             s.state != TcpState::kClose) ||
                            (s.kind == SnapshotKind::kTimeWait && s.state == TcpState::kFinWait2);
    if (holds_port && digest.ports.ephemeral(s.lport)) {
      ++destination(s).live;
    }
    if (s.kind == SnapshotKind::kRequest ||
        (s.kind == SnapshotKind::kTimeWait && s.state == TcpState::kFinWait2)) {
      digest.minisocks.push_back(s);
    } else if (s.kind == SnapshotKind::kFull && s.state == TcpState::kListen && s.inode != 0) {
      digest.listeners.push_back(s);
    } else if (s.kind == SnapshotKind::kTimeWait && s.state == TcpState::kTimeWait) {
      ++destination(s).time_wait;
      if (fin_wait2_before.contains(s.cookie)) {
        digest.to_time_wait.push_back(s.cookie);
      }
    } else if (s.kind == SnapshotKind::kFull && leak_kind_of(s.state) && live != nullptr) {
      if (std::optional<Connection> conn = live->find(s.cookie)) {
        conn->laddr = s.laddr;
        conn->raddr = s.raddr;
        conn->lport = s.lport;
        conn->rport = s.rport;
        conn->netns_ino = netns_ino;
        if (s.inode != 0) {
          conn->sock_ino = s.inode;
        }
        conn->tx_bytes = s.bytes_acked;
        conn->rx_bytes = s.bytes_received;
        conn->retransmits = s.total_retrans;
        conn->orphan = s.inode == 0;
        digest.held.push_back(*conn);
      }
    }
  }
  digest.destinations.reserve(destinations.size());
  for (const auto& [key, count] : destinations) {
    digest.destinations.push_back(count);
  }
  return digest;
}

void LeakDetector::on_sweep(const SweepDigest& digest, std::uint64_t now_ns, bool at_start) {
  sweep_held(digest, now_ns);
  sweep_minisocks(digest, now_ns, at_start);
  ports_.on_sweep(digest);
}

void LeakDetector::sweep_minisocks(const SweepDigest& digest, std::uint64_t now_ns, bool at_start) {
  for (const SocketSnapshot& s : digest.minisocks) {
    const bool request = s.kind == SnapshotKind::kRequest;
    auto [it, fresh] = requests_.try_emplace(s.cookie);
    Watch& w = it->second;
    if (auto handed = handed_.find(s.cookie); fresh && !request && handed != handed_.end()) {
      w.kind = LeakKind::kFinWait2;
      w.since_ns = handed->second.state_since_ns;
      w.conn = std::make_unique<Connection>(handed->second);
      handed_.erase(handed);
    } else if (fresh) {
      w.kind = request ? LeakKind::kSynRecv : LeakKind::kFinWait2;
      w.since_ns = now_ns;
      w.conn = std::make_unique<Connection>();
      w.conn->conn_id = ConnectionTable::kUntrackedIdBit | s.cookie;
      w.conn->sock_cookie = s.cookie;
      w.conn->laddr = s.laddr;
      w.conn->raddr = s.raddr;
      w.conn->lport = s.lport;
      w.conn->rport = s.rport;
      w.conn->netns_ino = digest.netns_ino;
      w.conn->role = request ? Role::kServer : Role::kUnknown;
      w.conn->state = s.state;
      w.conn->orphan = !request;
      w.conn->first_ns = now_ns;
      w.conn->preexisting = at_start;  // either way its age counts from first sight
    }
    if (!w.reported && now_ns - w.since_ns >= threshold(w.kind) &&
        lookup_.fresh_since(w.since_ns)) {
      report_minisock(w, digest, now_ns);
    }
  }
  resolve_minisocks(digest, now_ns);
}

void LeakDetector::report_minisock(Watch& w, const SweepDigest& digest, std::uint64_t now_ns) {
  // A request socket has no descriptor: whoever holds its listener will accept it.
  if (w.kind == LeakKind::kSynRecv) {
    for (const SocketSnapshot& l : digest.listeners) {
      if (l.lport == w.conn->lport && l.laddr.family == w.conn->laddr.family &&
          same_or_wildcard(l.laddr, w.conn->laddr)) {
        w.owners = lookup_.owners(l.inode);
        break;
      }
    }
  }
  if (!w.owners.empty()) {
    w.conn->owner = owner_from_holders(w.owners);
  }
  w.reported = true;
  Leak leak = make_leak(w.kind, now_ns, w.since_ns, threshold(w.kind), w.owners);
  leak.orphan = w.conn->orphan;  // a request socket was never held: not an orphan
  observer_.on_leak(*w.conn, leak);
}

void LeakDetector::resolve_minisocks(const SweepDigest& digest, std::uint64_t now_ns) {
  std::unordered_set<std::uint64_t> present;
  for (const SocketSnapshot& s : digest.minisocks) {
    present.insert(s.cookie);
  }
  const std::unordered_set<std::uint64_t> timed_wait(digest.to_time_wait.begin(),
                                                     digest.to_time_wait.end());
  for (auto it = requests_.begin(); it != requests_.end();) {
    Watch& w = it->second;
    if (w.conn->netns_ino != digest.netns_ino || present.contains(it->first)) {
      ++it;
      continue;
    }
    if (w.reported) {
      Leak leak = make_leak(w.kind, now_ns, w.since_ns, threshold(w.kind), w.owners);
      leak.orphan = w.conn->orphan;
      // The peer's FIN turns a FIN_WAIT2 timewait sock into TIME_WAIT in place; anything else
      // (its timer, an accepted or dropped request) removes it.
      if (timed_wait.contains(it->first)) {
        leak.went_to = TcpState::kTimeWait;
        w.conn->state = TcpState::kTimeWait;
      }
      observer_.on_leak_resolved(*w.conn, leak);
    }
    it = requests_.erase(it);
  }
}

std::vector<Suspect> LeakDetector::reported(std::uint64_t now_ns) const {
  std::vector<Suspect> out;
  for (const auto* map : {&watches_, &requests_}) {
    for (const auto& [id, w] : *map) {
      if (w.reported) {
        out.push_back(
            {*w.conn, make_leak(w.kind, now_ns, w.since_ns, threshold(w.kind), w.owners)});
      }
    }
  }
  return out;
}

}  // namespace tcptrail
