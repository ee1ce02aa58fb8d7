// Prometheus metrics: counters, gauges and histograms kept from the records, rendered in the
// text exposition format (version 0.0.4). Labels are bounded: role, close kind, failure cause,
// reset direction, leak kind, network namespace, the local port of listening services (at
// most kMaxServicePorts, the rest as "other") and the container or unit of a connection or a
// leak (at most kMaxWorkloads at once, the rest as "other"); never a pid, a client port or a
// peer address.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "tcptrail/records.hpp"

namespace tcptrail {

// Fixed buckets (upper bounds, seconds) and their counts; not cumulative until rendered.
template <std::size_t N> struct Histogram {
  static constexpr std::size_t kBuckets = N;
  std::array<std::uint64_t, N + 1> counts{};  // the last one is +Inf
  double sum = 0;
  std::uint64_t count = 0;
};

// write() and flush() come from the collector's thread, render() from the HTTP server's: one
// mutex guards the numbers, held by write() for a few increments and by render() for a copy,
// so neither waits for the other's formatting or I/O.
class MetricsSink : public RecordSink {
public:
  static constexpr std::size_t kMaxServicePorts = 64;
  static constexpr std::size_t kMaxWorkloads = 64;
  static constexpr std::array<double, 12> kDurationBuckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                              1,     5,     10,   60,   300, 3600};
  static constexpr std::array<double, 10> kHandshakeBuckets = {0.0001, 0.0005, 0.001, 0.005, 0.01,
                                                               0.05,   0.1,    0.5,   1,     3};

  void write(const Record& record) override;
  void flush() override {}
  // The exposition of everything counted so far.
  std::string render() const;

private:
  // The container (its 12-digit id prefix) or, outside containers, the systemd unit a
  // connection's cgroup names; both "" when none or not known, both "other" for the workloads
  // folded together past kMaxWorkloads.
  struct Workload {
    std::string container;
    std::string unit;
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 false positive (llvm-project#53961)
    auto operator<=>(const Workload&) const = default;
  };
  // Where a connection is counted: its role, how it closed, its service port ("" for clients,
  // the port for servers, "other" past kMaxServicePorts) and its workload.
  struct ClosedKey {
    Role role;
    CloseKind close;
    std::string port;
    Workload workload;
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 false positive (llvm-project#53961)
    auto operator<=>(const ClosedKey&) const = default;
  };
  // Where an open leak is counted: its kind, service port and workload, as for connections.
  struct LeakKey {
    LeakKind kind;
    std::string port;
    Workload workload;
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 sees a 0 in the defaulted <=>.
    auto operator<=>(const LeakKey&) const = default;
  };
  // A workload with labels of its own: when it was last active (for evicting the one idle
  // longest) and when it got them (a workload evicted and back again is a new registration).
  struct Registration {
    std::uint64_t last_active = 0;
    std::uint64_t since = 0;
  };
  // A leak reported and not yet resolved: the series it is counted in, as of its report. Its
  // leak_resolved record takes it out of that series (or of "other" if its workload lost its
  // labels meanwhile), whatever identity that record carries.
  struct OpenLeak {
    LeakKey key;
    std::uint64_t registered = 0;  // Registration::since of its workload
    std::uint64_t count = 0;       // leak records of it not yet resolved
  };
  struct State {
    std::map<ClosedKey, std::uint64_t> closed;
    std::map<CloseKind, std::uint64_t> connect_failures;
    Histogram<kDurationBuckets.size()> duration;
    Histogram<kHandshakeBuckets.size()> handshake;
    std::uint64_t retransmits = 0;
    std::array<std::uint64_t, 2> resets{};        // by ResetDirection
    std::map<LeakKey, std::uint64_t> open_leaks;  // gauge: leaks not yet resolved
    std::map<std::uint32_t, double> port_ratio;   // worst destination, per netns
    std::set<std::uint16_t> service_ports;        // the ports given their own label
    // The workloads given their own labels, by the sequence numbers of their connections and
    // leaks.
    std::map<Workload, Registration> workloads;
    std::uint64_t activity_seq = 0;
    std::uint64_t events = 0;
    std::uint64_t rejected = 0;
    RunStats run;
    std::uint64_t queued_bytes = 0;
    std::uint64_t queue_bytes = 0;
    std::uint64_t time_wait_sockets = 0;
    double ring_fill = 0;
  };

  void put(const ConnectionRecord& record);
  void put(const ResetRecord& record);
  void put(const RetransmitRecord& record);
  void put(const LeakRecord& record);
  void put(const LeakResolvedRecord& record);
  void put(const TimeWaitPressureRecord& record);
  void put(const StatsRecord& record);
  void put(const StopRecord& record);
  template <typename Other> void put(const Other& /*record*/) {}
  std::string service_port(const Connection& conn);
  // The workload of a record, given labels of its own (another's folded into "other" if
  // kMaxWorkloads have them) and marked active.
  Workload workload(const Identity& identity);

  mutable std::mutex mutex_;
  State state_;
  // By conn_id and kind; not in State, which render() copies: it grows with the open leaks.
  std::map<std::pair<std::uint64_t, LeakKind>, OpenLeak> leaks_;
};

}  // namespace tcptrail
