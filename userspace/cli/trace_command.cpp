#include "cli/trace_command.hpp"

#include <signal.h>
#include <sys/utsname.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "loader/bpf_tracer.hpp"
#include "sinks/json_sink.hpp"
#include "sinks/text_sink.hpp"
#include "tcptrail/collector.hpp"
#include "tcptrail/error.hpp"

namespace tcptrail {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int /*signo*/) { g_stop.store(true); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: the poll must return so the loop sees the flag.
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed output pipe shows up as EPIPE on write, which ends the run quietly.
  signal(SIGPIPE, SIG_IGN);
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

constexpr int kPollTimeoutMs = 50;
constexpr std::uint64_t kFlushIntervalNs = 100'000'000;

}  // namespace

int run_trace(const Options& options, const Durations& durations,
              const std::string& command_line) {
  std::ofstream file;
  if (!options.output.empty()) {
    file.open(options.output, std::ios::out | std::ios::trunc | std::ios::binary);
    if (!file) {
      throw TraceError("cannot open " + options.output + ": " + std::strerror(errno), errno);
    }
  }
  std::ostream& out = options.output.empty() ? std::cout : file;

  const WallClock clock = WallClock::system();
  std::unique_ptr<RecordSink> sink;
  if (options.json) {
    sink = std::make_unique<JsonSink>(out, clock);
  } else {
    TextOptions text;
    text.transitions = options.transitions;
    text.retransmits_view = options.retransmits;
    sink = std::make_unique<TextSink>(out, clock, text);
  }

  CollectorConfig config;
  config.filter = make_filter(options);
  config.table.max_connections = options.max_connections;
  config.transitions = options.transitions;
  Collector collector(config, *sink);

  LoaderConfig loader;
  loader.family = config.filter.family;
  loader.ring_buffer_bytes = std::size_t{options.ring_buffer_mib} << 20;
  loader.verbose = options.verbose;
  install_signal_handlers();
  BpfTracer tracer(loader, collector);

  const std::uint64_t started = monotonic_ns();
  sink->start({TCPTRAIL_VERSION, kernel_release(), command_line, started});
  sink->flush();

  std::uint64_t last_flush = started;
  bool output_closed = false;
  while (!g_stop.load()) {
    tracer.poll(kPollTimeoutMs);
    const std::uint64_t now = monotonic_ns();
    collector.tick(now);
    if (now - last_flush >= kFlushIntervalNs) {
      sink->flush();
      last_flush = now;
      if (!out) {
        output_closed = true;
        break;
      }
    }
    if (durations.run_ns != 0 && now - started >= durations.run_ns) {
      break;
    }
  }
  tracer.drain();
  const DropCounts drops = tracer.drops();
  if (!output_closed) {
    collector.finish(monotonic_ns(), {drops.ring_buffer, drops.no_storage});
    if (!out && errno != EPIPE) {
      throw TraceError(std::string("cannot write output: ") + std::strerror(errno), errno);
    }
  }
  if (drops.ring_buffer != 0) {
    std::cerr << "tcptrail: warning: " << drops.ring_buffer
              << " events lost (ring buffer full); raise --ring-buffer-mib\n";
  }
  return 0;
}

}  // namespace tcptrail
