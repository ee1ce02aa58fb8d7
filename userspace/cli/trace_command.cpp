#include "cli/trace_command.hpp"

#include <signal.h>
#include <sys/utsname.h>
#include <time.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <iostream>
#include <memory>
#include <system_error>

#include "cli/output.hpp"
#include "cli/privileges.hpp"
#include "loader/bpf_tracer.hpp"
#include "sinks/json_sink.hpp"
#include "sinks/leak_records_only.hpp"
#include "sinks/leaks_view.hpp"
#include "sinks/text_sink.hpp"
#include "system/cpus.hpp"
#include "system/netns.hpp"
#include "system/port_range.hpp"
#include "system/socket_table.hpp"
#include "tcptrail/collector.hpp"
#include "tcptrail/error.hpp"

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

// 32 MiB shared out among the CPUs, from 1 to 8 MiB each: at a storm's ~15 MB/s per CPU, 8 MiB
// is half a second of slack for the collector.
std::size_t default_ring_buffer_bytes(std::size_t cpus) {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  return std::clamp(std::bit_floor(32 * kMiB / std::max<std::size_t>(cpus, 1)), kMiB, 8 * kMiB);
}

constexpr int kPollTimeoutMs = 50;
constexpr std::uint64_t kFlushIntervalNs = 100'000'000;
constexpr std::uint64_t kSweepIntervalNs = 1'000'000'000;
constexpr std::uint64_t kRenderIntervalNs = 1'000'000'000;

// Reads the socket table of every namespace worth watching. A namespace that disappeared
// since is skipped; it stops being swept once nothing refers to it.
void sweep(Collector& collector, std::uint32_t own_netns, std::uint64_t now_ns) {
  std::vector<std::uint32_t> namespaces = collector.namespaces();
  if (std::find(namespaces.begin(), namespaces.end(), own_netns) == namespaces.end()) {
    namespaces.push_back(own_netns);
  }
  for (std::uint32_t netns : namespaces) {
    try {
      const auto sockets = sys::snapshot_sockets(netns, true);
      collector.on_sweep(netns, sockets, sys::read_port_range(netns).size(), now_ns);
    } catch (const std::system_error&) {
      continue;
    }
  }
}

}  // namespace

int run_trace(const Options& options, const Validated& validated, const std::string& command_line) {
  const Durations& durations = validated.durations;
  // Opened once the programs are attached: a run that fails before leaves the file alone.
  Output output(options.output, validated.output_mode, g_stop);
  std::ostream& out = output.stream();

  const WallClock clock = WallClock::system();
  const bool leaks_mode = options.command == Command::kLeaks;
  std::unique_ptr<RecordSink> sink;
  LeaksView* leaks_view = nullptr;
  CollectorConfig config;
  config.leaks.close_wait_ns = durations.close_wait_ns;
  config.leaks.fin_wait2_ns = durations.fin_wait2_ns;
  config.leaks.syn_recv_ns = durations.syn_recv_ns;
  config.leaks.time_wait_warn = options.time_wait_warn / 100.0;
  std::unique_ptr<RecordSink> json;
  if (options.json && leaks_mode) {
    json = std::make_unique<JsonSink>(out, clock);
    sink = std::make_unique<LeakRecordsOnly>(*json);
  } else if (options.json) {
    sink = std::make_unique<JsonSink>(out, clock);
  } else if (leaks_mode) {
    auto view = std::make_unique<LeaksView>(out, config.leaks,
                                            options.output.empty() && isatty(STDOUT_FILENO));
    leaks_view = view.get();
    sink = std::move(view);
  } else {
    TextOptions text;
    text.transitions = options.transitions;
    text.retransmits_view = options.retransmits;
    sink = std::make_unique<TextSink>(out, clock, text);
  }

  config.filter = validated.filter;
  config.table.max_connections = options.max_connections;
  config.transitions = options.transitions;
  config.lifecycle_records = !leaks_mode;
  sys::ProcFdOwners fd_owners;
  Collector collector(config, *sink, fd_owners);

  LoaderConfig loader;
  loader.family = config.filter.family;
  try {
    loader.cpus = sys::online_cpus();
  } catch (const std::system_error& e) {
    throw TraceError(std::string("cannot list the online CPUs: ") + e.what(), e.code().value());
  }
  loader.ring_buffer_bytes = options.ring_buffer_mib != 0
                                 ? std::size_t{options.ring_buffer_mib} << 20
                                 : default_ring_buffer_bytes(loader.cpus.size());
  loader.verbose = options.verbose;
  install_signal_handlers(output.is_file());
  BpfTracer tracer(loader, collector);
  output.open();
  const std::vector<std::string> degraded = report_degraded();

  // Sockets that existed before the programs were attached, in every network namespace
  // (containers included): tracked as preexisting, and their listeners' owners are known.
  const std::uint32_t own_netns = sys::current_netns_ino();
  try {
    collector.add_preexisting(sys::snapshot_sockets(0, false), own_netns, monotonic_ns());
  } catch (const std::system_error& e) {
    throw TraceError(std::string("cannot read the socket table: ") + e.what(), e.code().value());
  }
  for (std::uint32_t netns : sys::list_netns()) {
    try {
      if (netns != own_netns) {
        collector.add_preexisting(sys::snapshot_sockets(netns, false), netns, monotonic_ns());
      }
    } catch (const std::system_error&) {
      continue;  // gone since it was listed
    }
  }

  drop_privileges();

  const std::uint64_t started = monotonic_ns();
  sink->start({TCPTRAIL_VERSION, kernel_release(), command_line, started, degraded});
  sink->flush();

  std::uint64_t last_flush = started;
  std::uint64_t last_sweep = started;
  std::uint64_t sweep_interval = kSweepIntervalNs;
  std::uint64_t last_render = started;
  bool output_closed = false;
  while (!g_stop.load()) {
    tracer.poll(kPollTimeoutMs);
    const std::uint64_t now = monotonic_ns();
    collector.tick(now);
    if (now - last_sweep >= sweep_interval) {
      sweep(collector, own_netns, now);
      last_sweep = now;
      // Dumping tens of thousands of TIME_WAIT sockets is not free: keep sweeps under 1% of
      // the time, whatever the load.
      sweep_interval = std::max(kSweepIntervalNs, 100 * (monotonic_ns() - now));
    }
    if (leaks_view != nullptr && now - last_render >= kRenderIntervalNs) {
      leaks_view->render(collector.suspects(now));
      last_render = now;
    }
    if (now - last_flush >= kFlushIntervalNs) {
      sink->flush();
      last_flush = now;
      if (g_reopen.exchange(false)) {
        output.reopen();
      }
      if (output.failed() || output.reader_left()) {
        output_closed = true;
        break;
      }
    }
    if (durations.run_ns != 0 && now - started >= durations.run_ns) {
      break;
    }
  }
  tracer.drain();
  const std::uint64_t lost = tracer.lost_events();
  if (!output_closed) {
    collector.finish(monotonic_ns(), lost);
  }
  if (lost != 0) {
    std::cerr << "tcptrail: warning: " << lost
              << " events lost (ring buffer full); raise --ring-buffer-mib\n";
  }
  if (fd_owners.transient_errors() != 0) {
    std::cerr << "tcptrail: warning: " << fd_owners.transient_errors()
              << " /proc/PID/fd reads failed for a transient error (EMFILE, ENOMEM); those "
                 "sockets' holders may be missing\n";
  }
  output.report();
  return 0;
}

}  // namespace tcptrail
