#include "sinks/json_sink.hpp"

#include <array>
#include <utility>

#include "sinks/format.hpp"
#include "tcptrail/errno_name.hpp"

namespace tcptrail {
namespace {

std::string_view family_name(const IpAddress& address) {
  return address.family == 6 ? "ipv6" : "ipv4";
}

// state_name by the state byte, looked up for every state in every record.
const std::array<std::string_view, 256> kStateNames = [] {
  std::array<std::string_view, 256> names;
  for (std::size_t i = 0; i < names.size(); ++i) {
    names[i] = state_name(static_cast<TcpState>(i));
  }
  return names;
}();

std::string_view state_text(TcpState state) {
  return kStateNames[static_cast<std::uint8_t>(state)];
}

}  // namespace

JsonSink::JsonSink(std::ostream& out, WallClock clock, std::string host)
    : out_(out), clock_(clock), host_(std::move(host)) {
  writer_.reserve(kFlushBytes + 4096);
}

JsonSink::~JsonSink() {
  write_buffer();
}

void JsonSink::put(const StartRecord& record) {
  const StartInfo& info = record.info;
  begin_record("start");
  writer_.key("ts").timestamp(clock_.to_unix_ns(info.ts_ns));
  writer_.key("version").string(info.version);
  writer_.key("kernel").string(info.kernel);
  writer_.key("boot_id").string(info.boot_id);
  writer_.key("options").string(info.options);
  writer_.key("degraded").begin_array();
  for (const std::string& feature : info.degraded) {
    writer_.plain_string(feature);
  }
  writer_.end_array();
  end_record();
}

void JsonSink::put(const ConnectionRecord& record) {
  const auto& [conn, ts_ns, identity] = record;
  begin_record("connection");
  common(conn, ts_ns, identity);
  writer_.key("start");
  if (conn.preexisting) {
    writer_.null();
  } else {
    writer_.timestamp(clock_.to_unix_ns(conn.first_ns));
  }
  writer_.key("preexisting").boolean(conn.preexisting);
  writer_.key("duration_ms");
  if (const auto duration = conn.duration_ns(ts_ns)) {
    writer_.milliseconds(*duration);
  } else {
    writer_.null();
  }
  writer_.key("handshake_ms");
  if (conn.has_handshake) {
    writer_.milliseconds(std::uint64_t{conn.handshake_us} * 1000);
  } else {
    writer_.null();
  }

  // Unless it comes back later, a first state entered at an unknown time has no known time,
  // which is not zero.
  std::array<bool, kTimedStates.size()> visited{};
  for (std::size_t i = conn.first_state_timed ? 0 : 1; i < conn.path.size; ++i) {
    if (const auto index = timed_state_index(conn.path.states[i])) {
      visited[*index] = true;
    }
  }
  writer_.key("states").begin_object();
  for (std::size_t i = 0; i < kTimedStates.size(); ++i) {
    if (conn.state_ns[i] > 0 || visited[i]) {
      writer_.plain_key(state_text(kTimedStates[i])).milliseconds(conn.state_ns[i]);
    }
  }
  writer_.end_object();
  writer_.key("path").begin_array();
  for (std::size_t i = 0; i < conn.path.size; ++i) {
    writer_.plain_string(state_text(conn.path.states[i]));
  }
  writer_.end_array();
  if (conn.path.truncated) {
    writer_.key("path_truncated").boolean(true);
  }

  writer_.key("tx_bytes").number(conn.tx_bytes);
  writer_.key("rx_bytes").number(conn.rx_bytes);
  writer_.key("retransmits").number(conn.retransmits);
  writer_.key("syn_retransmits").number(conn.syn_retransmits);
  writer_.key("synack_retransmits").number(conn.synack_retransmits);
  writer_.key("srtt_us").number(conn.srtt_us);
  writer_.key("close").plain_string(close_kind_name(conn.close));
  writer_.key("error");
  if (conn.error == 0) {
    writer_.null();
  } else if (const std::string_view name = errno_name(conn.error); !name.empty()) {
    writer_.plain_string(name);
  } else {
    char text[8] = {'E'};
    const auto result = std::to_chars(text + 1, text + sizeof(text), conn.error);
    writer_.plain_string(std::string_view(text, static_cast<std::size_t>(result.ptr - text)));
  }
  writer_.key("time_wait").boolean(conn.time_wait).key("orphan").boolean(conn.orphan);
  writer_.key("ppid");
  if (identity.process != nullptr) {
    writer_.number(identity.process->ppid);
  } else {
    writer_.null();
  }
  string_or_null("exe", identity.process != nullptr ? &identity.process->exe : nullptr);
  end_record();
}

void JsonSink::put(const StateRecord& record) {
  const auto& [conn, old_state, new_state, ns_in_old, ns_in_old_known, ts_ns, identity] = record;
  begin_record("state");
  common(conn, ts_ns, identity);
  writer_.key("old").plain_string(state_text(old_state));
  writer_.key("new").plain_string(state_text(new_state));
  writer_.key("ms_in_old");
  if (ns_in_old_known) {
    writer_.milliseconds(ns_in_old);
  } else {
    writer_.null();
  }
  end_record();
}

void JsonSink::put(const RetransmitRecord& record) {
  const auto& [conn, state, segs, ts_ns, identity, count, last_ts_ns] = record;
  begin_record("retransmit");
  common(conn, ts_ns, identity);
  writer_.key("state").plain_string(state_text(state)).key("segs").number(segs);
  writer_.key("count").number(count);
  writer_.key("last_ts").timestamp(clock_.to_unix_ns(record.last_ns()));
  end_record();
}

void JsonSink::put(const ResetRecord& record) {
  const auto& [conn, direction, state, ts_ns, identity] = record;
  begin_record("reset");
  common(conn, ts_ns, identity);
  writer_.key("direction").plain_string(direction == ResetDirection::kSent ? "sent" : "received");
  writer_.key("state").plain_string(state_text(state));
  end_record();
}

void JsonSink::put(const LeakRecord& record) {
  leak_record("leak", record.conn, record.leak, record.identity);
  end_record();
}

void JsonSink::put(const LeakResolvedRecord& record) {
  leak_record("leak_resolved", record.conn, record.leak, record.identity);
  writer_.key("leaked_ms").milliseconds(record.leak.age_ns);
  writer_.key("went_to").plain_string(record.leak.went_to ? state_text(*record.leak.went_to)
                                                          : std::string_view("gone"));
  end_record();
}

void JsonSink::put(const InterimRecord& record) {
  const auto& [conn, state, srtt_us, since_last, total, ts_ns, identity] = record;
  begin_record("interim");
  common(conn, ts_ns, identity);
  writer_.key("preexisting").boolean(conn.preexisting);
  writer_.key("duration_ms");
  if (const auto duration = conn.duration_ns(ts_ns)) {
    writer_.milliseconds(*duration);
  } else {
    writer_.null();
  }
  writer_.key("state").plain_string(state_text(state));
  writer_.key("srtt_us").number(srtt_us);
  writer_.key("tx_bytes").number(since_last.tx_bytes);
  writer_.key("rx_bytes").number(since_last.rx_bytes);
  writer_.key("retransmits").number(since_last.retransmits);
  writer_.key("total_tx_bytes").number(total.tx_bytes);
  writer_.key("total_rx_bytes").number(total.rx_bytes);
  writer_.key("total_retransmits").number(total.retransmits);
  end_record();
}

void JsonSink::put(const TimeWaitPressureRecord& record) {
  const TimeWaitPressure& pressure = record.pressure;
  begin_record("leak");
  writer_.key("kind").plain_string(leak_kind_name(LeakKind::kTimeWait));
  writer_.key("ts").timestamp(clock_.to_unix_ns(pressure.ts_ns));
  address("laddr", pressure.laddr);
  address("raddr", pressure.raddr);
  writer_.key("rport").number(pressure.rport);
  writer_.key("netns").number(pressure.netns_ino);
  writer_.key("netns_name");
  if (pressure.netns_name.empty()) {
    writer_.null();
  } else {
    writer_.string(pressure.netns_name);
  }
  writer_.key("count").number(pressure.count);
  writer_.key("live").number(pressure.live);
  writer_.key("taken").number(pressure.taken);
  writer_.key("port_range").number(pressure.port_range);
  writer_.key("ratio").number(pressure.ratio);
  writer_.key("growth_per_s").number(pressure.growth_per_s);
  writer_.key("exhausted_in_ms");
  if (pressure.exhausted_in_ns) {
    writer_.milliseconds(*pressure.exhausted_in_ns);
  } else {
    writer_.null();
  }
  writer_.key("tw_reuse").number(pressure.tw_reuse);
  writer_.key("reusable").boolean(pressure.reusable);
  end_record();
}

void JsonSink::put(const StopRecord& record) {
  const StopInfo& info = record.info;
  begin_record("stop");
  writer_.key("ts").timestamp(clock_.to_unix_ns(info.ts_ns));
  writer_.key("events").number(info.events);
  writer_.key("lost").number(info.run.lost);
  writer_.key("lost_connections").number(info.run.lost_connections);
  writer_.key("rejected").number(info.rejected);
  writer_.key("connections").number(info.connections);
  writer_.key("live").number(info.live);
  writer_.key("overflow").number(info.overflow);
  writer_.key("sweeps").number(info.run.sweeps);
  writer_.key("longest_sweep_interval_ms").milliseconds(info.run.longest_sweep_interval_ns);
  writer_.key("longest_sweep_ms").milliseconds(info.run.longest_sweep_ns);
  writer_.key("scan_errors").number(info.run.scan_errors);
  writer_.key("longest_ring_pause_ms").milliseconds(info.run.longest_ring_pause_ns);
  writer_.key("identity_late").number(info.identity_late);
  writer_.key("per_process").begin_array();
  for (const ProcessRow& row : info.per_process) {
    writer_.begin_object();
    writer_.key("pid");
    if (row.pid == 0) {
      writer_.null().key("comm").null();
    } else {
      writer_.number(row.pid).key("comm").string(row.comm);
    }
    summary_counts(row.counts);
    writer_.end_object();
  }
  writer_.end_array();
  writer_.key("per_peer").begin_array();
  for (const PeerRow& row : info.per_peer) {
    writer_.begin_object();
    address("addr", row.addr);
    writer_.key("port");
    if (row.port) {
      writer_.number(*row.port);
    } else {
      writer_.null();
    }
    summary_counts(row.counts);
    writer_.end_object();
  }
  writer_.end_array();
  writer_.key("open_leak_count").number(info.open_leak_count);
  writer_.key("open_leaks").begin_array();
  for (const auto& [conn, leak] : info.open_leaks) {
    // Blamed as in its leak record: on the first holder of the descriptor, else the owner.
    const bool held = !leak.owners.empty();
    writer_.begin_object();
    writer_.key("kind").plain_string(leak_kind_name(leak.kind));
    socket_fields(conn, held ? leak.owners.front().pid : conn.owner.pid,
                  held ? std::string_view(leak.owners.front().comm) : conn.owner.comm_view(),
                  held ? OwnerSource::kFdScan : conn.owner.source);
    writer_.key("state").plain_string(state_text(conn.state));
    writer_.key("age_ms").milliseconds(leak.age_ns);
    writer_.key("orphan").boolean(leak.orphan);
    writer_.end_object();
  }
  writer_.end_array();
  end_record();
}

void JsonSink::write(const Record& record) {
  std::visit([this](const auto& r) { put(r); }, record);
}

void JsonSink::flush() {
  write_buffer();
  out_.flush();
}

void JsonSink::begin_record(std::string_view type) {
  writer_.begin_object();
  writer_.key("type").plain_string(type);
  writer_.key("host").string(host_);
}

void JsonSink::string_or_null(JsonKey name, const std::string* text) {
  writer_.key(name);
  if (text == nullptr || text->empty()) {
    writer_.null();
  } else {
    writer_.string(*text);
  }
}

void JsonSink::socket_fields(const Connection& conn, std::uint32_t pid, std::string_view comm,
                             OwnerSource source) {
  writer_.key("conn_id").id(conn.conn_id);
  writer_.key("cookie").id(conn.sock_cookie);
  writer_.key("pid").number(pid);
  writer_.key("comm").string(comm);
  writer_.key("owner_source").plain_string(owner_source_name(source));
  writer_.key("family").plain_string(family_name(conn.laddr));
  address("laddr", conn.laddr);
  writer_.key("lport").number(conn.lport);
  address("raddr", conn.raddr);
  writer_.key("rport").number(conn.rport);
  writer_.key("role").plain_string(role_name(conn.role));
  writer_.key("netns").number(conn.netns_ino);
}

void JsonSink::common(const Connection& conn, std::uint64_t ts_ns, std::uint32_t pid,
                      std::string_view comm, OwnerSource source, const Identity& identity) {
  writer_.key("ts").timestamp(clock_.to_unix_ns(ts_ns));
  socket_fields(conn, pid, comm, source);
  writer_.key("cgroup").number(conn.cgroup_id);
  const CgroupIdentity* cgroup = identity.cgroup;
  string_or_null("cgroup_path", cgroup != nullptr ? &cgroup->path : nullptr);
  string_or_null("container_id", cgroup != nullptr ? &cgroup->container_id : nullptr);
  string_or_null("pod_uid", cgroup != nullptr ? &cgroup->pod_uid : nullptr);
  string_or_null("unit", cgroup != nullptr ? &cgroup->unit : nullptr);
  writer_.key("community_id")
      .plain_string(community_ids_.get(conn.laddr, conn.lport, conn.raddr, conn.rport));
}

void JsonSink::common(const Connection& conn, std::uint64_t ts_ns, const Identity& identity) {
  common(conn, ts_ns, conn.owner.pid, conn.owner.comm_view(), conn.owner.source, identity);
}

void JsonSink::address(JsonKey name, const IpAddress& address) {
  writer_.key(name).address(address);
}

void JsonSink::leak_record(std::string_view type, const Connection& conn, const Leak& leak,
                           const Identity& identity) {
  begin_record(type);
  writer_.key("kind").plain_string(leak_kind_name(leak.kind));
  // The processes found holding the descriptor are the ones to blame, more than whoever
  // created the socket.
  if (leak.owners.empty()) {
    common(conn, leak.ts_ns, identity);
  } else {
    const FdOwner& first = leak.owners.front();
    common(conn, leak.ts_ns, first.pid, first.comm, OwnerSource::kFdScan, identity);
  }
  writer_.key("state").plain_string(state_text(conn.state));
  writer_.key("age_ms").milliseconds(leak.age_ns);
  writer_.key("threshold_ms").milliseconds(leak.threshold_ns);
  writer_.key("orphan").boolean(leak.orphan);
  writer_.key("preexisting").boolean(conn.preexisting);
  writer_.key("owners").begin_array();
  for (const FdOwner& owner : leak.owners) {
    writer_.begin_object();
    writer_.key("pid").number(owner.pid);
    writer_.key("comm").string(owner.comm);
    writer_.key("fd").number(owner.fd);
    writer_.end_object();
  }
  writer_.end_array();
}

void JsonSink::summary_counts(const SummaryCounts& counts) {
  writer_.key("connections").number(counts.connections);
  writer_.key("retransmits").number(counts.retransmits);
  writer_.key("resets").number(counts.resets);
  writer_.key("leaks").number(counts.leaks);
  writer_.key("failed_connects").number(counts.failed_connects);
  writer_.key("closes").begin_object();
  for (std::size_t kind = 0; kind < counts.closes.size(); ++kind) {
    if (counts.closes[kind] != 0) {
      writer_.plain_key(close_kind_name(static_cast<CloseKind>(kind))).number(counts.closes[kind]);
    }
  }
  writer_.end_object();
  for (const auto& [name, value] :
       {std::pair{"lifetime_ms", &counts.lifetime}, std::pair{"handshake_ms", &counts.handshake}}) {
    writer_.plain_key(name);
    if (*value) {
      writer_.begin_object();
      writer_.plain_key("p50").milliseconds((*value)->p50_us * 1000);
      writer_.plain_key("p90").milliseconds((*value)->p90_us * 1000);
      writer_.plain_key("p99").milliseconds((*value)->p99_us * 1000);
      writer_.end_object();
    } else {
      writer_.null();
    }
  }
}

void JsonSink::end_record() {
  writer_.end_object();
  writer_.end_line();
  if (writer_.size() >= kFlushBytes) {
    write_buffer();
  }
}

void JsonSink::write_buffer() {
  if (writer_.size() != 0) {
    out_.write(writer_.text().data(), static_cast<std::streamsize>(writer_.size()));
    writer_.clear();
  }
}

}  // namespace tcptrail
