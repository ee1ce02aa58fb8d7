// Filters: the same workload (an IPv4 and an IPv6 connection, four processes) under one filter
// per test; each must report exactly the sockets its filter selects, with their owners.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

// One end of one connection of the workload.
struct End {
  int pid = 0;
  std::string comm;
  int lport = 0;
  int rport = 0;
  [[nodiscard]] bool matches(const Json& r) const {
    return r.value("lport", -1) == lport && r.value("rport", -1) == rport;
  }
};

// The four ends of the workload: a: tt_client -> tt_server over 127.0.0.1; b: tt_other ->
// tt_server over ::1. Pids and server ports are known before tracing starts; client ports
// after.
struct Ends {
  End a_client, a_server, b_client, b_server;
  int server4_port = 0;
  int server6_port = 0;
};

using MakeArgs = std::function<std::vector<std::string>(const Ends&)>;

// Runs the workload under `tcptrail trace --json <make_args(ends)>` and returns what it wrote.
Tracer::Stopped run_filtered(const MakeArgs& make_args, Ends& ends, std::string& command) {
  const std::vector<std::string> server_args = {"--count", "1",   "--expect",      "100",
                                                "--reply", "200", "--close-first", "client"};
  Server s4 = start_server("127.0.0.1", server_args);
  Server s6 = start_server("::1", server_args);
  Process a = spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(s4.port),
                          "--send", "100", "--expect", "200", "--wait-stdin"},
                         {}, true);
  Process b = spawn_peer({"client", "--addr", "::1", "--port", std::to_string(s6.port), "--send",
                          "100", "--expect", "200", "--wait-stdin", "--name", "tt_other"},
                         {}, true);
  a.wait_event("ready");
  b.wait_event("ready");
  ends.server4_port = s4.port;
  ends.server6_port = s6.port;
  ends.a_client = {a.pid(), "tt_client", 0, s4.port};
  ends.a_server = {s4.process.pid(), "tt_server", s4.port, 0};
  ends.b_client = {b.pid(), "tt_other", 0, s6.port};
  ends.b_server = {s6.process.pid(), "tt_server", s6.port, 0};
  const std::vector<std::string> args = make_args(ends);
  for (const auto& arg : args) {
    command += " " + arg;
  }
  Tracer tracer(args);
  a.write_stdin("\n");
  b.write_stdin("\n");
  const int a_port = tcp_info(a)["lport"].get<int>();
  const int b_port = tcp_info(b)["lport"].get<int>();
  for (Process* p : {&a, &b, &s4.process, &s6.process}) {
    expect_clean_exit(*p);
  }
  ends.a_client.lport = ends.a_server.rport = a_port;
  ends.b_client.lport = ends.b_server.rport = b_port;
  // Time for records to stream out; the final drain must deliver them anyway.
  tracer.settle([&](const Json& r) {
    return r["type"] == "connection" && (r["lport"] == a_port || r["lport"] == b_port);
  });
  return tracer.stop();
}

class FilterTest : public ::testing::Test {
protected:
  // `included` ends are each reported once with their owner, `excluded` ends not at all, and
  // every record satisfies `rule` (other traffic on the host included).
  static void check(const MakeArgs& make_args,
                    const std::function<std::vector<const End*>(const Ends&)>& included,
                    const std::function<std::vector<const End*>(const Ends&)>& excluded,
                    const std::function<bool(const Ends&, const Json&)>& rule) {
    Ends ends;
    std::string command = "tcptrail trace --json";
    const Tracer::Stopped stopped = run_filtered(make_args, ends, command);
    SCOPED_TRACE(command);
    EXPECT_EQ(stopped.status.exit_code, 0) << stopped.status.describe() << " " << stopped.err;
    const std::vector<Json> conns = select(stopped.records, of_type("connection"));
    for (const End* end : included(ends)) {
      const auto found = select(conns, [end](const Json& r) { return end->matches(r); });
      ASSERT_EQ(found.size(), 1U) << "end " << end->comm << " :" << end->lport
                                  << " -> :" << end->rport << "\n"
                                  << dump_lines(conns);
      EXPECT_EQ(found[0]["pid"], end->pid) << found[0];
      EXPECT_EQ(found[0]["comm"], end->comm) << found[0];
    }
    for (const End* end : excluded(ends)) {
      EXPECT_TRUE(select(conns, [end](const Json& r) { return end->matches(r); }).empty())
          << "end " << end->comm << " :" << end->lport << " -> :" << end->rport
          << " must be filtered out\n"
          << dump_lines(conns);
    }
    for (const Json& r :
         select(stopped.records, [](const Json& r) { return r.contains("conn_id"); })) {
      EXPECT_TRUE(rule(ends, r)) << "record outside the filter: " << r;
    }
  }

  void SetUp() override { TT_REQUIRE_KERNEL(); }
};

using Selected = std::vector<const End*>;

TEST_F(FilterTest, PidOfServerFollowsOwnerNotCpu) {
  // The server end's SYN_RECV and ESTABLISHED fire in softirq, on the client's CPU time.
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"-p", std::to_string(e.a_server.pid)};
      },
      [](const Ends& e) { return Selected{&e.a_server}; },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.b_client, &e.b_server};
      },
      [](const Ends& e, const Json& r) { return r["pid"] == e.a_server.pid; });
}

TEST_F(FilterTest, PidOfClient) {
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"--pid", std::to_string(e.a_client.pid)};
      },
      [](const Ends& e) { return Selected{&e.a_client}; },
      [](const Ends& e) {
        return Selected{&e.a_server, &e.b_client, &e.b_server};
      },
      [](const Ends& e, const Json& r) { return r["pid"] == e.a_client.pid; });
}

TEST_F(FilterTest, PidRepeated) {
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"-p", std::to_string(e.a_client.pid), "-p",
                                        std::to_string(e.b_server.pid)};
      },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.b_server};
      },
      [](const Ends& e) {
        return Selected{&e.a_server, &e.b_client};
      },
      [](const Ends& e, const Json& r) {
        return r["pid"] == e.a_client.pid || r["pid"] == e.b_server.pid;
      });
}

TEST_F(FilterTest, PortEitherSide) {
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"--port", std::to_string(e.server4_port)};
      },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.a_server};
      },
      [](const Ends& e) {
        return Selected{&e.b_client, &e.b_server};
      },
      [](const Ends& e, const Json& r) {
        return r["lport"] == e.server4_port || r["rport"] == e.server4_port;
      });
}

TEST_F(FilterTest, LocalPort) {
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"--lport", std::to_string(e.server4_port)};
      },
      [](const Ends& e) { return Selected{&e.a_server}; },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.b_client, &e.b_server};
      },
      [](const Ends& e, const Json& r) { return r["lport"] == e.server4_port; });
}

TEST_F(FilterTest, RemotePort) {
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"--rport", std::to_string(e.server4_port)};
      },
      [](const Ends& e) { return Selected{&e.a_client}; },
      [](const Ends& e) {
        return Selected{&e.a_server, &e.b_client, &e.b_server};
      },
      [](const Ends& e, const Json& r) { return r["rport"] == e.server4_port; });
}

TEST_F(FilterTest, AddressCidr) {
  check(
      [](const Ends&) {
        return std::vector<std::string>{"--addr", "127.0.0.0/8"};
      },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.a_server};
      },
      [](const Ends& e) {
        return Selected{&e.b_client, &e.b_server};
      },
      [](const Ends&, const Json& r) {
        return r["laddr"].get<std::string>().rfind("127.", 0) == 0 ||
               r["raddr"].get<std::string>().rfind("127.", 0) == 0;
      });
}

TEST_F(FilterTest, AddressIpv6) {
  check(
      [](const Ends&) {
        return std::vector<std::string>{"--addr", "::1"};
      },
      [](const Ends& e) {
        return Selected{&e.b_client, &e.b_server};
      },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.a_server};
      },
      [](const Ends&, const Json& r) { return r["laddr"] == "::1" || r["raddr"] == "::1"; });
}

TEST_F(FilterTest, Ipv4Only) {
  check([](const Ends&) { return std::vector<std::string>{"-4"}; },
        [](const Ends& e) {
          return Selected{&e.a_client, &e.a_server};
        },
        [](const Ends& e) {
          return Selected{&e.b_client, &e.b_server};
        },
        [](const Ends&, const Json& r) { return r["family"] == "ipv4"; });
}

TEST_F(FilterTest, Ipv6Only) {
  check([](const Ends&) { return std::vector<std::string>{"-6"}; },
        [](const Ends& e) {
          return Selected{&e.b_client, &e.b_server};
        },
        [](const Ends& e) {
          return Selected{&e.a_client, &e.a_server};
        },
        [](const Ends&, const Json& r) { return r["family"] == "ipv6"; });
}

TEST_F(FilterTest, Comm) {
  check(
      [](const Ends&) {
        return std::vector<std::string>{"--comm", "tt_other"};
      },
      [](const Ends& e) { return Selected{&e.b_client}; },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.a_server, &e.b_server};
      },
      [](const Ends&, const Json& r) { return r["comm"] == "tt_other"; });
}

TEST_F(FilterTest, FiltersCombineWithAnd) {
  check(
      [](const Ends& e) {
        return std::vector<std::string>{"--comm", "tt_client", "--port",
                                        std::to_string(e.server6_port)};
      },
      [](const Ends&) { return Selected{}; },
      [](const Ends& e) {
        return Selected{&e.a_client, &e.a_server, &e.b_client, &e.b_server};
      },
      [](const Ends& e, const Json& r) {
        return r["comm"] == "tt_client" &&
               (r["lport"] == e.server6_port || r["rport"] == e.server6_port);
      });
}

}  // namespace
}  // namespace tt
