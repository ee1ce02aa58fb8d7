#include "tcptrail/collector.hpp"

#include <algorithm>

#include "analyzers/summary.hpp"
#include "tcptrail/events.h"

namespace tcptrail {

Collector::Collector(CollectorConfig config, RecordSink& sink, FdOwnerLookup& fd_owners,
                     LiveConnections& live)
    : config_(std::move(config)), sink_(sink), fd_owners_(fd_owners),
      table_(config_.table, live, *this), leaks_(config_.leaks, fd_owners, live, *this),
      retransmits_(config_.retransmit_fold_ns,
                   [this](const RetransmitRecord& record) { sink_.write(record); }),
      summary_(std::make_unique<Summary>()) {}

Collector::~Collector() = default;

void Collector::on_record(std::span<const std::byte> bytes) {
  switch (record_kind(bytes)) {
    case TCPTRAIL_EV_CONNECTION:
      if (auto conn = decode_connection(bytes, decode_stats_)) {
        table_.on_connection(*conn);
      }
      break;
    case TCPTRAIL_EV_CONNECTION_BATCH: {
      const std::span<const std::byte> records = batched_connections(bytes, decode_stats_);
      for (std::size_t at = 0; at < records.size(); at += TCPTRAIL_CONN_RECORD_SIZE) {
        if (auto conn =
                decode_connection(records.subspan(at, TCPTRAIL_CONN_RECORD_SIZE), decode_stats_)) {
          table_.on_connection(*conn);
        }
      }
      break;
    }
    default:
      if (auto event = decode_event(bytes, decode_stats_)) {
        on_decoded(*event);
      }
  }
}

void Collector::on_event(const Event& event) {
  ++decode_stats_.decoded;
  on_decoded(event);
}

void Collector::on_connection(const Connection& conn) {
  ++decode_stats_.decoded;
  table_.on_connection(conn);
}

void Collector::on_decoded(const Event& event) {
  // The kernel names each namespace where sockets are born or listen: those are swept for
  // leaks, TIME_WAIT and half-open sockets.
  if (event.kind == EventKind::kNetns) {
    note_namespace(event.netns_ino);
  }
  table_.on_event(event);
}

void Collector::note_namespace(std::uint32_t netns_ino) {
  if (netns_ino != 0 &&
      std::find(namespaces_.begin(), namespaces_.end(), netns_ino) == namespaces_.end()) {
    namespaces_.push_back(netns_ino);
  }
}

void Collector::tick(std::uint64_t now_ns) {
  table_.tick(now_ns);
  leaks_.tick(now_ns);
  retransmits_.tick(now_ns);
}

Role preexisting_role(const SocketSnapshot& socket, std::span<const std::uint16_t> listening,
                      const NamespacePorts& ports) {
  if (std::find(listening.begin(), listening.end(), socket.lport) != listening.end()) {
    return Role::kServer;
  }
  if (ports.size == 0) {
    return Role::kClient;
  }
  if (ports.ephemeral(socket.lport)) {
    return Role::kClient;
  }
  return ports.ephemeral(socket.rport) ? Role::kServer : Role::kUnknown;
}

void Collector::add_preexisting(std::span<const SocketSnapshot> sockets, std::uint32_t netns_ino,
                                const NamespacePorts& ports, std::uint64_t now_ns) {
  note_namespace(netns_ino);
  // A connection on a port something listens on was accepted there.
  std::vector<std::uint16_t> listening;
  auto holder = [&](std::uint32_t inode) {
    return inode == 0 ? Owner{} : owner_from_holders(fd_owners_.owners(inode));
  };
  for (const SocketSnapshot& s : sockets) {
    if (s.kind == SnapshotKind::kFull && s.state == TcpState::kListen) {
      listening.push_back(s.lport);
      table_.add_listener(netns_ino, s.lport, holder(s.inode));
    }
  }
  for (const SocketSnapshot& s : sockets) {
    // Listeners are not connections; TIME_WAIT and request sockets have no full socket to
    // follow and are counted by the sweeps instead.
    if (s.kind != SnapshotKind::kFull || s.state == TcpState::kListen ||
        s.state == TcpState::kClose) {
      continue;
    }
    Connection conn;
    conn.sock_cookie = s.cookie;
    conn.laddr = s.laddr;
    conn.raddr = s.raddr;
    conn.lport = s.lport;
    conn.rport = s.rport;
    conn.netns_ino = netns_ino;
    conn.sock_ino = s.inode;
    conn.state = s.state;
    conn.first_ns = now_ns;
    conn.state_since_ns = now_ns;
    conn.tx_bytes = s.bytes_acked;
    conn.rx_bytes = s.bytes_received;
    conn.retransmits = s.total_retrans;
    conn.orphan = s.inode == 0;
    conn.role = preexisting_role(s, listening, ports);
    conn.owner = holder(s.inode);
    table_.add_preexisting(conn);
  }
  // After seeding: the sockets in leak states are watched from now.
  leaks_.on_sweep(digest_sweep(netns_ino, sockets, {}, now_ns, &table_.connections()), now_ns,
                  true);
}

void Collector::on_sweep(const SweepDigest& digest, std::uint64_t now_ns) {
  leaks_.on_sweep(digest, now_ns);
}

void Collector::forget_namespace(std::uint32_t netns_ino) {
  std::erase(namespaces_, netns_ino);
  leaks_.forget_namespace(netns_ino);
}

std::vector<Suspect> Collector::suspects(std::uint64_t now_ns) const {
  std::vector<Suspect> all = leaks_.reported(now_ns);
  std::erase_if(all, [this](const Suspect& s) { return !leak_matches(s.conn, s.leak); });
  return all;
}

void Collector::on_state_change(const Connection& conn, TcpState old_state, TcpState new_state,
                                std::uint64_t ns_in_old, bool ns_in_old_known,
                                std::uint64_t ts_ns) {
  if (config_.lifecycle_records && config_.transitions && config_.filter.matches(conn)) {
    retransmits_.flush_connection(conn.conn_id);
    sink_.write(StateRecord{conn, old_state, new_state, ns_in_old, ns_in_old_known, ts_ns});
  }
}

void Collector::on_retransmit(const Connection& conn, TcpState state, std::uint32_t segs,
                              std::uint64_t ts_ns) {
  if (config_.filter.matches(conn)) {
    summary_->count_retransmits(conn, segs);
    if (config_.lifecycle_records) {
      retransmits_.add(conn, state, segs, ts_ns);
    }
  }
}

void Collector::on_reset(const Connection& conn, ResetDirection direction, TcpState state,
                         std::uint64_t ts_ns) {
  if (config_.filter.matches(conn)) {
    summary_->count_reset(conn);
    if (config_.lifecycle_records) {
      retransmits_.flush_connection(conn.conn_id);
      sink_.write(ResetRecord{conn, direction, state, ts_ns});
    }
  }
}

void Collector::on_closed(const Connection& conn, std::uint64_t ts_ns) {
  leaks_.on_closed(conn, ts_ns);
  if (config_.filter.matches(conn)) {
    ++connections_reported_;
    summary_->count_connection(conn);
    if (config_.lifecycle_records) {
      retransmits_.flush_connection(conn.conn_id);
      sink_.write(ConnectionRecord{conn, ts_ns});
    }
  }
}

// A leak belongs to the processes holding the descriptor, not to whoever was on-CPU.
bool Collector::leak_matches(const Connection& conn, const Leak& leak) const {
  const Filter& f = config_.filter;
  if (!f.matches_tuple(conn)) {
    return false;
  }
  if (leak.owners.empty()) {
    return f.matches_owner(conn.owner.pid, conn.owner.comm_view());
  }
  return std::any_of(leak.owners.begin(), leak.owners.end(),
                     [&](const FdOwner& o) { return f.matches_owner(o.pid, o.comm); });
}

void Collector::on_leak(const Connection& conn, const Leak& leak) {
  if (leak_matches(conn, leak)) {
    summary_->count_leak(conn);
    sink_.write(LeakRecord{conn, leak});
  }
}

void Collector::on_leak_resolved(const Connection& conn, const Leak& leak) {
  if (leak_matches(conn, leak)) {
    sink_.write(LeakResolvedRecord{conn, leak});
  }
}

bool Collector::pressure_matches(const TimeWaitPressure& pressure) const {
  Connection probe;
  probe.laddr = pressure.laddr;
  probe.raddr = pressure.raddr;
  probe.rport = pressure.rport;
  return config_.filter.pids.empty() && config_.filter.comms.empty() &&
         config_.filter.matches_tuple(probe);
}

void Collector::on_time_wait_pressure(const TimeWaitPressure& pressure) {
  if (pressure_matches(pressure)) {
    sink_.write(TimeWaitPressureRecord{pressure});
  }
}

std::map<std::uint32_t, double> Collector::port_ratios(std::uint64_t now_ns) const {
  if (config_.filter.filters_identity()) {
    return {};  // a destination's ports belong to no one container or unit
  }
  return leaks_.port_ratios(now_ns,
                            [this](const TimeWaitPressure& p) { return pressure_matches(p); });
}

void Collector::on_interim(const InterimDump& dump) {
  for (const auto& [conn, socket] : dump.samples) {
    if (config_.filter.matches(conn)) {
      const TrafficCounts total = application_traffic(conn, socket);
      sink_.write(InterimRecord{conn, socket.state, socket.srtt_us,
                                interim_.advance(socket.cookie, total), total, dump.ts_ns});
    }
  }
  if (dump.last) {
    interim_.end_dump();
  }
}

void Collector::finish(std::uint64_t now_ns, const RunStats& run) {
  table_.drain();
  retransmits_.flush_all();
  StopInfo info;
  info.ts_ns = now_ns;
  info.events = events();
  info.run = run;
  info.rejected = decode_stats_.rejected;
  info.connections = connections_reported_;
  info.live = table_.live();
  info.overflow = table_.stats().overflow + run.overflow;
  info.per_process = summary_->per_process(config_.summary_rows);
  info.per_peer = summary_->per_peer(config_.summary_rows);
  info.open_leaks = suspects(now_ns);
  info.open_leak_count = info.open_leaks.size();
  std::sort(info.open_leaks.begin(), info.open_leaks.end(),
            [](const Suspect& a, const Suspect& b) { return a.leak.age_ns > b.leak.age_ns; });
  if (info.open_leaks.size() > StopInfo::kStopOpenLeaks) {
    info.open_leaks.resize(StopInfo::kStopOpenLeaks);
  }
  sink_.write(StopRecord{info});
  sink_.flush();
}

}  // namespace tcptrail
