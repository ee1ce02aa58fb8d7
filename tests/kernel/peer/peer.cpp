// Workload for the kernel tests: one end of a TCP connection per process, so that tcptrail has
// to attribute each end to its own owner. Prints one JSON object per line on stdout (what it did,
// its ports, and the kernel's own TCP_INFO numbers for the socket), diagnostics on stderr.
//
//   tcptrail_test_peer server --addr A [--port P] [--port-file F] [--count N] [--expect BYTES]
//                             [--reply BYTES] [--close-first server|client] [--close-delay-ms MS]
//                             [--linger0] [--no-read] [--hold-ms MS] [--name COMM]
//                             [--fork | --prefork N] [--worker-name COMM] [--no-wait]
//                             [--close-listener] [--close-untouched]
//     --close-untouched: once --hold-ms is over, close() without reading or writing (a worker
//       that drops a connection it has not got to; with data unread that is an abort)
//     --close-listener: close the listener once the last of --count connections is accepted
//       (a server that stopped listening, as in a reload, while its connections live on)
//     --no-read: never read; once --expect bytes are queued, print "holding" and wait forever
//     --close-delay-ms: on the passive side, prints "peer_closed" once the peer's FIN was read,
//       then keeps the descriptor (CLOSE_WAIT) that long before closing
//     --fork: each accepted connection is served by a forked worker (comm --worker-name, default
//       tt_worker; dies with the parent); the parent prints "forked" with the worker's pid,
//       closes its copy of the descriptor and waits for all workers before "done"
//     --no-wait: close() right after the last shutdown instead of waiting for CLOSE (LAST_ACK
//       ends orphaned; the TCP_INFO printed is not final): a server that keeps up with a burst
//     --prefork N: a pre-fork server (nginx, php-fpm): the parent listens, then forks N workers
//       (comm --worker-name) that each accept and serve --count connections; the parent keeps
//       the listener, prints "preforked" with the workers' pids and waits for them; "accepted"
//       names the worker's pid
//   tcptrail_test_peer client --addr A --port P [--count N] [--send BYTES] [--expect BYTES]
//                             [--close-first server|client] [--close-delay-ms MS] [--linger0]
//                             [--hold-ms MS] [--nonblocking] [--connect-timeout-ms MS]
//                             [--wait-stdin] [--wait-stdin-after] [--name COMM] [--orphan]
//     --orphan: the active side close()s right after its shutdown, without waiting for the
//       peer: the kernel finishes the socket as an orphan (FIN_WAIT2 in a timewait sock)
//     --wait-stdin-after: once done, wait for a line on stdin before exiting (a process that
//       outlives its connections, as servers and pools do)
//   bulk-send = client --close-first client, bulk-recv = server --close-first client.
//
// Ends close with shutdown(SHUT_WR) and keep the descriptor until the kernel moved the socket to
// CLOSE, so the TCP_INFO printed is the final one (bytes_acked then counts the acked FIN) and
// matches what a tracer reads at the CLOSE transition. --linger0 closes with SO_LINGER {1,0}
// instead (RST), after the other end's FIN when that end closes first; TCP_INFO is then read
// just before close().
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h>  // the full tcp_info; glibc's copy is older
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Args {
  std::string mode;
  std::string addr = "127.0.0.1";
  int port = 0;
  std::string port_file;
  int count = 1;
  long long send = 0;    // bytes this end writes once connected
  long long expect = 0;  // bytes this end reads before it sends
  std::string close_first = "client";
  int close_delay_ms = 0;  // passive side: wait this long after the peer's FIN before closing
  int hold_ms = 0;         // wait this long once established, before any data
  bool linger0 = false;
  bool no_read = false;
  bool close_untouched = false;
  bool nonblocking = false;
  int connect_timeout_ms = 0;
  bool wait_stdin = false;
  bool wait_stdin_after = false;
  std::string name;
  bool fork_worker = false;
  int prefork = 0;
  std::string worker_name = "tt_worker";
  bool no_wait = false;
  bool orphan = false;
  bool close_listener = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "tcptrail_test_peer: %s\n", why.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  if (argc < 2) {
    usage("missing mode (server, client, bulk-send, bulk-recv)");
  }
  Args a;
  a.mode = argv[1];
  if (a.mode == "bulk-send") {
    a.mode = "client";
  } else if (a.mode == "bulk-recv") {
    a.mode = "server";
  } else if (a.mode != "server" && a.mode != "client") {
    usage("unknown mode " + a.mode);
  }
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(std::string(flag) + " needs a value");
      }
      return argv[++i];
    };
    if (flag == "--addr") {
      a.addr = value();
    } else if (flag == "--port") {
      a.port = std::stoi(value());
    } else if (flag == "--port-file") {
      a.port_file = value();
    } else if (flag == "--count") {
      a.count = std::stoi(value());
    } else if (flag == "--send" || flag == "--reply") {
      a.send = std::stoll(value());
    } else if (flag == "--expect") {
      a.expect = std::stoll(value());
    } else if (flag == "--close-first") {
      a.close_first = value();
      if (a.close_first != "server" && a.close_first != "client") {
        usage("--close-first takes server or client");
      }
    } else if (flag == "--close-delay-ms") {
      a.close_delay_ms = std::stoi(value());
    } else if (flag == "--hold-ms") {
      a.hold_ms = std::stoi(value());
    } else if (flag == "--linger0") {
      a.linger0 = true;
    } else if (flag == "--no-read") {
      a.no_read = true;
    } else if (flag == "--close-untouched") {
      a.close_untouched = true;
    } else if (flag == "--nonblocking") {
      a.nonblocking = true;
    } else if (flag == "--connect-timeout-ms") {
      a.connect_timeout_ms = std::stoi(value());
      a.nonblocking = true;
    } else if (flag == "--wait-stdin") {
      a.wait_stdin = true;
    } else if (flag == "--wait-stdin-after") {
      a.wait_stdin_after = true;
    } else if (flag == "--name") {
      a.name = value();
    } else if (flag == "--fork") {
      a.fork_worker = true;
    } else if (flag == "--prefork") {
      a.prefork = std::stoi(value());
    } else if (flag == "--worker-name") {
      a.worker_name = value();
    } else if (flag == "--no-wait") {
      a.no_wait = true;
    } else if (flag == "--orphan") {
      a.orphan = true;
    } else if (flag == "--close-listener") {
      a.close_listener = true;
    } else {
      usage("unknown flag " + std::string(flag));
    }
  }
  return a;
}

const char* errno_name(int err) {
  switch (err) {
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ECONNRESET:
      return "ECONNRESET";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EPIPE:
      return "EPIPE";
    case EHOSTUNREACH:
      return "EHOSTUNREACH";
    case ENETUNREACH:
      return "ENETUNREACH";
    case ECONNABORTED:
      return "ECONNABORTED";
    case EADDRNOTAVAIL:
      return "EADDRNOTAVAIL";
    default:
      return "EOTHER";
  }
}

// One JSON line per event, printed by emit(); values are numbers or plain ASCII strings, so no
// escaping is needed.
class Line {
public:
  explicit Line(const char* event) {
    text_ = R"({"event":")";
    text_ += event;
    text_ += R"(","pid":)" + std::to_string(getpid());
  }
  Line& num(const char* key, long long v) {
    text_ += ",\"" + std::string(key) + "\":" + std::to_string(v);
    return *this;
  }
  Line& str(const char* key, const std::string& v) {
    text_ += ",\"" + std::string(key) + "\":\"" + v + "\"";
    return *this;
  }
  Line& boolean(const char* key, bool v) {
    text_ += ",\"" + std::string(key) + "\":" + (v ? "true" : "false");
    return *this;
  }
  void emit() {
    text_ += "}\n";
    std::fputs(text_.c_str(), stdout);
    std::fflush(stdout);
  }

private:
  std::string text_;
};

struct Endpoint {
  std::string addr;
  int port = 0;
};

Endpoint endpoint_of(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    e.port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    e.port = ntohs(in6->sin6_port);
  }
  e.addr = text;
  return e;
}

Endpoint local_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return endpoint_of(ss);
}

Endpoint remote_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return {};
  }
  return endpoint_of(ss);
}

socklen_t make_address(const std::string& addr, int port, sockaddr_storage& ss) {
  ss = {};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, addr.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(port));
    return sizeof(sockaddr_in6);
  }
  usage("bad address " + addr);
}

tcp_info info_of(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
  return info;
}

void sleep_ms(int ms) {
  if (ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
}

// The kernel's view of the socket, printed as the last word on it.
void print_info(const char* role, int fd, const Endpoint& local, const Endpoint& remote,
                int index) {
  const tcp_info info = info_of(fd);
  std::uint64_t cookie = 0;  // the kernel's socket cookie, as BPF reads it
  socklen_t cookie_len = sizeof(cookie);
  getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &cookie_len);
  Line("tcp_info")
      .str("role", role)
      .num("index", index)
      .str("cookie", std::to_string(cookie))
      .str("laddr", local.addr)
      .num("lport", local.port)
      .str("raddr", remote.addr)
      .num("rport", remote.port)
      .num("state", info.tcpi_state)
      .boolean("final", info.tcpi_state == 7 /* TCP_CLOSE */)
      .num("bytes_acked", static_cast<long long>(info.tcpi_bytes_acked))
      .num("bytes_received", static_cast<long long>(info.tcpi_bytes_received))
      .num("bytes_sent", static_cast<long long>(info.tcpi_bytes_sent))
      .num("total_retrans", info.tcpi_total_retrans)
      .num("segs_out", info.tcpi_segs_out)
      .emit();
}

constexpr long long kChunk = 1 << 16;

bool write_all(int fd, long long bytes, const char* role) {
  static std::vector<char> buffer(kChunk, 'x');
  while (bytes > 0) {
    const auto chunk = static_cast<std::size_t>(std::min(bytes, kChunk));
    const ssize_t n = write(fd, buffer.data(), chunk);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Line("error").str("role", role).str("op", "write").str("errno", errno_name(errno)).emit();
      return false;
    }
    bytes -= n;
  }
  return true;
}

// Reads exactly `bytes`, or until EOF when bytes < 0. Returns false on error or early EOF.
bool read_bytes(int fd, long long bytes, const char* role) {
  static std::vector<char> buffer(kChunk);
  while (bytes != 0) {
    const auto want = static_cast<std::size_t>(bytes < 0 ? kChunk : std::min(bytes, kChunk));
    const ssize_t n = read(fd, buffer.data(), want);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Line("error").str("role", role).str("op", "read").str("errno", errno_name(errno)).emit();
      return false;
    }
    if (n == 0) {
      if (bytes < 0) {
        return true;
      }
      Line("error").str("role", role).str("op", "read").str("errno", "EOF").emit();
      return false;
    }
    if (bytes > 0) {
      bytes -= n;
    }
  }
  return true;
}

constexpr std::uint8_t kTcpClose = 7;
constexpr std::uint8_t kTcpCloseWait = 8;

// Waits (5 s at most) until the socket reaches `state`.
void wait_for_state(int fd, std::uint8_t state) {
  for (int i = 0; i < 500 && info_of(fd).tcpi_state != state; ++i) {
    sleep_ms(10);
  }
}

// Data exchange and close, the same for both ends once connected.
void converse(const Args& a, int fd, const char* role, int index) {
  const Endpoint local = local_of(fd);
  const Endpoint remote = remote_of(fd);
  const bool is_server = std::string_view(role) == "server";
  sleep_ms(a.hold_ms);
  if (a.close_untouched) {
    Line("closing").str("role", role).str("how", "untouched").num("lport", local.port).emit();
    close(fd);
    return;
  }
  // The client talks first; the server answers once it has read what it expects.
  if (!is_server && !write_all(fd, a.send, role)) {
    print_info(role, fd, local, remote, index);
    close(fd);
    return;
  }
  if (a.no_read) {
    // Until --expect bytes sit unread in the receive queue; then wait to be killed.
    int unread = 0;
    for (int i = 0; i < 500 && (ioctl(fd, FIONREAD, &unread) != 0 || unread < a.expect); ++i) {
      sleep_ms(10);
    }
    Line("holding")
        .str("role", role)
        .num("lport", local.port)
        .num("rport", remote.port)
        .num("unread", unread)
        .emit();
    for (;;) {
      pause();
    }
  }
  if (!read_bytes(fd, a.expect, role)) {
    print_info(role, fd, local, remote, index);
    close(fd);
    return;
  }
  if (is_server && !write_all(fd, a.send, role)) {
    print_info(role, fd, local, remote, index);
    close(fd);
    return;
  }
  if (a.linger0) {
    // When the other end closes first, its FIN comes before the abort, not between the
    // TCP_INFO read and close(), where it would count in bytes_received unseen.
    if (a.close_first != role) {
      wait_for_state(fd, kTcpCloseWait);
    }
    const linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    print_info(role, fd, local, remote, index);
    Line("closing").str("role", role).str("how", "linger0").num("lport", local.port).emit();
    close(fd);
    return;
  }
  const bool active = a.close_first == role;
  if (active && a.orphan) {
    Line("closing").str("role", role).str("how", "orphan").num("lport", local.port).emit();
    close(fd);
    return;
  }
  if (active) {
    Line("closing").str("role", role).str("how", "active").num("lport", local.port).emit();
    shutdown(fd, SHUT_WR);
    read_bytes(fd, -1, role);
  } else {
    const bool eof = read_bytes(fd, -1, role);
    if (a.close_delay_ms > 0) {
      Line("peer_closed")
          .str("role", role)
          .num("lport", local.port)
          .num("rport", remote.port)
          .boolean("eof", eof)
          .emit();
    }
    sleep_ms(a.close_delay_ms);
    Line("closing").str("role", role).str("how", "passive").num("lport", local.port).emit();
    if (eof) {
      shutdown(fd, SHUT_WR);
    }
  }
  if (!a.no_wait) {
    wait_for_state(fd, kTcpClose);
  }
  print_info(role, fd, local, remote, index);
  close(fd);
}

int serve(const Args& a, int listener);

int run_server(const Args& a) {
  sockaddr_storage ss{};
  const socklen_t len = make_address(a.addr, a.port, ss);
  const int listener = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6) {
    setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  // The longest accept queue the kernel allows (net.core.somaxconn): a burst of --count
  // connects that outruns the server must not overflow it. An overflow drops SYNs, each retried
  // a second later by the client's retransmit timer: slower, and not what a test asked for.
  if (bind(listener, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(listener, SOMAXCONN) != 0) {
    std::fprintf(stderr, "tcptrail_test_peer: bind/listen %s: %s\n", a.addr.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const Endpoint local = local_of(listener);
  if (!a.port_file.empty()) {
    // Written whole, then renamed, so a reader never sees half a number.
    const std::string tmp = a.port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", local.port);
      std::fclose(f);
      std::rename(tmp.c_str(), a.port_file.c_str());
    }
  }
  Line("listening").str("addr", local.addr).num("port", local.port).emit();
  if (a.prefork > 0) {
    std::vector<pid_t> workers;
    for (int w = 0; w < a.prefork; ++w) {
      std::fflush(stdout);
      const pid_t worker = fork();
      if (worker == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_NAME, a.worker_name.c_str(), 0, 0, 0);
        Args served = a;
        served.prefork = 0;
        _exit(serve(served, listener));
      }
      workers.push_back(worker);
    }
    Line preforked("preforked");
    for (std::size_t w = 0; w < workers.size(); ++w) {
      preforked.num(("worker" + std::to_string(w)).c_str(), workers[w]);
    }
    preforked.emit();
    while (wait(nullptr) > 0 || errno == EINTR) {
    }
    close(listener);
    Line("done").emit();
    return 0;
  }
  const int status = serve(a, listener);
  if (!a.close_listener) {
    close(listener);
  }
  if (status == 0) {
    Line("done").emit();
  }
  return status;
}

// Accepts and serves --count connections on listener.
int serve(const Args& a, int listener) {
  for (int i = 0; i < a.count; ++i) {
    const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      Line("error")
          .str("role", "server")
          .str("op", "accept")
          .str("errno", errno_name(errno))
          .emit();
      return 1;
    }
    if (a.close_listener && i + 1 == a.count) {
      close(listener);
    }
    const Endpoint l = local_of(fd);
    const Endpoint r = remote_of(fd);
    Line("accepted")
        .num("pid", getpid())
        .num("index", i)
        .num("lport", l.port)
        .str("raddr", r.addr)
        .num("rport", r.port)
        .emit();
    if (a.fork_worker) {
      const pid_t worker = fork();
      if (worker == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_NAME, a.worker_name.c_str(), 0, 0, 0);
        close(listener);
        converse(a, fd, "server", i);
        std::fflush(stdout);
        _exit(0);
      }
      close(fd);  // only the worker holds the connection now
      Line("forked")
          .num("index", i)
          .num("worker", worker)
          .num("lport", l.port)
          .num("rport", r.port)
          .emit();
      continue;
    }
    converse(a, fd, "server", i);
  }
  if (a.fork_worker) {
    while (wait(nullptr) > 0 || errno == EINTR) {
    }
  }
  return 0;
}

// Connects; returns the socket, or -1 after printing why it failed.
int connect_once(const Args& a, int index) {
  sockaddr_storage ss{};
  const socklen_t len = make_address(a.addr, a.port, ss);
  const int fd =
      socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (a.nonblocking ? SOCK_NONBLOCK : 0), 0);
  int err = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    err = errno;
  }
  const Endpoint early = local_of(fd);
  if (err == EINPROGRESS) {
    Line("connecting").num("index", index).num("lport", early.port).emit();
    pollfd p{fd, POLLOUT, 0};
    const int ready = poll(&p, 1, a.connect_timeout_ms > 0 ? a.connect_timeout_ms : -1);
    if (ready == 0) {
      // The application gives up before the kernel does.
      Line("connect_failed")
          .num("index", index)
          .num("lport", early.port)
          .str("errno", "TIMEOUT_APP")
          .num("total_retrans", info_of(fd).tcpi_total_retrans)
          .emit();
      close(fd);
      return -1;
    }
    socklen_t elen = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  }
  if (err != 0) {
    Line("connect_failed")
        .num("index", index)
        .num("lport", early.port)
        .str("errno", errno_name(err))
        .num("total_retrans", info_of(fd).tcpi_total_retrans)
        .emit();
    close(fd);
    return -1;
  }
  if (a.nonblocking) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  }
  const Endpoint l = local_of(fd);
  Line("connected")
      .num("index", index)
      .str("laddr", l.addr)
      .num("lport", l.port)
      .num("rport", a.port)
      .emit();
  return fd;
}

void read_line_from_stdin() {
  char c = 0;
  while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n') {
  }
}

int run_client(const Args& a) {
  if (a.wait_stdin) {
    Line("ready").emit();
    read_line_from_stdin();
  }
  int failures = 0;
  for (int i = 0; i < a.count; ++i) {
    const int fd = connect_once(a, i);
    if (fd < 0) {
      ++failures;
      continue;
    }
    converse(a, fd, "client", i);
  }
  Line("done").num("failures", failures).emit();
  if (a.wait_stdin_after) {
    read_line_from_stdin();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (a.name.empty()) {
    a.name = a.mode == "server" ? "tt_server" : "tt_client";
  }
  // Before any socket exists: tracers read comm when the socket is made.
  prctl(PR_SET_NAME, a.name.c_str(), 0, 0, 0);
  return a.mode == "server" ? run_server(a) : run_client(a);
}
