// Who owns an accepted socket: a pre-fork server's workers accept on the listener their master
// made and holds, so every record after the accept() must name the worker that serves the
// connection, not the master; the master's name is kept only for the handshake.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

// Two workers, one connection each; each client aborts with RST once it has its reply, so the
// server end dies without its worker ever calling close(): its records can name the worker only
// if the acceptor was recognised.
TEST(OwnerTest, PreforkWorkersOwnWhatTheyAccept) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--prefork", "2", "--count", "1", "--expect", "10",
                                             "--reply", "20", "--close-first", "client"});
  const Json preforked = server.process.wait_event("preforked");
  const int master = server.process.pid();
  const std::vector<int> workers = {preforked["worker0"].get<int>(),
                                    preforked["worker1"].get<int>()};
  Tracer tracer({"--transitions", "--port", std::to_string(server.port)});
  std::map<int, int> worker_of_client_port;
  for (int i = 0; i < 2; ++i) {
    Process client =
        spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port),
                    "--send", "10", "--expect", "20", "--close-first", "client", "--linger0"});
    const int cport = client.wait_event("connected").at("lport").get<int>();
    const Json accepted = server.process.wait_json(
        [cport](const Json& line) {
          return line.value("event", "") == "accepted" && line.value("rport", 0) == cport;
        },
        10s, "the accept of client port " + std::to_string(cport));
    worker_of_client_port[cport] = accepted["pid"].get<int>();
    expect_clean_exit(client);
  }
  expect_clean_exit(server.process);
  tracer.settle(of_type("connection"), 4);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;

  ASSERT_EQ(worker_of_client_port.size(), 2u);
  for (const auto& [cport, worker] : worker_of_client_port) {
    SCOPED_TRACE("client port " + std::to_string(cport));
    EXPECT_TRUE(worker == workers[0] || worker == workers[1]) << worker;
    const Json sv =
        only(stopped.records, socket_record("connection", server.port, cport), "server end");
    EXPECT_EQ(sv["close"], "reset_received") << sv;
    EXPECT_EQ(sv["pid"], worker) << "the worker that accepted it, not the master " << master;
    EXPECT_EQ(sv["comm"], "tt_worker");
    EXPECT_EQ(sv["owner_source"], "acceptor");
    EXPECT_EQ(sv["tx_bytes"], 20);
    EXPECT_EQ(sv["rx_bytes"], 10);
    const auto resets = select(stopped.records, socket_record("reset", server.port, cport));
    ASSERT_FALSE(resets.empty()) << dump_lines(stopped.records);
    for (const Json& r : resets) {
      EXPECT_EQ(r["pid"], worker) << r;
      EXPECT_EQ(r["owner_source"], "acceptor") << r;
    }
    // The handshake came before any worker touched the socket: its owner then was the listener's.
    const auto states = select(stopped.records, socket_record("state", server.port, cport));
    ASSERT_FALSE(states.empty());
    EXPECT_EQ(states.front()["owner_source"], "listener") << states.front();
    EXPECT_EQ(states.front()["pid"], master) << states.front();
  }
}

// A worker whose client left before it answered: the client closes right after connecting,
// the worker's first system call on the socket is its write, and the reply draws the RST of the
// client's orphan, so the socket dies with EPIPE and without the worker's close() (php-fpm
// behind nginx when the client gave up before the script ended). From that write on, its
// records name the worker.
TEST(OwnerTest, PreforkWorkerThatWritesFirstOwnsItsEpipeSocket) {
  TT_REQUIRE_KERNEL();
  const std::vector<std::string> gaps = kernel_gaps();
  if (std::find(gaps.begin(), gaps.end(), "first_write_owner") != gaps.end()) {
    GTEST_SKIP() << "no tcp:tcp_sendmsg_locked on this kernel: a first write names nobody";
  }
  Server server = start_server("127.0.0.1", {"--prefork", "1", "--count", "1", "--hold-ms", "300",
                                             "--reply", "200000", "--close-first", "client"});
  const int worker = server.process.wait_event("preforked")["worker0"].get<int>();
  Tracer tracer({"--port", std::to_string(server.port)});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--close-first", "client", "--orphan"});
  const int cport = client.wait_event("connected").at("lport").get<int>();
  expect_clean_exit(client);
  expect_clean_exit(server.process);  // the worker may die of SIGPIPE; its master exits 0
  tracer.settle(of_type("connection"), 2);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;

  const Json sv =
      only(stopped.records, socket_record("connection", server.port, cport), "server end");
  EXPECT_EQ(sv["close"], "reset_received") << sv;
  EXPECT_EQ(sv["error"], "EPIPE") << "the RST reached it in CLOSE_WAIT: " << sv;
  EXPECT_EQ(sv["pid"], worker) << "the worker, not the master " << server.process.pid();
  EXPECT_EQ(sv["comm"], "tt_worker") << sv;
  EXPECT_EQ(sv["owner_source"], "acceptor") << sv;
  EXPECT_EQ(sv["rx_bytes"], 0) << sv;
  EXPECT_EQ(sv["tx_bytes"], 0) << "the client's orphan answered the reply with an RST: " << sv;
  const Json reset = only(stopped.records, socket_record("reset", server.port, cport), "its RST");
  EXPECT_EQ(reset["direction"], "received") << reset;
  EXPECT_EQ(reset["pid"], worker) << reset;
  EXPECT_EQ(reset["owner_source"], "acceptor") << reset;
}

// A pre-fork server whose one worker drops its connection untouched `hold_ms` after accepting
// it, and the master's pid.
Server start_untouching_server(int hold_ms) {
  return start_server("127.0.0.1", {"--prefork", "1", "--count", "1", "--hold-ms",
                                    std::to_string(hold_ms), "--close-untouched"});
}

// A client that resets its connection at once (SO_LINGER 0); returns its port.
int connect_and_reset(int port) {
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(port),
                               "--close-first", "client", "--linger0"});
  const int cport = client.wait_event("connected").at("lport").get<int>();
  expect_clean_exit(client);
  return cport;
}

// Once the server and both ends' records are done, the tracer's records.
Tracer::Stopped stop_after_server(Server& server, Tracer& tracer) {
  expect_clean_exit(server.process);
  tracer.settle(of_type("connection"), 2);
  Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  return stopped;
}

// `record` names the worker, by the close() that ended its socket.
void expect_closed_by_worker(const Json& record, int worker, int master) {
  EXPECT_EQ(record["pid"], worker)
      << "the worker whose close() ended it, not the master " << master << ": " << record;
  EXPECT_EQ(record["comm"], "tt_worker") << record;
  EXPECT_EQ(record["owner_source"], "syscall") << record;
}

// A worker that had not got to its socket when the client reset it: the kernel closes it in
// softirq, where nothing tells who holds it, so its record waits for the worker's close(),
// which names the worker (as nginx's closes a socket it finds reset).
TEST(OwnerTest, PreforkWorkerIsNamedByItsCloseOfASocketResetBeforeItsTurn) {
  TT_REQUIRE_KERNEL();
  Server server = start_untouching_server(400);
  const int worker = server.process.wait_event("preforked")["worker0"].get<int>();
  Tracer tracer({"--port", std::to_string(server.port)});
  const int cport = connect_and_reset(server.port);
  const Tracer::Stopped stopped = stop_after_server(server, tracer);

  const Json sv =
      only(stopped.records, socket_record("connection", server.port, cport), "server end");
  EXPECT_EQ(sv["close"], "reset_received") << sv;
  expect_closed_by_worker(sv, worker, server.process.pid());
  // Its reset waited with it, and keeps the time it came, ~400 ms before the worker's close().
  const Json reset = only(stopped.records, socket_record("reset", server.port, cport), "its RST");
  EXPECT_EQ(reset["direction"], "received") << reset;
  expect_closed_by_worker(reset, worker, server.process.pid());
  EXPECT_NEAR(ms_of(reset["ts"]), ms_of(sv["ts"]), 50.0) << reset << sv;
  EXPECT_LT(ms_of(sv["ts"]) - ms_of(sv["start"]), 200.0)
      << "reset before the worker's turn: " << sv;
}

// A worker that drops a connection whose request it never read: close() with data unread aborts
// it, in the worker's system call, which names the worker.
TEST(OwnerTest, PreforkWorkerIsNamedByItsAbortOfAnUnreadSocket) {
  TT_REQUIRE_KERNEL();
  Server server = start_untouching_server(300);
  const int worker = server.process.wait_event("preforked")["worker0"].get<int>();
  Tracer tracer({"--port", std::to_string(server.port)});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--send", "10", "--expect", "20"});
  const int cport = client.wait_event("connected").at("lport").get<int>();
  EXPECT_TRUE(client.wait(10s).has_value());
  const Tracer::Stopped stopped = stop_after_server(server, tracer);

  const Json sv =
      only(stopped.records, socket_record("connection", server.port, cport), "server end");
  EXPECT_EQ(sv["close"], "reset_sent") << sv;
  expect_closed_by_worker(sv, worker, server.process.pid());
}

// A record waiting for its holder's close() is not kept from the log for long: after a second it
// goes naming the listener's owner, marked so, and the close() that comes later adds nothing.
TEST(OwnerTest, RecordOfAnUntouchedSocketGoesAfterASecondAndOnce) {
  TT_REQUIRE_KERNEL();
  Server server = start_untouching_server(8000);
  server.process.wait_event("preforked");
  const int master = server.process.pid();
  Tracer tracer({"--port", std::to_string(server.port)});
  const int cport = connect_and_reset(server.port);
  const Json sv = tracer
                      .wait_for(socket_record("connection", server.port, cport),
                                "the server end's record while its worker holds it", 1, 5s)
                      .front();
  EXPECT_EQ(sv["close"], "reset_received") << sv;
  EXPECT_EQ(sv["pid"], master) << sv;
  EXPECT_EQ(sv["owner_source"], "listener") << sv;
  expect_clean_exit(server.process);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  only(stopped.records, socket_record("connection", server.port, cport), "server end");
  const Json reset = only(stopped.records, socket_record("reset", server.port, cport), "its RST");
  EXPECT_EQ(reset["pid"], master) << reset;
  EXPECT_EQ(reset["owner_source"], "listener") << reset;
}

// Nor is it lost when tracing ends first.
TEST(OwnerTest, RecordOfAnUntouchedSocketGoesAtExit) {
  TT_REQUIRE_KERNEL();
  Server server = start_untouching_server(3000);
  server.process.wait_event("preforked");
  Tracer tracer({"--port", std::to_string(server.port)});
  const int cport = connect_and_reset(server.port);
  tracer.settle(socket_record("connection", cport, server.port));
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  const Json sv =
      only(stopped.records, socket_record("connection", server.port, cport), "server end");
  EXPECT_EQ(sv["close"], "reset_received") << sv;
  EXPECT_EQ(sv["pid"], server.process.pid()) << sv;
  EXPECT_EQ(sv["owner_source"], "listener") << sv;
  const Json reset = only(stopped.records, socket_record("reset", server.port, cport), "its RST");
  EXPECT_EQ(reset["owner_source"], "listener") << reset;
}

// More records waiting than the collector looks at in one pass (256): all go, each once.
TEST(OwnerTest, ManyRecordsOfUntouchedSocketsAllGoOnce) {
  TT_REQUIRE_KERNEL();
  constexpr std::size_t kSockets = 270;
  Server server = start_server("127.0.0.1", {"--fork", "--count", std::to_string(kSockets),
                                             "--hold-ms", "9000", "--close-untouched"});
  Tracer tracer({"--port", std::to_string(server.port)});
  Process client =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--count",
                  std::to_string(kSockets), "--close-first", "client", "--linger0"});
  expect_clean_exit(client);
  const Predicate served = [port = server.port](const Json& r) {
    return r["type"] == "connection" && r["role"] == "server" && r["lport"] == port;
  };
  for (const Json& r : tracer.wait_for(
           served, "the server ends' records while their workers hold them", kSockets, 6s)) {
    EXPECT_EQ(r["owner_source"], "listener") << r;
  }
  expect_clean_exit(server.process);
  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  EXPECT_EQ(select(stopped.records, served).size(), kSockets);
}

// The children of `parent`, from /proc/PID/stat (field 4 is the parent).
std::set<int> children_of(int parent) {
  std::set<int> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) {
      continue;
    }
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) {
      children.insert(std::stoi(name));
    }
  }
  return children;
}

// One keep-alive HTTP request, its response read, then an abort (RST) by the client: the
// socket nginx holds dies without a close() by its worker.
void request_then_reset(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET / HTTP/1.1\r\nHost: tcptrail\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  char reply[512];
  ASSERT_GT(read(fd, reply, sizeof(reply)), 0);
  const linger abort{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  close(fd);
}

// Real nginx, a master and two workers: what the issue found blamed on the master. With
// `reuseport`, an SO_REUSEPORT group: one listener per worker, all made by the master.
class NginxOwnerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NginxOwnerTest, WorkersOwnTheKeepAliveSocketsTheirClientsReset) {
  TT_REQUIRE_KERNEL();
  const std::string listen_options = GetParam() == "reuseport" ? " reuseport" : "";
  TT_SKIP_OR_FAIL_IF(access("/usr/sbin/nginx", X_OK) == 0
                         ? ""
                         : "nginx is not installed (apt-get install nginx-light)");
  char dir_template[] = "/tmp/tcptrail-nginx-XXXXXX";
  const std::filesystem::path dir = mkdtemp(dir_template);
  const int port = free_port();
  {
    std::ofstream conf(dir / "nginx.conf");
    conf << "daemon off; master_process on; worker_processes 2; pid "
         << (dir / "nginx.pid").string() << "; error_log " << (dir / "error.log").string() << ";\n"
         << "events { worker_connections 64; }\n"
         << "http { access_log off; client_body_temp_path " << dir.string() << ";\n"
         << "  server { listen 127.0.0.1:" << port << listen_options << "; keepalive_timeout 60s;\n"
         << "    location / { return 200 \"ok\\n\"; } } }\n";
  }
  Process nginx(SpawnOptions{{"/usr/sbin/nginx", "-e", (dir / "error.log").string(), "-p",
                              dir.string(), "-c", (dir / "nginx.conf").string()},
                             {},
                             false,
                             {}});
  std::set<int> workers;
  for (int i = 0; i < 100 && workers.size() < 2; ++i) {
    std::this_thread::sleep_for(50ms);
    workers = children_of(nginx.pid());
  }
  ASSERT_EQ(workers.size(), 2u) << nginx.err();
  Tracer tracer({"--port", std::to_string(port)});
  constexpr std::size_t kRequests = 6;
  for (std::size_t i = 0; i < kRequests; ++i) {
    request_then_reset(port);
  }
  tracer.settle(of_type("connection"), 2 * kRequests);
  const Tracer::Stopped stopped = tracer.stop();
  nginx.send_signal(SIGQUIT);  // graceful: the workers finish and the master reaps them
  EXPECT_TRUE(nginx.wait(10s).has_value());
  std::filesystem::remove_all(dir);

  const auto served = select(stopped.records, [port](const Json& r) {
    return r["type"] == "connection" && r["role"] == "server" && r["lport"] == port;
  });
  ASSERT_EQ(served.size(), kRequests) << dump_lines(stopped.records);
  for (const Json& r : served) {
    EXPECT_EQ(r["close"], "reset_received") << r;
    EXPECT_TRUE(workers.contains(r["pid"].get<int>()))
        << "a worker, not the master " << nginx.pid() << ": " << r;
    EXPECT_EQ(r["comm"], "nginx") << r;
    EXPECT_EQ(r["owner_source"], "acceptor") << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Nginx, NginxOwnerTest, ::testing::Values("one_listener", "reuseport"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tt
