// The records tcptrail emits, and the interface every sink implements. Times given to sinks
// are CLOCK_MONOTONIC nanoseconds; a sink turns them into wall-clock time with WallClock.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/identity.hpp"

namespace tcptrail {

// Maps CLOCK_MONOTONIC to CLOCK_REALTIME by a fixed offset taken once at start.
struct WallClock {
  std::int64_t offset_ns = 0;  // realtime - monotonic
  [[nodiscard]] std::int64_t to_unix_ns(std::uint64_t monotonic_ns) const {
    return static_cast<std::int64_t>(monotonic_ns) + offset_ns;
  }
  static WallClock system();
};

// CLOCK_MONOTONIC now, in ns: the clock of bpf_ktime_get_ns() and of every time in records.
std::uint64_t monotonic_ns();

struct StartInfo {
  std::string version;
  std::string kernel;                 // uname -r
  std::string options;                // the command line options, as given
  std::uint64_t ts_ns = 0;            // monotonic
  std::vector<std::string> degraded;  // features lost to missing capabilities ("netns", ...)
  std::string boot_id{};              // /proc/sys/kernel/random/boot_id, "" if unreadable
};

// What a summary counts for one process or one peer, of the records that passed the filters.
// Of durations in microseconds, each within 12.5% of the sample it names (a log-bucketed
// histogram: see analyzers/duration_histogram.hpp).
struct Percentiles {
  std::uint64_t p50_us = 0;
  std::uint64_t p90_us = 0;
  std::uint64_t p99_us = 0;
  bool operator==(const Percentiles&) const = default;
};

struct SummaryCounts {
  std::uint64_t connections = 0;
  std::uint64_t retransmits = 0;  // segments
  std::uint64_t resets = 0;
  std::uint64_t leaks = 0;
  std::uint64_t failed_connects = 0;                    // connections that left SYN_SENT for CLOSE
  std::array<std::uint64_t, kCloseKindCount> closes{};  // connections by CloseKind
  // Of the connections that reached ESTABLISHED and whose birth was seen; nullopt without one.
  std::optional<Percentiles> lifetime;
  std::optional<Percentiles> handshake;  // of the connections whose handshake was timed
};

// pid 0: the connections no process was known to own (comm empty).
struct ProcessRow {
  std::uint32_t pid = 0;
  std::string comm;
  SummaryCounts counts;
};

// A service a client connected to (port set), or a host that connected to a server (its ports
// are ephemeral: not kept).
struct PeerRow {
  IpAddress addr;
  std::optional<std::uint16_t> port;
  SummaryCounts counts;
};

// What the run loop counts outside the collector: losses on the kernel side, and how steadily
// the rings were drained and the socket tables swept.
struct RunStats {
  std::uint64_t lost = 0;              // events the kernel side could not queue or deliver
  std::uint64_t lost_connections = 0;  // connection records among them
  // lost by reason, adding up to it: a CPU's ring full (lost_connections among them), a CPU
  // without a ring (it came online after the start), a program the kernel skipped (it fired
  // while already running on that CPU: bpf_trace_run's recursion check).
  std::uint64_t lost_ring_full = 0;
  std::uint64_t lost_no_ring = 0;
  std::uint64_t lost_skipped = 0;
  std::uint64_t overflow = 0;  // sockets born while the kernel's table was full: not traced
  std::uint64_t sweeps = 0;
  std::uint64_t longest_sweep_interval_ns = 0;  // between the starts of two sweeps
  std::uint64_t longest_sweep_ns = 0;           // one sweep of every namespace
  std::uint64_t sweep_ns = 0;                   // all sweeps together
  std::uint64_t scan_errors = 0;  // sweeps or /proc scans that failed (they are retried)
  // The longest stretch the ring thread spent between two drains of the rings.
  std::uint64_t longest_ring_pause_ns = 0;
};

enum class ResetDirection : std::uint8_t { kSent, kReceived };

// A socket in a suspicious state past its threshold, or the end of one.
enum class LeakKind : std::uint8_t { kCloseWait, kFinWait2, kSynRecv, kTimeWait };
std::string_view leak_kind_name(LeakKind kind);

struct FdOwner {
  std::uint32_t pid = 0;
  std::string comm;
  int fd = -1;
};

struct Leak {
  LeakKind kind = LeakKind::kCloseWait;
  std::uint64_t ts_ns = 0;   // monotonic
  std::uint64_t age_ns = 0;  // time in the state so far (leaked time when resolved)
  std::uint64_t threshold_ns = 0;
  bool orphan = false;
  std::vector<FdOwner> owners;  // processes holding the descriptor
  // leak_resolved: the state the socket left the leak for; nullopt when it vanished from the
  // socket table without a transition being seen ("gone").
  std::optional<TcpState> went_to;
};

// A leak reported and not yet resolved: for live views and the stop record.
struct Suspect {
  Connection conn;  // a copy as of the last report
  Leak leak;        // aged as of when it was asked for
};

struct StopInfo {
  std::uint64_t ts_ns = 0;   // monotonic
  std::uint64_t events = 0;  // events received from the kernel
  RunStats run;
  std::uint64_t rejected = 0;     // malformed events the decoder refused
  std::uint64_t connections = 0;  // connection records emitted
  std::uint64_t live = 0;         // connections still open at exit
  std::uint64_t overflow = 0;     // connections not tracked because the table was full
  std::vector<ProcessRow> per_process;
  std::vector<PeerRow> per_peer;
  // Leaks reported and not resolved at exit that pass the filters, oldest first, at most
  // kStopOpenLeaks of them; open_leak_count says how many there were.
  static constexpr std::size_t kStopOpenLeaks = 100;
  std::vector<Suspect> open_leaks;
  std::uint64_t open_leak_count = 0;
  // Records written before their identity was resolved (IdentityStage); set by that stage.
  std::uint64_t identity_late = 0;
};

// Local ports towards one destination (namespace, local address, remote address and port)
// running out: how many are taken, against the namespace's range, and how soon none is left.
struct TimeWaitPressure {
  std::uint64_t ts_ns = 0;
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t rport = 0;
  std::uint32_t netns_ino = 0;
  std::string netns_name;                        // under /run/netns, "" if none
  std::uint32_t count = 0;                       // TIME_WAIT sockets towards it
  std::uint32_t live = 0;                        // connections towards it from a port of the range
  std::uint32_t taken = 0;                       // ports connect() cannot use towards it now
  std::uint32_t port_range = 0;                  // size of ip_local_port_range in that namespace
  double ratio = 0;                              // taken / port_range
  double growth_per_s = 0;                       // of taken
  std::optional<std::uint64_t> exhausted_in_ns;  // at that growth; nullopt if not growing
  std::uint8_t tw_reuse = 0;                     // the namespace's net.ipv4.tcp_tw_reuse
  bool reusable = false;  // connect() may take TIME_WAIT ports back towards it (tcp_tw_reuse)
};

// The records, as one type every sink takes. Each refers to data owned by the caller and valid
// only during the write() call: the connection record path runs at ~100k/s and copies nothing.
// Records about a socket carry its Identity, filled in by the identity stage before the sinks
// (null until then: not known).
struct StartRecord {
  const StartInfo& info;
};
// A full socket reached CLOSE (its lifecycle record).
struct ConnectionRecord {
  const Connection& conn;
  std::uint64_t ts_ns;
  Identity identity{};
};
struct StateRecord {
  const Connection& conn;
  TcpState old_state;
  TcpState new_state;
  std::uint64_t ns_in_old;
  bool ns_in_old_known;
  std::uint64_t ts_ns;
  Identity identity{};
};
// With --retransmits, `count` identical ones of the connection within a second, from ts_ns (the
// first) to last_ts_ns (the last); otherwise count 1 and last_ts_ns 0.
struct RetransmitRecord {
  const Connection& conn;
  TcpState state;
  std::uint32_t segs;  // of each
  std::uint64_t ts_ns;
  Identity identity{};
  std::uint32_t count = 1;
  std::uint64_t last_ts_ns = 0;
  [[nodiscard]] std::uint64_t last_ns() const { return count > 1 ? last_ts_ns : ts_ns; }
};
struct ResetRecord {
  const Connection& conn;
  ResetDirection direction;
  TcpState state;
  std::uint64_t ts_ns;
  Identity identity{};
};
struct LeakRecord {
  const Connection& conn;
  const Leak& leak;
  Identity identity{};
};
struct LeakResolvedRecord {
  const Connection& conn;
  const Leak& leak;
  Identity identity{};
};
struct TimeWaitPressureRecord {
  const TimeWaitPressure& pressure;
};
// The application's bytes and the segments retransmitted, as connection records count them.
struct TrafficCounts {
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t retransmits = 0;
  bool operator==(const TrafficCounts&) const = default;
};
// An open connection every --interim period: its counters since its last interim record (since
// it began, for its first) and in all, from the kernel's socket table at ts_ns. conn carries the
// socket's tuple and the lifecycle the kernel folds so far.
struct InterimRecord {
  const Connection& conn;
  TcpState state;
  std::uint32_t srtt_us;
  TrafficCounts since_last;
  TrafficCounts total;
  std::uint64_t ts_ns;
  Identity identity{};
};
struct StopRecord {
  const StopInfo& info;
};
// The run's counters while tracing, at a fixed cadence (every second): for sinks that show them
// live (metrics). The NDJSON and text sinks ignore it; the stop record has the final values.
struct StatsRecord {
  std::uint64_t ts_ns;     // monotonic
  std::uint64_t events;    // events received from the kernel
  std::uint64_t rejected;  // malformed events the decoder refused
  const RunStats& run;
  std::uint64_t queued_bytes;  // records drained from the rings, waiting for the collector
  std::uint64_t queue_bytes;   // what may wait at most
  // TIME_WAIT sockets in the namespaces swept last, per namespace as of its latest sweep that
  // counted them.
  std::uint64_t time_wait_sockets;
  // The fullest a CPU's BPF ring buffer was found when drained since the last stats record
  // (0 to 1): records pending over the ring's size.
  double ring_fill;
  // Per swept network namespace, the share of its local port range taken towards its worst
  // destination (0 to 1), of the destinations the filters let through.
  std::map<std::uint32_t, double> port_ratios{};
};
using Record = std::variant<StartRecord, ConnectionRecord, StateRecord, RetransmitRecord,
                            ResetRecord, LeakRecord, LeakResolvedRecord, TimeWaitPressureRecord,
                            InterimRecord, StopRecord, StatsRecord>;

// Every output format implements this. Calls come from one thread (the collector's, never the
// ring thread), in event order, and must not block it for long: a sink that serves another
// thread copies what it needs.
class RecordSink {
public:
  virtual ~RecordSink() = default;
  // A sink ignores the kinds of record it has no use for.
  virtual void write(const Record& record) = 0;
  // Push buffered output to its destination; called at least every 100 ms while tracing.
  virtual void flush() = 0;
};

}  // namespace tcptrail
