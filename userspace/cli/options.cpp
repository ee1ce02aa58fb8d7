#include "cli/options.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>

namespace tcptrail {

std::optional<std::uint64_t> parse_duration(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return std::nullopt;
  }
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "m") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else {
    return std::nullopt;
  }
  const double ns = value * scale;
  if (!std::isfinite(ns) || ns < 1 || ns > 1e18) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(ns);
}

namespace {

constexpr std::uint64_t kMinInterimNs = 100'000'000;

// The id of a cgroup v2 directory: the inode number of the directory, which is what BPF reads
// from the socket (kernfs node id).
std::optional<std::uint64_t> cgroup_id_of(const std::string& path) {
  constexpr long kCgroup2SuperMagic = 0x63677270;
  struct statfs fs {};
  struct stat st {};
  if (statfs(path.c_str(), &fs) != 0 || fs.f_type != kCgroup2SuperMagic ||
      stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_ino;
}

// CLI11 reads 0x1356 as hex, 0o17 and 010 as octal, and lets "+80" and " 80" through: a number
// here is plain decimal digits without a leading zero.
const CLI::Validator kDecimal(
    [](std::string& text) {
      return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
                     (text.size() == 1 || text.front() != '0')
                 ? std::string()
                 : "'" + text + "' is not a decimal integer";
    },
    "DECIMAL");

// Digits with an optional fraction: no sign, exponent, hex, nan or inf.
const CLI::Validator kDecimalFraction(
    [](std::string& text) {
      const std::size_t dot = text.find('.');
      const std::string whole = text.substr(0, dot);
      const std::string fraction = dot == std::string::npos ? "1" : text.substr(dot + 1);
      auto digits = [](const std::string& part) {
        return !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
      };
      return digits(whole) && digits(fraction) ? std::string()
                                               : "'" + text + "' is not a decimal number";
    },
    "DECIMAL");

// An empty value is never meant (`-d ""` would run forever, `-o ""` write to stdout), and one
// that begins with '-' is an option swallowed as a value (`--comm -d 1s`).
const CLI::Validator kValue(
    [](std::string& text) {
      if (text.empty()) {
        return std::string("empty value");
      }
      return text.front() == '-' ? "'" + text + "' looks like an option, not a value"
                                 : std::string();
    },
    "VALUE");

// The kernel keeps 15 bytes of a process name (TASK_COMM_LEN - 1): a longer one never matches.
const CLI::Validator kCommName(
    [](std::string& text) {
      return text.size() <= 15 ? std::string()
                               : "'" + text + "' is longer than a process name (15 bytes)";
    },
    "COMM");

// A node name as Kubernetes gives it (a DNS subdomain: 253 bytes at most) or any host name;
// no control character, which would only reach the records escaped.
const CLI::Validator kHostName(
    [](std::string& text) {
      if (text.size() > 253) {
        return "'" + text.substr(0, 16) + "...' is longer than a host name (253 bytes)";
      }
      const bool control = std::any_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      });
      return control ? std::string("a host name has no control characters") : std::string();
    },
    "NAME");

const CLI::Validator kContainerId(
    [](std::string& text) {
      return is_container_id_or_prefix(text)
                 ? std::string()
                 : "'" + text + "' is not a container id (64 or 12 lowercase hex digits)";
    },
    "ID");

const CLI::Validator kUnitName(
    [](std::string& text) {
      return is_unit_name(text) ? std::string()
                                : "'" + text +
                                      "' is not a systemd unit name (NAME.service or "
                                      "NAME.scope)";
    },
    "UNIT");

void add_filter_options(CLI::App& app, Options& o) {
  app.add_option("-p,--pid", o.pids, "only sockets owned by this PID (repeatable)")
      ->check(kDecimal)
      ->check(CLI::Range(1u, 4194304u));
  app.add_option("--comm", o.comms,
                 "only sockets owned by processes with this name, at most 15 bytes (repeatable)")
      ->check(kValue)
      ->check(kCommName);
  app.add_option("--lport", o.lports, "only this local port (repeatable)")
      ->check(kDecimal)
      ->check(CLI::Range(1, 65535));
  app.add_option("--rport", o.rports, "only this remote port (repeatable)")
      ->check(kDecimal)
      ->check(CLI::Range(1, 65535));
  app.add_option("--port", o.ports, "only this port on either side (repeatable)")
      ->check(kDecimal)
      ->check(CLI::Range(1, 65535));
  app.add_option("--addr", o.addrs,
                 "only this address or CIDR (no host bits set) on either side (repeatable)")
      ->check(kValue);
  app.add_option("--cgroup", o.cgroups,
                 "only sockets created in this cgroup v2 directory, e.g. "
                 "/sys/fs/cgroup/system.slice/nginx.service (repeatable)")
      ->check(kValue);
  app.add_option("--container", o.containers,
                 "only sockets of this container: its id or the 12-digit prefix docker prints "
                 "(docker, containerd, CRI-O, podman; repeatable)")
      ->check(kContainerId);
  app.add_option("--unit", o.units,
                 "only sockets of this systemd unit, e.g. nginx.service (the innermost "
                 ".service or .scope of the socket's cgroup; repeatable)")
      ->check(kUnitName);
  auto* v4 = app.add_flag("-4,--ipv4", o.ipv4, "IPv4 only");
  auto* v6 = app.add_flag("-6,--ipv6", o.ipv6, "IPv6 only");
  v4->excludes(v6);
}

void add_output_options(CLI::App& app, Options& o) {
  app.add_flag("--json", o.json, "NDJSON records on stdout (or --output), one per line");
  app.add_option("-o,--output", o.output,
                 "write records to FILE instead of stdout (not followed if a symlink; created "
                 "mode 0600, a regular file is truncated; SIGHUP reopens it)")
      ->check(kValue);
  app.add_option("--output-mode", o.output_mode,
                 "octal permissions of the --output file, 0600 to 0666 (default 0600)");
  app.add_option("-d,--duration", o.duration, "stop after this long (500ms, 30s, 2m; N = seconds)")
      ->check(kValue);
  app.add_option("--host", o.host,
                 "the host name every --json record carries (default: gethostname(); a "
                 "Kubernetes pod's is the pod's name, so a DaemonSet passes the node's)")
      ->check(kValue)
      ->check(kHostName);
  app.add_option("--metrics", o.metrics,
                 "serve Prometheus metrics at http://ADDR:PORT/metrics (a numeric address: "
                 "127.0.0.1:9465, [::1]:9465)")
      ->check(kValue);
  app.add_flag("-v,--verbose", o.verbose, "libbpf diagnostics on stderr");
  app.add_option("--close-wait-timeout", o.close_wait_timeout,
                 "report CLOSE_WAIT sockets older than this (default 30s)")
      ->check(kValue);
  app.add_option("--fin-wait2-timeout", o.fin_wait2_timeout,
                 "report FIN_WAIT2 sockets older than this (default 60s)")
      ->check(kValue);
  app.add_option("--syn-recv-timeout", o.syn_recv_timeout,
                 "report half-open SYN_RECV older than this (default 10s)")
      ->check(kValue);
  app.add_option("--time-wait-warn", o.time_wait_warn,
                 "warn when TIME_WAIT towards one destination fills this % of the port range")
      ->check(kDecimalFraction)
      ->check(CLI::Range(1.0, 100.0));
  app.add_option("--ring-buffer-mib", o.ring_buffer_mib,
                 "BPF ring buffer of each CPU in MiB, a power of two (default: 200 ms of the "
                 "fastest storm measured, 56.5k connections/s per CPU: 8 MiB, 32 MiB with "
                 "--transitions; 256 MiB in all at most)")
      ->check(kDecimal)
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--max-connections", o.max_connections,
                 "live connections tracked at most; more are counted as overflow")
      ->check(kDecimal)
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 26));
}

// "0600" to "0666": the owner always reads and writes, nobody executes.
std::optional<unsigned> parse_output_mode(const std::string& text) {
  if (text.size() != 3 && !(text.size() == 4 && text.front() == '0')) {
    return std::nullopt;
  }
  unsigned mode = 0;
  for (const char c : text) {
    if (c < '0' || c > '7') {
      return std::nullopt;
    }
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if ((mode & ~0666u) != 0 || (mode & 0600u) != 0600u) {
    return std::nullopt;
  }
  return mode;
}

}  // namespace

void register_options(CLI::App& app, Options& o) {
  app.description(
      "tcptrail: trace the lifecycle of every TCP connection (eBPF), find leaks and what hurt "
      "or killed connections.");
  app.footer(R"(Examples:
  tcptrail                               one line per finished connection
  tcptrail --json -o conns.ndjson -d 2m  NDJSON for two minutes
  tcptrail -p 1234 --transitions         every state change of PID 1234's sockets
  tcptrail --port 3306 --retransmits     retransmits and resets on MySQL connections
  tcptrail leaks --close-wait-timeout 10s  sockets stuck in CLOSE_WAIT for 10s or more

Signals: SIGINT/SIGTERM stop (summary or stop record first); SIGHUP reopens --output FILE for
log rotation (ignored on stdout).

Needs root, or CAP_BPF and CAP_PERFMON; CAP_SYS_ADMIN and CAP_SYS_PTRACE read other network
namespaces, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH other users' /proc/PID/fd (a warning names
what is missing). Once attached, only these three are kept, with no-new-privs.

Exit status: 0 success (also when the reader of a stdout pipe leaves), 1 runtime failure
(including any failed write to the output), 2 bad usage.)");
  app.set_version_flag("--version", std::string("tcptrail ") + TCPTRAIL_VERSION,
                       "print the version and exit");
  app.require_subcommand(0, 1);
  // The same options on the main app and on each subcommand, since `tcptrail` means
  // `tcptrail trace` and options may follow either name. (Fallthrough would hand "-4" to the
  // parent as a negative number.)
  auto* trace = app.add_subcommand("trace", "trace connections (the default)");
  trace->callback([&o] { o.command = Command::kTrace; });
  auto* leaks = app.add_subcommand("leaks", "live view of sockets stuck in CLOSE_WAIT, "
                                            "FIN_WAIT2, SYN_RECV and of TIME_WAIT pressure");
  leaks->callback([&o] { o.command = Command::kLeaks; });
  for (CLI::App* target : {&app, trace, leaks}) {
    add_filter_options(*target, o);
    add_output_options(*target, o);
  }
  for (CLI::App* target : {&app, trace}) {
    target->add_flag("--transitions", o.transitions, "also emit every state change");
    target->add_flag("--retransmits", o.retransmits,
                     "text view of retransmits and resets (like tcpretrans)");
    target
        ->add_option("--interim", o.interim,
                     "every D (at least 100ms; 60s, 1s), an interim record per open connection: "
                     "bytes and retransmits since the last, state, srtt")
        ->check(kValue);
  }
}

Validated validate_options(const Options& o) {
  auto need = [](const std::string& text, const char* name) {
    auto ns = parse_duration(text);
    if (!ns) {
      throw CLI::ValidationError(std::string(name) + ": '" + text +
                                 "' is not a duration (use 500ms, 30s, 2m or seconds)");
    }
    return *ns;
  };
  Validated v;
  Durations& d = v.durations;
  if (!o.duration.empty()) {
    d.run_ns = need(o.duration, "--duration");
  }
  d.close_wait_ns = need(o.close_wait_timeout, "--close-wait-timeout");
  d.fin_wait2_ns = need(o.fin_wait2_timeout, "--fin-wait2-timeout");
  d.syn_recv_ns = need(o.syn_recv_timeout, "--syn-recv-timeout");
  if (!o.interim.empty()) {
    d.interim_ns = need(o.interim, "--interim");
    // Each interim dumps every open socket's tcp_info: a faster cadence costs more than it shows.
    if (d.interim_ns < kMinInterimNs) {
      throw CLI::ValidationError("--interim: '" + o.interim + "' is shorter than 100ms");
    }
  }
  Filter& f = v.filter;
  for (const std::string& addr : o.addrs) {
    auto cidr = Cidr::parse(addr);
    if (!cidr) {
      throw CLI::ValidationError("--addr: '" + addr +
                                 "' is not an address or CIDR (host bits must be zero)");
    }
    f.addrs.push_back(*cidr);
  }
  if ((o.ring_buffer_mib & (o.ring_buffer_mib - 1)) != 0) {
    throw CLI::ValidationError("--ring-buffer-mib: must be a power of two");
  }
  for (const std::string& cgroup : o.cgroups) {
    auto id = cgroup_id_of(cgroup);
    if (!id) {
      throw CLI::ValidationError("--cgroup: '" + cgroup + "' is not a cgroup v2 directory");
    }
    f.cgroups.push_back(*id);
  }
  for (std::uint32_t pid : o.pids) {
    if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      throw CLI::ValidationError("--pid: no process with PID " + std::to_string(pid));
    }
  }
  auto mode = parse_output_mode(o.output_mode);
  if (!mode) {
    throw CLI::ValidationError("--output-mode: '" + o.output_mode +
                               "' is not an octal mode from 0600 to 0666");
  }
  v.output_mode = *mode;
  if (!o.metrics.empty()) {
    v.metrics = parse_metrics_address(o.metrics);
    if (!v.metrics) {
      throw CLI::ValidationError("--metrics: '" + o.metrics +
                                 "' is not ADDR:PORT (a numeric address, [::1] for IPv6, and a "
                                 "port from 1 to 65535)");
    }
  }
  f.pids = o.pids;
  f.comms = o.comms;
  f.containers = o.containers;
  f.units = o.units;
  f.lports = o.lports;
  f.rports = o.rports;
  f.ports = o.ports;
  f.family = o.ipv4 ? 4 : o.ipv6 ? 6 : 0;
  return v;
}

}  // namespace tcptrail
