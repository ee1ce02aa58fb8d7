#include "sinks/metrics_sink.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace tcptrail {
namespace {

// The kinds of socket leaks (TIME_WAIT is a pressure, not a socket leak).
constexpr std::array kLeakKinds = {LeakKind::kCloseWait, LeakKind::kFinWait2, LeakKind::kSynRecv};

// A client that never completed its handshake failed to connect, for the reason its close
// kind names; closing it in SYN_SENT was the application's choice, not a failure.
bool connect_failed(const Connection& conn) {
  return conn.role == Role::kClient && !conn.has_handshake && !conn.preexisting &&
         conn.close != CloseKind::kCanceled && conn.close != CloseKind::kUnknown;
}

void append_number(std::string& out, double value) {
  char text[32];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  out.append(text, result.ptr);
}

void append_number(std::string& out, std::uint64_t value) {
  char text[24];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  out.append(text, result.ptr);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// Most label values are tcptrail's own names and decimal numbers. A unit name comes from a
// cgroup directory, which a local user may name (a delegated subtree): printable ASCII passes,
// quote and backslash are escaped as the format wants, any other byte becomes the text \xNN.
void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(c);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      const auto byte = static_cast<unsigned char>(c);
      out.append("\\\\x").push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
}

// port="...",container="...",unit="..."
void append_workload_labels(std::string& out, std::string_view port, std::string_view container,
                            std::string_view unit) {
  out.append("port=\"").append(port).append("\",container=\"").append(container);
  out.append("\",unit=\"");
  append_label_value(out, unit);
  out.append("\"");
}

template <typename T>
void sample(std::string& out, std::string_view name, std::string_view labels, T value) {
  out.append(name);
  if (!labels.empty()) {
    out.append("{").append(labels).append("}");
  }
  out.append(" ");
  append_number(out, value);
  out.append("\n");
}

template <std::size_t N, std::size_t M>
void histogram(std::string& out, std::string_view name, std::string_view help,
               const Histogram<N>& h, const std::array<double, M>& bounds) {
  static_assert(N == M);
  header(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += h.counts[i];
    std::string le = "le=\"";
    append_number(le, bounds[i]);
    sample(out, bucket, le + "\"", cumulative);
  }
  sample(out, bucket, "le=\"+Inf\"", cumulative + h.counts[N]);
  sample(out, std::string(name) + "_sum", "", h.sum);
  sample(out, std::string(name) + "_count", "", h.count);
}

template <std::size_t N>
void observe(Histogram<N>& h, const std::array<double, N>& bounds, double seconds) {
  std::size_t i = 0;
  while (i < N && seconds > bounds[i]) {
    ++i;
  }
  ++h.counts[i];
  h.sum += seconds;
  ++h.count;
}

}  // namespace

void MetricsSink::write(const Record& record) {
  std::visit([this](const auto& r) { put(r); }, record);
}

std::string MetricsSink::service_port(const Connection& conn) {
  if (conn.role != Role::kServer) {
    return {};
  }
  auto& ports = state_.service_ports;
  if (ports.contains(conn.lport) ||
      (ports.size() < kMaxServicePorts && ports.insert(conn.lport).second)) {
    return std::to_string(conn.lport);
  }
  return "other";
}

MetricsSink::Workload MetricsSink::workload(const Identity& identity) {
  constexpr std::size_t kShownIdDigits = 12;  // as docker ps and crictl ps print it
  Workload w;
  if (identity.cgroup != nullptr) {
    if (!identity.cgroup->container_id.empty()) {
      // A container's unit is its scope, named after the id: the id says it already.
      w.container = identity.cgroup->container_id.substr(0, kShownIdDigits);
    } else {
      w.unit = identity.cgroup->unit;
    }
  }
  auto& workloads = state_.workloads;
  const std::uint64_t seq = ++state_.activity_seq;
  if (const auto it = workloads.find(w); it != workloads.end()) {
    it->second.last_active = seq;
    return w;
  }
  if (workloads.size() == kMaxWorkloads) {
    // The workload idle longest gives up its labels: its counts and open leaks join "other",
    // so every sum over the series stays what it was, and its own series go (Prometheus marks
    // them stale).
    const auto idle =
        std::min_element(workloads.begin(), workloads.end(), [](const auto& a, const auto& b) {
          return a.second.last_active < b.second.last_active;
        });
    const Workload gone = idle->first;
    workloads.erase(idle);
    const Workload other{"other", "other"};
    for (auto it = state_.closed.begin(); it != state_.closed.end();) {
      if (it->first.workload == gone) {
        ClosedKey folded = it->first;
        folded.workload = other;
        state_.closed[folded] += it->second;
        it = state_.closed.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = state_.open_leaks.begin(); it != state_.open_leaks.end();) {
      if (it->first.workload == gone) {
        LeakKey folded = it->first;
        folded.workload = other;
        state_.open_leaks[folded] += it->second;
        it = state_.open_leaks.erase(it);
      } else {
        ++it;
      }
    }
  }
  workloads.emplace(w, Registration{seq, seq});
  return w;
}

void MetricsSink::put(const ConnectionRecord& record) {
  const Connection& conn = record.conn;
  const auto duration = conn.duration_ns(record.ts_ns);
  const std::lock_guard lock(mutex_);
  ++state_.closed[{conn.role, conn.close, service_port(conn), workload(record.identity)}];
  if (connect_failed(conn)) {
    ++state_.connect_failures[conn.close];
  }
  if (duration) {
    observe(state_.duration, kDurationBuckets, static_cast<double>(*duration) / 1e9);
  }
  if (conn.has_handshake) {
    observe(state_.handshake, kHandshakeBuckets, static_cast<double>(conn.handshake_us) / 1e6);
  }
}

void MetricsSink::put(const ResetRecord& record) {
  const std::lock_guard lock(mutex_);
  ++state_.resets[static_cast<std::size_t>(record.direction)];
}

void MetricsSink::put(const RetransmitRecord& record) {
  const std::lock_guard lock(mutex_);
  state_.retransmits += std::uint64_t{record.segs} * record.count;
}

void MetricsSink::put(const LeakRecord& record) {
  if (record.leak.kind == LeakKind::kTimeWait) {
    return;  // a pressure towards a destination, not a socket: local_ports_in_use_ratio
  }
  const std::lock_guard lock(mutex_);
  LeakKey key{record.leak.kind, service_port(record.conn), workload(record.identity)};
  const std::uint64_t registered = state_.workloads.at(key.workload).since;
  ++state_.open_leaks[key];
  OpenLeak& open = leaks_[{record.conn.conn_id, record.leak.kind}];
  if (open.count == 0) {
    open.key = std::move(key);
    open.registered = registered;
  }
  ++open.count;
}

void MetricsSink::put(const LeakResolvedRecord& record) {
  const std::lock_guard lock(mutex_);
  const auto it = leaks_.find({record.conn.conn_id, record.leak.kind});
  if (it == leaks_.end()) {
    return;
  }
  LeakKey key = it->second.key;
  const auto workload = state_.workloads.find(key.workload);
  if (workload == state_.workloads.end() || workload->second.since != it->second.registered) {
    key.workload = {"other", "other"};  // its counts were folded there
  }
  if (const auto series = state_.open_leaks.find(key);
      series != state_.open_leaks.end() && series->second != 0) {
    --series->second;
  }
  if (--it->second.count == 0) {
    leaks_.erase(it);
  }
}

void MetricsSink::put(const TimeWaitPressureRecord& record) {
  const std::lock_guard lock(mutex_);
  // Up at once; the next snapshot (StatsRecord) says what it is then, also when it fell.
  double& ratio = state_.port_ratio[record.pressure.netns_ino];
  ratio = std::max(ratio, record.pressure.ratio);
}

void MetricsSink::put(const StatsRecord& record) {
  const std::lock_guard lock(mutex_);
  state_.events = record.events;
  state_.rejected = record.rejected;
  state_.run = record.run;
  state_.queued_bytes = record.queued_bytes;
  state_.queue_bytes = record.queue_bytes;
  state_.time_wait_sockets = record.time_wait_sockets;
  state_.ring_fill = record.ring_fill;
  state_.port_ratio = record.port_ratios;
}

void MetricsSink::put(const StopRecord& record) {
  const std::lock_guard lock(mutex_);
  state_.events = record.info.events;
  state_.rejected = record.info.rejected;
  state_.run = record.info.run;
}

std::string MetricsSink::render() const {
  State s;
  {
    const std::lock_guard lock(mutex_);
    s = state_;
  }
  std::string out;
  out.reserve(8192);

  header(out, "tcptrail_connections_closed_total", "counter",
         "Connections that reached CLOSE, by role, close kind, local service port, and container "
         "or systemd unit.");
  for (const auto& [key, count] : s.closed) {
    std::string labels = "role=\"";
    labels.append(role_name(key.role)).append("\",close=\"").append(close_kind_name(key.close));
    labels.append("\",");
    append_workload_labels(labels, key.port, key.workload.container, key.workload.unit);
    sample(out, "tcptrail_connections_closed_total", labels, count);
  }
  header(out, "tcptrail_connect_failures_total", "counter",
         "Client connections that closed before their handshake completed, by cause.");
  for (const auto& [cause, count] : s.connect_failures) {
    sample(out, "tcptrail_connect_failures_total",
           "cause=\"" + std::string(close_kind_name(cause)) + "\"", count);
  }
  histogram(out, "tcptrail_connection_duration_seconds",
            "Lifetime of connections that reached CLOSE (preexisting ones excluded).", s.duration,
            kDurationBuckets);
  histogram(out, "tcptrail_handshake_duration_seconds",
            "Time from SYN to ESTABLISHED of connections that completed it.", s.handshake,
            kHandshakeBuckets);
  header(out, "tcptrail_retransmits_total", "counter", "Segments retransmitted.");
  sample(out, "tcptrail_retransmits_total", "", s.retransmits);
  header(out, "tcptrail_resets_total", "counter", "RST segments, sent or received.");
  sample(out, "tcptrail_resets_total", "direction=\"sent\"",
         s.resets[static_cast<std::size_t>(ResetDirection::kSent)]);
  sample(out, "tcptrail_resets_total", "direction=\"received\"",
         s.resets[static_cast<std::size_t>(ResetDirection::kReceived)]);
  header(out, "tcptrail_leaks", "gauge",
         "Sockets reported as leaking (past their state's threshold) and not yet resolved, by "
         "kind, local service port, and container or systemd unit.");
  // Every kind has a series, 0 before its first leak, so a sum over one is never empty.
  for (const LeakKind kind : kLeakKinds) {
    s.open_leaks.try_emplace(LeakKey{kind, "", {}}, 0);
  }
  for (const auto& [key, count] : s.open_leaks) {
    std::string labels = "kind=\"";
    labels.append(leak_kind_name(key.kind)).append("\",");
    append_workload_labels(labels, key.port, key.workload.container, key.workload.unit);
    sample(out, "tcptrail_leaks", labels, count);
  }
  header(out, "tcptrail_time_wait_sockets", "gauge",
         "TIME_WAIT sockets in the namespaces swept, as of each one's latest sweep.");
  sample(out, "tcptrail_time_wait_sockets", "", s.time_wait_sockets);
  header(out, "tcptrail_local_ports_in_use_ratio", "gauge",
         "Share of the local port range taken towards the worst destination, per network "
         "namespace swept.");
  for (const auto& [netns, ratio] : s.port_ratio) {
    std::string labels = "netns=\"";
    append_number(labels, std::uint64_t{netns});
    sample(out, "tcptrail_local_ports_in_use_ratio", labels + "\"", ratio);
  }

  header(out, "tcptrail_events_total", "counter", "Events received from the kernel.");
  sample(out, "tcptrail_events_total", "", s.events);
  header(out, "tcptrail_rejected_events_total", "counter", "Malformed events the decoder refused.");
  sample(out, "tcptrail_rejected_events_total", "", s.rejected);
  header(out, "tcptrail_lost_events_total", "counter",
         "Events the kernel side could not deliver, by reason: a CPU's ring buffer full, a CPU "
         "without a ring (online after the start), a program the kernel skipped because it "
         "already ran on that CPU.");
  sample(out, "tcptrail_lost_events_total", "reason=\"ring_full\"", s.run.lost_ring_full);
  sample(out, "tcptrail_lost_events_total", "reason=\"no_ring\"", s.run.lost_no_ring);
  sample(out, "tcptrail_lost_events_total", "reason=\"program_skipped\"", s.run.lost_skipped);
  header(out, "tcptrail_lost_connection_records_total", "counter",
         "Connection records a full ring buffer could not take: connections that ended "
         "unreported.");
  sample(out, "tcptrail_lost_connection_records_total", "", s.run.lost_connections);
  header(out, "tcptrail_overflow_total", "counter",
         "Sockets born while the kernel's connection table was full: not traced.");
  sample(out, "tcptrail_overflow_total", "", s.run.overflow);
  header(out, "tcptrail_ring_fill_ratio", "gauge",
         "The fullest a CPU's BPF ring buffer was found when drained, over the last second: "
         "records pending over the ring's size.");
  sample(out, "tcptrail_ring_fill_ratio", "", s.ring_fill);
  header(out, "tcptrail_queue_fill_ratio", "gauge",
         "Records drained from the rings and waiting for the collector, as a share of what may "
         "wait.");
  sample(out, "tcptrail_queue_fill_ratio", "",
         s.queue_bytes == 0
             ? 0.0
             : static_cast<double>(s.queued_bytes) / static_cast<double>(s.queue_bytes));
  // A summary without quantiles: the count and the time of all sweeps, whose rates give the
  // mean duration.
  header(out, "tcptrail_sweep_duration_seconds", "summary",
         "Sweeps of the socket tables of every namespace, and the time they took.");
  sample(out, "tcptrail_sweep_duration_seconds_sum", "", static_cast<double>(s.run.sweep_ns) / 1e9);
  sample(out, "tcptrail_sweep_duration_seconds_count", "", s.run.sweeps);
  header(out, "tcptrail_longest_sweep_seconds", "gauge",
         "The longest sweep of every namespace so far.");
  sample(out, "tcptrail_longest_sweep_seconds", "",
         static_cast<double>(s.run.longest_sweep_ns) / 1e9);
  header(out, "tcptrail_scan_errors_total", "counter",
         "Sweeps or /proc scans that failed (they are retried).");
  sample(out, "tcptrail_scan_errors_total", "", s.run.scan_errors);
  return out;
}

}  // namespace tcptrail
