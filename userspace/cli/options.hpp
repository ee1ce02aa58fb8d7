// Command-line options: CLI11 fills a plain Options struct; register_options is what the unit
// tests call on argument vectors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/metrics_server.hpp"
#include "tcptrail/filter.hpp"

namespace tcptrail {

enum class Command : std::uint8_t { kTrace, kLeaks };

struct Options {
  Command command = Command::kTrace;
  bool json = false;
  bool transitions = false;
  bool retransmits = false;
  bool verbose = false;
  bool ipv4 = false;
  bool ipv6 = false;
  std::string output;                // empty: stdout
  std::string output_mode = "0600";  // octal permissions of a file --output creates
  std::vector<std::uint32_t> pids;
  std::vector<std::string> comms;
  std::vector<std::uint16_t> lports;
  std::vector<std::uint16_t> rports;
  std::vector<std::uint16_t> ports;
  std::vector<std::string> addrs;
  std::vector<std::string> cgroups;     // cgroup v2 directories
  std::vector<std::string> containers;  // container ids or 12-digit prefixes
  std::vector<std::string> units;       // systemd unit names
  std::string duration;                 // empty: until interrupted
  std::string interim;                  // empty: no interim records
  std::string close_wait_timeout = "30s";
  std::string fin_wait2_timeout = "60s";
  std::string syn_recv_timeout = "10s";
  double time_wait_warn = 50;         // percent of the local port range
  std::uint32_t ring_buffer_mib = 0;  // per CPU; 0: shared out from a total, see options.cpp
  std::uint64_t max_connections = 1 << 20;
  std::string metrics;  // ADDR:PORT to serve Prometheus metrics on; empty: none
  std::string host;     // the host name records carry; empty: gethostname()
};

// Durations after validation, in nanoseconds.
struct Durations {
  std::uint64_t run_ns = 0;  // 0: until interrupted
  std::uint64_t close_wait_ns = 0;
  std::uint64_t fin_wait2_ns = 0;
  std::uint64_t syn_recv_ns = 0;
  std::uint64_t interim_ns = 0;  // 0: no interim records
};

// What validation computed from Options, so nothing is parsed or looked up twice.
struct Validated {
  Durations durations;
  Filter filter;                // addresses parsed, cgroup directories resolved to their ids
  unsigned output_mode = 0600;  // permissions of the --output file
  std::optional<MetricsAddress> metrics;
};

// "500ms", "30s", "2m", "1h", "1.5s"; a plain number is seconds. nullopt if malformed,
// negative or zero.
std::optional<std::uint64_t> parse_duration(std::string_view text);

// Registers every option and subcommand on `app`, filling `options`.
void register_options(CLI::App& app, Options& options);

// Checks what CLI11 cannot (durations, CIDRs, cgroups, PIDs, the output mode) and builds the
// filter; throws CLI::ValidationError with a one-line message.
Validated validate_options(const Options& options);

}  // namespace tcptrail
