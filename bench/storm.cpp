// tcptrail_storm: a loopback connection storm for the overhead benchmark (bench/run.sh).
//
// Each worker thread owns its listeners and runs short connections against itself: connect()
// (completes against the listen backlog, the loopback handshake runs inline), accept(), client
// write, server read, server write, client read, client close, server close. The client closes
// first, so TIME_WAIT lands on the client like a real short-connection client.
//
// Ephemeral ports: a run makes far more connections than the ephemeral range holds (5 s at
// ~30k/s is ~150k). The kernel picks a connect() port per 4-tuple, so each listener port adds a
// full ephemeral range of tuples; with kDefaultListeners ports the tuple space exceeds the
// TIME_WAIT table (net.ipv4.tcp_max_tw_buckets) and no sysctl needs changing. See README.md.
//
// stdout: one JSON line with the totals. stderr: diagnostics. --record FILE: one line per
// connection "client_addr client_port server_addr server_port", taken from accept()'s peer
// address so that recording costs no extra syscall.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "system/unique_fd.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr int kDefaultListeners = 16;
constexpr int kMaxConsecutiveErrors = 1000;

struct Options {
  int threads = 2;
  double duration = 5.0;
  std::uint64_t connections = 0;
  int port = 0;
  int listeners = kDefaultListeners;
  std::size_t bytes = 64;
  bool ipv6 = false;
  std::string record;
};

struct Endpoint {
  std::uint16_t client_port = 0;
  std::uint16_t server_port = 0;
};

struct WorkerResult {
  std::uint64_t connections = 0;
  std::uint64_t errors = 0;
  std::uint16_t lport_min = UINT16_MAX;
  std::uint16_t lport_max = 0;
  std::string first_error;
  std::vector<Endpoint> endpoints;
};

using tcptrail::sys::UniqueFd;

// errno of the call that just failed, as the exception's code.
[[noreturn]] void throw_errno(const std::string& what) {
  tcptrail::sys::throw_errno(errno, what);
}

// A loopback address of the chosen family with the given port (host order).
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  static SockAddr loopback(bool ipv6, std::uint16_t port) {
    SockAddr a;
    if (ipv6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      in6->sin6_port = htons(port);
      a.len = sizeof(sockaddr_in6);
    } else {
      auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
      in4->sin_family = AF_INET;
      in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      in4->sin_port = htons(port);
      a.len = sizeof(sockaddr_in);
    }
    return a;
  }
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

std::uint16_t port_of(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&s)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&s)->sin_port);
}

struct Listener {
  UniqueFd fd;
  std::uint16_t port = 0;
};

Listener make_listener(bool ipv6, std::uint16_t port) {
  Listener l;
  l.fd = UniqueFd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (l.fd.get() < 0) {
    throw_errno("socket");
  }
  int one = 1;
  if (::setsockopt(l.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
    throw_errno("setsockopt(SO_REUSEADDR)");
  }
  SockAddr addr = SockAddr::loopback(ipv6, port);
  if (::bind(l.fd.get(), addr.get(), addr.len) < 0) {
    throw_errno("bind listener port " + std::to_string(port));
  }
  if (::listen(l.fd.get(), 128) < 0) {
    throw_errno("listen");
  }
  SockAddr bound;
  bound.len = sizeof(bound.storage);
  if (::getsockname(l.fd.get(), bound.get(), &bound.len) < 0) {
    throw_errno("getsockname");
  }
  l.port = port_of(bound.storage);
  return l;
}

bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, char* data, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, data, n);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return false;
    }
    data += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Shared stop condition: a deadline, or a total connection budget claimed one at a time.
class StopCondition {
public:
  StopCondition(std::chrono::steady_clock::time_point deadline, std::uint64_t budget)
      : deadline_(deadline), budget_(budget) {}

  // True if the caller may start one more connection.
  bool claim() {
    if (stopped_.load(std::memory_order_relaxed)) {
      return false;
    }
    if (budget_ > 0) {
      if (claimed_.fetch_add(1, std::memory_order_relaxed) >= budget_) {
        stopped_.store(true, std::memory_order_relaxed);
        return false;
      }
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline_) {
      stopped_.store(true, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void stop() { stopped_.store(true, std::memory_order_relaxed); }

private:
  std::chrono::steady_clock::time_point deadline_;
  std::uint64_t budget_;
  std::atomic<std::uint64_t> claimed_{0};
  std::atomic<bool> stopped_{false};
};

// One connection, both ends. Returns the error text, or nothing on success.
std::optional<std::string> one_connection(const Options& opts, const Listener& listener,
                                          const SockAddr& server, std::vector<char>& buf,
                                          Endpoint& endpoint) {
  UniqueFd client(::socket(opts.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (client.get() < 0) {
    return std::string("socket: ") + std::strerror(errno);
  }
  if (::connect(client.get(), server.get(), server.len) < 0) {
    return std::string("connect: ") + std::strerror(errno);
  }
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof(peer);
  UniqueFd child(
      ::accept4(listener.fd.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC));
  if (child.get() < 0) {
    return std::string("accept: ") + std::strerror(errno);
  }
  endpoint = {port_of(peer), listener.port};
  const std::size_t n = opts.bytes;
  if (n > 0) {
    if (!write_all(client.get(), buf.data(), n) || !read_all(child.get(), buf.data(), n) ||
        !write_all(child.get(), buf.data(), n) || !read_all(client.get(), buf.data(), n)) {
      return std::string("payload exchange: ") + std::strerror(errno);
    }
  }
  client.reset();
  child.reset();
  return std::nullopt;
}

void run_worker(const Options& opts, const std::vector<Listener>& listeners, StopCondition& stop,
                WorkerResult& result) {
  std::vector<SockAddr> servers;
  for (const Listener& l : listeners) {
    servers.push_back(SockAddr::loopback(opts.ipv6, l.port));
  }
  std::vector<char> buf(std::max<std::size_t>(opts.bytes, 1), 'x');
  const bool record = !opts.record.empty();
  std::size_t next = 0;
  int consecutive_errors = 0;
  while (stop.claim()) {
    Endpoint endpoint;
    auto error = one_connection(opts, listeners[next], servers[next], buf, endpoint);
    next = (next + 1) % listeners.size();
    if (error) {
      ++result.errors;
      if (result.first_error.empty()) {
        result.first_error = *error;
      }
      if (++consecutive_errors >= kMaxConsecutiveErrors) {
        stop.stop();
        break;
      }
      continue;
    }
    consecutive_errors = 0;
    ++result.connections;
    result.lport_min = std::min(result.lport_min, endpoint.client_port);
    result.lport_max = std::max(result.lport_max, endpoint.client_port);
    if (record) {
      result.endpoints.push_back(endpoint);
    }
  }
}

int run(const Options& opts) {
  // Listeners are created before the clock starts and split between the threads, so a thread
  // only ever accepts its own connections.
  const int per_thread = std::max(1, opts.listeners / opts.threads);
  std::vector<std::vector<Listener>> listeners(opts.threads);
  for (int t = 0; t < opts.threads; ++t) {
    for (int i = 0; i < per_thread; ++i) {
      std::uint16_t port = 0;
      if (opts.port != 0) {
        port = static_cast<std::uint16_t>(opts.port + t * per_thread + i);
      }
      listeners[t].push_back(make_listener(opts.ipv6, port));
    }
  }

  std::vector<WorkerResult> results(opts.threads);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(opts.duration));
  StopCondition stop(deadline, opts.connections);
  std::vector<std::thread> threads;
  for (int t = 0; t < opts.threads; ++t) {
    threads.emplace_back(run_worker, std::cref(opts), std::cref(listeners[t]), std::ref(stop),
                         std::ref(results[t]));
  }
  for (auto& th : threads) {
    th.join();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::uint64_t connections = 0;
  std::uint64_t errors = 0;
  std::uint16_t lport_min = UINT16_MAX;
  std::uint16_t lport_max = 0;
  for (const WorkerResult& r : results) {
    connections += r.connections;
    errors += r.errors;
    lport_min = std::min(lport_min, r.lport_min);
    lport_max = std::max(lport_max, r.lport_max);
    if (!r.first_error.empty()) {
      std::cerr << "tcptrail_storm: " << r.errors << " failed connections, first: " << r.first_error
                << "\n";
    }
  }

  if (!opts.record.empty()) {
    std::ofstream out(opts.record);
    const char* addr = opts.ipv6 ? "::1" : "127.0.0.1";
    for (const WorkerResult& r : results) {
      for (const Endpoint& e : r.endpoints) {
        out << addr << ' ' << e.client_port << ' ' << addr << ' ' << e.server_port << '\n';
      }
    }
    if (!out) {
      std::cerr << "tcptrail_storm: cannot write " << opts.record << "\n";
      return 1;
    }
  }

  std::string ports;
  for (const auto& per : listeners) {
    for (const Listener& l : per) {
      ports += (ports.empty() ? "" : ",") + std::to_string(l.port);
    }
  }
  std::string lport_range = "null";
  if (lport_max >= lport_min) {
    lport_range = "[" + std::to_string(lport_min) + "," + std::to_string(lport_max) + "]";
  }
  char line[512];
  std::snprintf(line, sizeof(line),
                "{\"connections\":%llu,\"seconds\":%.6f,\"rate\":%.1f,\"errors\":%llu,"
                "\"threads\":%d,\"family\":\"%s\",\"lport_range\":%s,\"listen_ports\":[%s]}",
                static_cast<unsigned long long>(connections), seconds,
                seconds > 0 ? static_cast<double>(connections) / seconds : 0.0,
                static_cast<unsigned long long>(errors), opts.threads, opts.ipv6 ? "ipv6" : "ipv4",
                lport_range.c_str(), ports.c_str());
  std::cout << line << std::endl;
  return connections > 0 ? 0 : 1;
}

int storm_main(int argc, char** argv) {
  Options opts;
  CLI::App app{"tcptrail_storm: loopback TCP connection storm (connect/accept/write/read/close)"};
  app.add_option("--threads", opts.threads, "worker threads")->check(CLI::Range(1, 256));
  app.add_option("--duration", opts.duration, "seconds to run (fractional ok)")
      ->check(CLI::PositiveNumber);
  app.add_option("--connections", opts.connections,
                 "stop after this many connections in total (overrides --duration)");
  app.add_option("--port", opts.port,
                 "first listener port; listeners use PORT..PORT+N-1 (0: ephemeral)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--listeners", opts.listeners,
                 "listener ports in total, split between threads (more ports, more 4-tuples)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--bytes", opts.bytes, "payload bytes each way");
  app.add_flag("--ipv6", opts.ipv6, "use ::1 instead of 127.0.0.1");
  app.add_option("--record", opts.record,
                 "write 'client_addr client_port server_addr server_port' per connection");
  app.footer("Examples:\n"
             "  tcptrail_storm --duration 5\n"
             "  tcptrail_storm --connections 100000 --record /tmp/storm.txt\n"
             "Exit codes: 0 success, 1 runtime failure or no connection made, 2 bad usage.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (opts.port != 0 && opts.port + opts.listeners > 65536) {
    std::cerr << "tcptrail_storm: --port " << opts.port << " + --listeners " << opts.listeners
              << " exceeds 65535\n";
    return 2;
  }
  return run(opts);
}

}  // namespace

// Any failure, a socket call's or CLI11's, is one line and exit 1.
int main(int argc, char** argv) {
  try {
    return storm_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "tcptrail_storm: " << e.what() << "\n";
    return 1;
  }
}
