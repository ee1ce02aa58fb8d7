#include "cli/trace_command.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <iostream>
#include <map>
#include <memory>
#include <system_error>
#include <thread>

#include "cli/identity_resolver.hpp"
#include "cli/metrics_server.hpp"
#include "cli/output.hpp"
#include "cli/privileges.hpp"
#include "cli/record_queue.hpp"
#include "cli/scanner.hpp"
#include "loader/bpf_tracer.hpp"
#include "sinks/identity_stage.hpp"
#include "sinks/json_sink.hpp"
#include "sinks/leak_records_only.hpp"
#include "sinks/leaks_view.hpp"
#include "sinks/metrics_sink.hpp"
#include "sinks/tee_sink.hpp"
#include "sinks/text_sink.hpp"
#include "system/cpus.hpp"
#include "system/identity_sources.hpp"
#include "system/netns.hpp"
#include "system/socket_table.hpp"
#include "tcptrail/collector.hpp"
#include "tcptrail/error.hpp"
#include "tcptrail/events.h"

namespace tcptrail {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reopen{false};

void on_signal(int /*signo*/) {
  g_stop.store(true);
}

void on_hangup(int /*signo*/) {
  g_reopen.store(true);
}

// SIGHUP reopens an output file (log rotation); on stdout there is nothing to reopen.
void install_signal_handlers(bool reopen_on_hangup) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: the poll and a blocked write must return so the loop sees the flag.
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = reopen_on_hangup ? on_hangup : SIG_IGN;
  sigaction(SIGHUP, &sa, nullptr);
  // A closed output pipe shows up as EPIPE on write, which ends the run quietly.
  signal(SIGPIPE, SIG_IGN);
}

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

// Each CPU's ring holds what the fastest storm measured writes to it in kDrainBudgetNs, rounded
// up to a power of two, and the rings together at most 256 MiB. The fastest storm (issue 9):
// 113k connections/s on 2 CPUs, so 56.5k per CPU; each connection is two connection records (one
// per end), and with --transitions also nine state records. The ring thread drains every ring
// at least every kPollTimeoutMs (50 ms), and its longest pause under that storm was 0.23 ms:
// 200 ms leaves room for a stalled or descheduled ring thread. That makes 8 MiB per CPU (about
// 270 ms of that storm), or 32 MiB with --transitions (about 300 ms).
constexpr double kFastestConnectionsPerCpu = 56'500;
constexpr double kDrainBudgetSeconds = 0.2;
constexpr std::size_t kRingRecordHeader = 8;  // BPF_RINGBUF_HDR_SZ

std::size_t default_ring_buffer_bytes(std::size_t cpus, bool transitions) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  const double per_connection =
      2.0 * (TCPTRAIL_CONN_RECORD_SIZE + kRingRecordHeader) +
      (transitions ? 9.0 * (TCPTRAIL_EVENT_SIZE + kRingRecordHeader) : 0.0);
  const auto budget =
      static_cast<std::size_t>(kFastestConnectionsPerCpu * per_connection * kDrainBudgetSeconds);
  const std::size_t cap = std::bit_floor(256 * kMiB / std::max<std::size_t>(cpus, 1));
  return std::clamp(std::bit_ceil(budget), kMiB, std::max(cap, kMiB));
}

constexpr int kPollTimeoutMs = 50;
// What may wait between the ring thread and the collector: ~1 s of the fastest storm measured
// (~240k connection records/s of 272 bytes is 65 MB/s).
constexpr std::size_t kQueueBytes = std::size_t{64} << 20;
constexpr std::uint64_t kFlushIntervalNs = 100'000'000;
// Sweeps of the socket tables (leaks the state tracepoint cannot see, TIME_WAIT pressure), at
// a fixed cadence on the scanner thread.
constexpr std::uint64_t kSweepIntervalNs = 1'000'000'000;

// A terminal that does not say its height is taken for the classic 24 lines.
constexpr std::size_t kFallbackTerminalRows = 24;
// The height of the terminal on stdout, asked at each render so that a resize is followed; 0
// (no limit) when the output is not a terminal.
std::size_t terminal_rows(bool terminal) {
  winsize size{};
  if (!terminal || ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_row == 0) {
    return terminal ? kFallbackTerminalRows : 0;
  }
  return size.ws_row;
}
constexpr std::uint64_t kRenderIntervalNs = 1'000'000'000;
// Live counters for the metrics (a StatsRecord): the loss counters cost a few syscalls.
constexpr std::uint64_t kStatsIntervalNs = 1'000'000'000;

// TIME_WAIT sockets per namespace, as of each one's latest sweep that counted them (one in
// kTimeWaitCountEvery; the others leave TIME_WAIT out, and their zero is no count).
class TimeWaitCount {
public:
  void on_sweep(const SweepDigest& digest) {
    if (!digest.time_wait_counted) {
      return;
    }
    std::uint64_t count = 0;
    for (const DestinationCount& destination : digest.destinations) {
      count += destination.time_wait;
    }
    per_netns_[digest.netns_ino] = count;
  }
  void forget(std::uint32_t netns_ino) { per_netns_.erase(netns_ino); }
  [[nodiscard]] std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (const auto& [netns, count] : per_netns_) {
      sum += count;
    }
    return sum;
  }

private:
  std::map<std::uint32_t, std::uint64_t> per_netns_;
};

}  // namespace

int run_trace(const Options& options, const Validated& validated, const std::string& command_line) {
  const Durations& durations = validated.durations;
  // Opened once the programs are attached: a run that fails before leaves the file alone.
  Output output(options.output, validated.output_mode, g_stop);
  std::ostream& out = output.stream();

  const WallClock clock = WallClock::system();
  const std::string host = options.host.empty() ? sys::host_name() : options.host;
  const bool leaks_mode = options.command == Command::kLeaks;
  std::unique_ptr<RecordSink> sink;
  LeaksView* leaks_view = nullptr;
  bool leaks_on_terminal = false;
  CollectorConfig config;
  config.leaks.close_wait_ns = durations.close_wait_ns;
  config.leaks.fin_wait2_ns = durations.fin_wait2_ns;
  config.leaks.syn_recv_ns = durations.syn_recv_ns;
  config.leaks.ports.warn = options.time_wait_warn / 100.0;
  std::unique_ptr<RecordSink> json;
  if (options.json && leaks_mode) {
    json = std::make_unique<JsonSink>(out, clock, host);
    sink = std::make_unique<LeakRecordsOnly>(*json);
  } else if (options.json) {
    sink = std::make_unique<JsonSink>(out, clock, host);
  } else if (leaks_mode) {
    leaks_on_terminal = options.output.empty() && isatty(STDOUT_FILENO);
    auto view = std::make_unique<LeaksView>(out, config.leaks, leaks_on_terminal);
    leaks_view = view.get();
    sink = std::move(view);
  } else {
    TextOptions text;
    text.transitions = options.transitions;
    text.retransmits_view = options.retransmits;
    sink = std::make_unique<TextSink>(out, clock, text);
  }

  // Metrics come on top of any output: the collector writes to both.
  std::unique_ptr<MetricsSink> metrics;
  std::unique_ptr<TeeSink> tee;
  // Bound before anything is loaded: an address in use is found at once, as a bad value is.
  std::unique_ptr<MetricsServer> metrics_server;
  if (validated.metrics) {
    metrics = std::make_unique<MetricsSink>();
    tee = std::make_unique<TeeSink>(std::vector<RecordSink*>{sink.get(), metrics.get()});
    metrics_server = std::make_unique<MetricsServer>(*validated.metrics, *metrics);
  }
  RecordSink& records = tee ? *tee : *sink;

  config.filter = validated.filter;
  config.transitions = options.transitions;
  config.lifecycle_records = !leaks_mode;
  config.retransmit_fold_ns = options.retransmits ? 1'000'000'000 : 0;
  // Set once the programs are attached; until then nothing asks for a scan.
  Scanner* scanner = nullptr;
  ScannedFdOwners fd_owners([&scanner] {
    if (scanner != nullptr) {
      scanner->request_holders();
    }
  });

  LoaderConfig loader;
  loader.family = config.filter.family;
  try {
    loader.cpus = sys::online_cpus();
  } catch (const std::system_error& e) {
    throw TraceError(std::string("cannot list the online CPUs: ") + e.what(), e.code().value());
  }
  loader.ring_buffer_bytes =
      options.ring_buffer_mib != 0
          ? std::size_t{options.ring_buffer_mib} << 20
          : default_ring_buffer_bytes(loader.cpus.size(), config.transitions);
  loader.verbose = options.verbose;
  loader.max_connections = static_cast<std::uint32_t>(options.max_connections);
  loader.transitions = config.lifecycle_records && config.transitions;
  install_signal_handlers(output.is_file());
  BpfTracer tracer(loader);
  // Identities are attached just before the sinks; the resolver's thread starts once the
  // privileges are dropped.
  IdentityResolver identities(sys::find_cgroup2_mount());
  IdentityStage identity_stage(records, identities, validated.filter, monotonic_ns);
  Collector collector(config, identity_stage, fd_owners, tracer.connections());
  output.open();
  std::vector<std::string> degraded = report_degraded();
  for (const BpfTracer::MissingFeature& feature : tracer.missing_features()) {
    std::cerr << "tcptrail: warning: this kernel cannot give " << feature.name << ": "
              << feature.why << "\n";
    degraded.push_back(feature.name);
  }

  // Sockets that existed before the programs were attached, in every network namespace
  // (containers included): tracked as preexisting, and their listeners' owners are known.
  const std::uint32_t own_netns = sys::current_netns_ino();
  try {
    fd_owners.install(scan_holders(monotonic_ns()));
  } catch (const std::system_error& e) {
    throw TraceError(std::string("cannot read /proc: ") + e.what(), e.code().value());
  }
  // Unknown ports (size 0): a socket nothing listens for is taken for a client.
  auto ports_of = [](std::uint32_t netns) {
    try {
      return namespace_ports(netns);
    } catch (const std::system_error&) {
      return NamespacePorts{};
    }
  };
  try {
    collector.add_preexisting(sys::snapshot_sockets(0, sys::SocketSet::kAll), own_netns,
                              ports_of(own_netns), monotonic_ns());
  } catch (const std::system_error& e) {
    throw TraceError(std::string("cannot read the socket table: ") + e.what(), e.code().value());
  }
  for (std::uint32_t netns : sys::list_netns()) {
    try {
      if (netns != own_netns) {
        collector.add_preexisting(sys::snapshot_sockets(netns, sys::SocketSet::kAll), netns,
                                  ports_of(netns), monotonic_ns());
      }
    } catch (const std::system_error&) {
      continue;  // gone since it was listed
    }
  }
  // Before the scanner thread starts: capabilities and no-new-privs are per thread.
  drop_privileges();
  Scanner background(own_netns, kSweepIntervalNs, &tracer.connections(), durations.interim_ns);
  scanner = &background;
  identities.start();
  if (metrics_server) {
    metrics_server->serve();
  }

  const std::uint64_t started = monotonic_ns();
  const StartInfo start{TCPTRAIL_VERSION, kernel_release(), command_line,
                        started,          degraded,         sys::boot_id()};
  identity_stage.write(StartRecord{start});
  identity_stage.flush();

  // The ring thread only drains the rings into the queue; everything else happens here.
  RecordQueue queue(kQueueBytes);
  std::atomic<bool> stop_draining{false};
  std::atomic<std::uint64_t> longest_ring_pause_ns{0};
  std::thread ring_thread([&] {
    std::uint64_t drained = 0;
    while (!g_stop.load() && !stop_draining.load()) {
      if (drained != 0) {
        const std::uint64_t pause = monotonic_ns() - drained;
        if (pause > longest_ring_pause_ns.load(std::memory_order_relaxed)) {
          longest_ring_pause_ns.store(pause, std::memory_order_relaxed);
        }
      }
      if (queue.full()) {
        // The collector is far behind: the kernel counts what the rings cannot hold.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      tracer.poll(queue, kPollTimeoutMs);
      drained = monotonic_ns();
      queue.publish();
    }
    tracer.drain(queue);
    queue.close();
  });

  std::uint64_t last_flush = started;
  std::uint64_t last_render = started;
  std::uint64_t last_stats = started;
  TimeWaitCount time_wait;
  RunStats run;
  bool output_closed = false;
  while (queue.consume(collector, std::chrono::milliseconds(kPollTimeoutMs))) {
    const std::uint64_t now = monotonic_ns();
    if (auto batch = background.take(collector.namespaces())) {
      if (batch->holders) {
        fd_owners.install(std::move(batch->holders));
      }
      for (const SweepDigest& digest : batch->digests) {
        collector.on_sweep(digest, now);
        time_wait.on_sweep(digest);
      }
      for (const std::uint32_t netns : batch->gone) {
        collector.forget_namespace(netns);
        time_wait.forget(netns);
      }
      for (const InterimDump& dump : batch->interim) {
        collector.on_interim(dump);
      }
    }
    collector.tick(now);
    identities.install(now);
    identity_stage.release();
    if (leaks_view != nullptr && now - last_render >= kRenderIntervalNs) {
      leaks_view->render(collector.suspects(now), terminal_rows(leaks_on_terminal));
      last_render = now;
    }
    if (metrics && now - last_stats >= kStatsIntervalNs) {
      RunStats live;
      background.add_stats(live);
      tracer.count_lost(live);
      live.longest_ring_pause_ns = longest_ring_pause_ns.load();
      records.write(StatsRecord{now, collector.events(), collector.decode_stats().rejected, live,
                                queue.waiting_bytes(), queue.max_bytes(), time_wait.total(),
                                tracer.take_ring_peak_fill(), collector.port_ratios(now)});
      last_stats = now;
    }
    bool stop = durations.run_ns != 0 && now - started >= durations.run_ns;
    if (now - last_flush >= kFlushIntervalNs && !output_closed) {
      identity_stage.flush();
      last_flush = now;
      if (g_reopen.exchange(false)) {
        output.reopen();
      }
      if (output.failed() || output.reader_left()) {
        output_closed = true;
        stop = true;
      }
    }
    if (stop) {
      stop_draining.store(true);
    }
  }
  ring_thread.join();
  run.longest_ring_pause_ns = longest_ring_pause_ns.load();
  background.stop();
  background.add_stats(run);
  tracer.count_lost(run);
  if (!output_closed) {
    collector.finish(monotonic_ns(), run);
  }
  if (run.lost != 0) {
    std::cerr << "tcptrail: warning: " << run.lost
              << " events lost (a ring buffer full, or a program the kernel skipped because it "
                 "was already running on that CPU); raise --ring-buffer-mib for the first\n";
  }
  if (run.scan_errors != 0) {
    std::cerr << "tcptrail: warning: " << run.scan_errors
              << " sweeps or /proc scans failed (retried at the next sweep); leaks seen by "
                 "them may have come late or without their holders\n";
  }
  output.report();
  return 0;
}

}  // namespace tcptrail
