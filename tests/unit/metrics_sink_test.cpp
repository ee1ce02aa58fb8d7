#include "sinks/metrics_sink.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/metrics_server.hpp"
#include "record_fixtures.hpp"

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

Connection closed(Role role, CloseKind close, std::uint16_t lport) {
  Connection conn;
  conn.laddr = ipv4(127, 0, 0, 1);
  conn.raddr = ipv4(127, 0, 0, 1);
  conn.lport = lport;
  conn.rport = role == Role::kServer ? 40000 : 8080;
  conn.role = role;
  conn.close = close;
  conn.first_ns = 1000 * kMs;
  conn.end_ns = 1250 * kMs;  // 0.25 s
  conn.has_handshake = true;
  conn.handshake_us = 2000;  // 2 ms
  return conn;
}

// The value of the sample whose name and labels are exactly `series`; -1 if there is none.
double value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series + " ")) {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

TEST(MetricsSinkTest, CountsConnectionsByRoleCloseAndServicePort) {
  MetricsSink sink;
  const Connection server = closed(Role::kServer, CloseKind::kPassive, 8080);
  const Connection client = closed(Role::kClient, CloseKind::kActive, 40000);
  sink.write(ConnectionRecord{server, server.end_ns});
  sink.write(ConnectionRecord{server, server.end_ns});
  sink.write(ConnectionRecord{client, client.end_ns});
  const std::string text = sink.render();
  EXPECT_EQ(
      value(
          text,
          R"(tcptrail_connections_closed_total{role="server",close="passive",port="8080",container="",unit=""})"),
      2);
  // A client's port is not a label: it has as many values as connections.
  EXPECT_EQ(
      value(
          text,
          R"(tcptrail_connections_closed_total{role="client",close="active",port="",container="",unit=""})"),
      1);
  EXPECT_EQ(text.find("40000"), std::string::npos);
  EXPECT_EQ(text.find("127.0.0.1"), std::string::npos);
}

TEST(MetricsSinkTest, HistogramsAreCumulativeWithSumAndCount) {
  MetricsSink sink;
  Connection quick = closed(Role::kClient, CloseKind::kActive, 40000);
  quick.end_ns = quick.first_ns + 3 * kMs;  // 0.003 s: in the 0.005 bucket
  const Connection slow = closed(Role::kClient, CloseKind::kActive, 40001);  // 0.25 s
  sink.write(ConnectionRecord{quick, quick.end_ns});
  sink.write(ConnectionRecord{slow, slow.end_ns});
  const std::string text = sink.render();
  EXPECT_EQ(value(text, R"(tcptrail_connection_duration_seconds_bucket{le="0.001"})"), 0);
  EXPECT_EQ(value(text, R"(tcptrail_connection_duration_seconds_bucket{le="0.005"})"), 1);
  EXPECT_EQ(value(text, R"(tcptrail_connection_duration_seconds_bucket{le="0.1"})"), 1);
  EXPECT_EQ(value(text, R"(tcptrail_connection_duration_seconds_bucket{le="0.5"})"), 2);
  EXPECT_EQ(value(text, R"(tcptrail_connection_duration_seconds_bucket{le="+Inf"})"), 2);
  EXPECT_EQ(value(text, "tcptrail_connection_duration_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(value(text, "tcptrail_connection_duration_seconds_sum"), 0.253);
  EXPECT_EQ(value(text, R"(tcptrail_handshake_duration_seconds_bucket{le="0.001"})"), 0);
  EXPECT_EQ(value(text, R"(tcptrail_handshake_duration_seconds_bucket{le="0.005"})"), 2);
  EXPECT_DOUBLE_EQ(value(text, "tcptrail_handshake_duration_seconds_sum"), 0.004);
}

TEST(MetricsSinkTest, ConnectFailuresByCauseNotCancelsOrEstablished) {
  MetricsSink sink;
  Connection refused = closed(Role::kClient, CloseKind::kRefused, 40000);
  refused.has_handshake = false;
  Connection canceled = closed(Role::kClient, CloseKind::kCanceled, 40001);
  canceled.has_handshake = false;
  Connection reset = closed(Role::kClient, CloseKind::kResetReceived, 40002);
  for (const Connection* conn : {&refused, &refused, &canceled, &reset}) {
    sink.write(ConnectionRecord{*conn, conn->end_ns});
  }
  const std::string text = sink.render();
  EXPECT_EQ(value(text, R"(tcptrail_connect_failures_total{cause="refused"})"), 2);
  EXPECT_EQ(value(text, R"(tcptrail_connect_failures_total{cause="canceled"})"), -1);
  EXPECT_EQ(value(text, R"(tcptrail_connect_failures_total{cause="reset_received"})"), -1);
}

TEST(MetricsSinkTest, ServicePortsAreBounded) {
  MetricsSink sink;
  for (std::size_t i = 0; i < MetricsSink::kMaxServicePorts + 10; ++i) {
    const auto port = static_cast<std::uint16_t>(1000 + i);
    const Connection server = closed(Role::kServer, CloseKind::kPassive, port);
    sink.write(ConnectionRecord{server, server.end_ns});
  }
  const std::string text = sink.render();
  EXPECT_EQ(
      value(
          text,
          R"(tcptrail_connections_closed_total{role="server",close="passive",port="1000",container="",unit=""})"),
      1);
  EXPECT_EQ(
      value(
          text,
          R"(tcptrail_connections_closed_total{role="server",close="passive",port="other",container="",unit=""})"),
      10);
}

// A connection of a container is counted under the id prefix docker ps prints, one outside
// containers under its unit; the records carry the identity the identity stage resolved.
TEST(MetricsSinkTest, CountsConnectionsByContainerOrUnit) {
  const std::string id(64, 'a');
  const CgroupIdentity container{"/system.slice/docker-" + id + ".scope", id, "",
                                 "docker-" + id + ".scope"};
  const CgroupIdentity service{"/system.slice/nginx.service", "", "", "nginx.service"};
  const CgroupIdentity hostile{"/user.slice/x\"}\n\x1b.scope", "", "", "x\"}\n\x1b.scope"};
  MetricsSink sink;
  const Connection conn = closed(Role::kServer, CloseKind::kPassive, 8080);
  sink.write(ConnectionRecord{conn, conn.end_ns, {&container, nullptr}});
  sink.write(ConnectionRecord{conn, conn.end_ns, {&container, nullptr}});
  sink.write(ConnectionRecord{conn, conn.end_ns, {&service, nullptr}});
  sink.write(ConnectionRecord{conn, conn.end_ns, {&hostile, nullptr}});
  sink.write(ConnectionRecord{conn, conn.end_ns});
  const std::string text = sink.render();
  const std::string series =
      R"(tcptrail_connections_closed_total{role="server",close="passive",port="8080",)";
  EXPECT_EQ(value(text, series + R"(container="aaaaaaaaaaaa",unit=""})"), 2);
  EXPECT_EQ(value(text, series + R"(container="",unit="nginx.service"})"), 1);
  EXPECT_EQ(value(text, series + R"(container="",unit="x\"}\\x0a\\x1b.scope"})"), 1)
      << "quote escaped, other bytes as text: " << text;
  EXPECT_EQ(value(text, series + R"(container="",unit=""})"), 1) << "identity not known";
}

// At most kMaxWorkloads workloads have labels of their own: a new one takes the place of the
// one idle longest, whose counts join "other" so that no sum over the series goes down.
TEST(MetricsSinkTest, WorkloadsAreBoundedIdleOnesFoldIntoOther) {
  std::vector<CgroupIdentity> units;
  for (std::size_t i = 0; i < MetricsSink::kMaxWorkloads + 2; ++i) {
    const std::string unit = "u" + std::to_string(i) + ".service";
    units.push_back({"/system.slice/" + unit, "", "", unit});
  }
  MetricsSink sink;
  const Connection conn = closed(Role::kClient, CloseKind::kActive, 40000);
  const auto close_in = [&](std::size_t i) {
    sink.write(ConnectionRecord{conn, conn.end_ns, {&units[i], nullptr}});
  };
  for (std::size_t i = 0; i < MetricsSink::kMaxWorkloads; ++i) {
    close_in(i);
  }
  close_in(0);  // u0 is busy again: u1 is now the one idle longest
  close_in(MetricsSink::kMaxWorkloads);
  close_in(MetricsSink::kMaxWorkloads + 1);
  const std::string text = sink.render();
  const std::string series =
      R"(tcptrail_connections_closed_total{role="client",close="active",port="",container="",)";
  EXPECT_EQ(value(text, series + R"(unit="u0.service"})"), 2);
  EXPECT_EQ(value(text, series + R"(unit="u1.service"})"), -1) << "evicted first";
  EXPECT_EQ(value(text, series + R"(unit="u2.service"})"), -1) << "evicted second";
  EXPECT_EQ(value(text, series + R"(unit="u3.service"})"), 1);
  EXPECT_EQ(value(text, series + "unit=\"u" + std::to_string(MetricsSink::kMaxWorkloads + 1) +
                            ".service\"}"),
            1);
  EXPECT_EQ(value(text, R"(tcptrail_connections_closed_total{role="client",close="active",)"
                        R"(port="",container="other",unit="other"})"),
            2);
  std::size_t series_count = 0;
  double total = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("tcptrail_connections_closed_total{")) {
      ++series_count;
      total += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_EQ(series_count, MetricsSink::kMaxWorkloads + 1) << "the workloads and other";
  EXPECT_EQ(total, MetricsSink::kMaxWorkloads + 3) << "every connection counted once";
}

TEST(MetricsSinkTest, RetransmitsResetsAndOpenLeaks) {
  MetricsSink sink;
  const Connection conn = closed(Role::kServer, CloseKind::kPassive, 8080);
  sink.write(RetransmitRecord{conn, TcpState::kEstablished, 3, 1100 * kMs});
  sink.write(RetransmitRecord{conn, TcpState::kEstablished, 1, 1100 * kMs});
  sink.write(ResetRecord{conn, ResetDirection::kSent, TcpState::kEstablished, 1100 * kMs});
  const Leak leak{LeakKind::kCloseWait, 1100 * kMs, 31'000 * kMs, 30'000 * kMs, false, {},
                  std::nullopt};
  sink.write(LeakRecord{conn, leak});
  sink.write(LeakRecord{conn, leak});
  sink.write(LeakResolvedRecord{conn, leak});
  const std::string text = sink.render();
  EXPECT_EQ(value(text, "tcptrail_retransmits_total"), 4);
  EXPECT_EQ(value(text, R"(tcptrail_resets_total{direction="sent"})"), 1);
  EXPECT_EQ(value(text, R"(tcptrail_resets_total{direction="received"})"), 0);
  EXPECT_EQ(value(text, R"(tcptrail_leaks{kind="close_wait",port="8080",container="",unit=""})"),
            1);
  // Every kind has a series from the start.
  EXPECT_EQ(value(text, R"(tcptrail_leaks{kind="fin_wait2",port="",container="",unit=""})"), 0);
  EXPECT_EQ(value(text, R"(tcptrail_leaks{kind="syn_recv",port="",container="",unit=""})"), 0);
}

// "Which service leaks CLOSE_WAIT": open leaks by service port and workload, taken out of the
// series they were counted in when resolved, whatever identity the resolving record carries.
TEST(MetricsSinkTest, OpenLeaksByServicePortAndWorkload) {
  const std::string id(64, 'b');
  const CgroupIdentity container{"/kubepods.slice/cri-containerd-" + id + ".scope", id, "",
                                 "cri-containerd-" + id + ".scope"};
  const CgroupIdentity service{"/system.slice/php-fpm.service", "", "", "php-fpm.service"};
  Connection in_container = closed(Role::kServer, CloseKind::kPassive, 8080);
  in_container.conn_id = 1;
  Connection in_service = closed(Role::kServer, CloseKind::kPassive, 9000);
  in_service.conn_id = 2;
  Connection client = closed(Role::kClient, CloseKind::kActive, 40000);
  client.conn_id = 3;
  const Leak close_wait{LeakKind::kCloseWait, 1100 * kMs, 31'000 * kMs, 30'000 * kMs, false, {},
                        std::nullopt};
  const Leak fin_wait2{LeakKind::kFinWait2, 1100 * kMs, 61'000 * kMs, 60'000 * kMs, true, {},
                       std::nullopt};
  MetricsSink sink;
  sink.write(LeakRecord{in_container, close_wait, {&container, nullptr}});
  sink.write(LeakRecord{in_service, close_wait, {&service, nullptr}});
  sink.write(LeakRecord{client, fin_wait2, {&service, nullptr}});
  std::string text = sink.render();
  EXPECT_EQ(
      value(text,
            R"(tcptrail_leaks{kind="close_wait",port="8080",container="bbbbbbbbbbbb",unit=""})"),
      1)
      << text;
  EXPECT_EQ(
      value(text,
            R"(tcptrail_leaks{kind="close_wait",port="9000",container="",unit="php-fpm.service"})"),
      1);
  EXPECT_EQ(
      value(text,
            R"(tcptrail_leaks{kind="fin_wait2",port="",container="",unit="php-fpm.service"})"),
      1)
      << "a client's leak has no service port";
  EXPECT_EQ(value(text, R"(tcptrail_leaks{kind="close_wait",port="",container="",unit=""})"), 0);
  EXPECT_EQ(text.find("40000"), std::string::npos);

  // Resolved without an identity (not resolved in time): out of the series it was counted in.
  sink.write(LeakResolvedRecord{in_container, close_wait});
  sink.write(LeakResolvedRecord{client, fin_wait2, {&container, nullptr}});
  text = sink.render();
  EXPECT_EQ(
      value(text,
            R"(tcptrail_leaks{kind="close_wait",port="8080",container="bbbbbbbbbbbb",unit=""})"),
      0);
  EXPECT_EQ(
      value(text,
            R"(tcptrail_leaks{kind="fin_wait2",port="",container="",unit="php-fpm.service"})"),
      0);
  EXPECT_EQ(
      value(text,
            R"(tcptrail_leaks{kind="close_wait",port="9000",container="",unit="php-fpm.service"})"),
      1);
  // A leak_resolved of a leak never counted (or counted and resolved already) changes nothing.
  sink.write(LeakResolvedRecord{in_container, close_wait, {&container, nullptr}});
  EXPECT_EQ(
      value(sink.render(),
            R"(tcptrail_leaks{kind="close_wait",port="8080",container="bbbbbbbbbbbb",unit=""})"),
      0);
}

// A workload that gives up its labels takes its open leaks to "other"; when they resolve they
// leave "other", also once the workload has come back with labels of its own.
TEST(MetricsSinkTest, OpenLeaksOfAnEvictedWorkloadMoveToOther) {
  std::vector<CgroupIdentity> units;
  for (std::size_t i = 0; i <= MetricsSink::kMaxWorkloads + 1; ++i) {
    const std::string unit = "u" + std::to_string(i) + ".service";
    units.push_back({"/system.slice/" + unit, "", "", unit});
  }
  Connection leaking = closed(Role::kServer, CloseKind::kPassive, 8080);
  leaking.conn_id = 1;
  const Leak close_wait{LeakKind::kCloseWait, 1100 * kMs, 31'000 * kMs, 30'000 * kMs, false, {},
                        std::nullopt};
  MetricsSink sink;
  sink.write(LeakRecord{leaking, close_wait, {units.data(), nullptr}});
  const Connection conn = closed(Role::kClient, CloseKind::kActive, 40000);
  for (std::size_t i = 1; i <= MetricsSink::kMaxWorkloads; ++i) {
    sink.write(ConnectionRecord{conn, conn.end_ns, {&units[i], nullptr}});  // u0 goes
  }
  std::string text = sink.render();
  const std::string u0 = R"(tcptrail_leaks{kind="close_wait",port="8080",container="",)"
                         R"(unit="u0.service"})";
  const std::string other = R"(tcptrail_leaks{kind="close_wait",port="8080",container="other",)"
                            R"(unit="other"})";
  EXPECT_EQ(value(text, u0), -1) << text;
  EXPECT_EQ(value(text, other), 1);
  // u0 is back (u1 goes), with a leak of its own; the first leak resolves out of "other".
  Connection again = closed(Role::kServer, CloseKind::kPassive, 8080);
  again.conn_id = 2;
  sink.write(LeakRecord{again, close_wait, {units.data(), nullptr}});
  sink.write(LeakResolvedRecord{leaking, close_wait, {units.data(), nullptr}});
  text = sink.render();
  EXPECT_EQ(value(text, u0), 1) << text;
  EXPECT_EQ(value(text, other), 0);
}

TEST(MetricsSinkTest, LiveCountersFromStatsAndPortPressure) {
  MetricsSink sink;
  RunStats run;
  run.lost = 10;
  run.lost_connections = 5;
  run.lost_ring_full = 7;
  run.lost_no_ring = 1;
  run.lost_skipped = 2;
  run.overflow = 2;
  run.sweeps = 3;
  run.longest_sweep_ns = 1'500'000;
  run.sweep_ns = 2'500'000;
  sink.write(StatsRecord{2000 * kMs, 100, 1, run, 16, 64, 12, 0.125});
  TimeWaitPressure pressure;
  pressure.netns_ino = 4026531840u;
  pressure.ratio = 0.75;
  sink.write(TimeWaitPressureRecord{pressure});
  const std::string text = sink.render();
  EXPECT_EQ(value(text, "tcptrail_events_total"), 100);
  EXPECT_EQ(value(text, "tcptrail_rejected_events_total"), 1);
  // Per reason, adding up to the stop record's lost; the connection records among them apart.
  EXPECT_EQ(value(text, R"(tcptrail_lost_events_total{reason="ring_full"})"), 7);
  EXPECT_EQ(value(text, R"(tcptrail_lost_events_total{reason="no_ring"})"), 1);
  EXPECT_EQ(value(text, R"(tcptrail_lost_events_total{reason="program_skipped"})"), 2);
  EXPECT_EQ(value(text, "tcptrail_lost_connection_records_total"), 5);
  EXPECT_EQ(value(text, "tcptrail_overflow_total"), 2);
  EXPECT_EQ(value(text, "tcptrail_queue_fill_ratio"), 0.25);
  EXPECT_EQ(value(text, "tcptrail_ring_fill_ratio"), 0.125);
  EXPECT_EQ(value(text, "tcptrail_sweep_duration_seconds_count"), 3);
  EXPECT_EQ(value(text, "tcptrail_sweep_duration_seconds_sum"), 0.0025);
  EXPECT_EQ(value(text, "tcptrail_time_wait_sockets"), 12);
  EXPECT_EQ(value(text, "tcptrail_longest_sweep_seconds"), 0.0015);
  EXPECT_EQ(value(text, R"(tcptrail_local_ports_in_use_ratio{netns="4026531840"})"), 0.75);
}

// The worst destination of each namespace from every snapshot, so the gauge also falls; a
// pressure record raises it at once.
TEST(MetricsSinkTest, PortRatioIsTheWorstDestinationNowUpAndDown) {
  constexpr std::uint32_t kNetns = 4026531840u;
  const std::string series = R"(tcptrail_local_ports_in_use_ratio{netns="4026531840"})";
  MetricsSink sink;
  const RunStats run;
  StatsRecord stats{1000 * kMs, 0, 0, run, 0, 64, 0, 0};
  stats.port_ratios = {{kNetns, 0.3}};
  sink.write(stats);
  EXPECT_EQ(value(sink.render(), series), 0.3) << "below any warning";
  TimeWaitPressure pressure;
  pressure.netns_ino = kNetns;
  pressure.ratio = 0.75;
  sink.write(TimeWaitPressureRecord{pressure});
  EXPECT_EQ(value(sink.render(), series), 0.75);
  stats.port_ratios = {{kNetns, 0.1}};
  sink.write(stats);
  EXPECT_EQ(value(sink.render(), series), 0.1) << "the TIME_WAIT expired";
  stats.port_ratios = {};
  sink.write(stats);
  EXPECT_EQ(value(sink.render(), series), -1) << "a namespace no longer swept";
}

TEST(MetricsSinkTest, EveryFamilyHasHelpAndType) {
  const std::string text = MetricsSink().render();
  std::istringstream lines(text);
  std::string previous;
  std::vector<std::string> families;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# TYPE ")) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      families.push_back(name);
      EXPECT_TRUE(previous.starts_with("# HELP " + name + " ")) << line;
    }
    previous = line;
  }
  EXPECT_EQ(families, (std::vector<std::string>{
                          "tcptrail_connections_closed_total",
                          "tcptrail_connect_failures_total",
                          "tcptrail_connection_duration_seconds",
                          "tcptrail_handshake_duration_seconds",
                          "tcptrail_retransmits_total",
                          "tcptrail_resets_total",
                          "tcptrail_leaks",
                          "tcptrail_time_wait_sockets",
                          "tcptrail_local_ports_in_use_ratio",
                          "tcptrail_events_total",
                          "tcptrail_rejected_events_total",
                          "tcptrail_lost_events_total",
                          "tcptrail_lost_connection_records_total",
                          "tcptrail_overflow_total",
                          "tcptrail_ring_fill_ratio",
                          "tcptrail_queue_fill_ratio",
                          "tcptrail_sweep_duration_seconds",
                          "tcptrail_longest_sweep_seconds",
                          "tcptrail_scan_errors_total",
                      }));
}

TEST(MetricsAddressTest, NumericAddressAndPortOnly) {
  const auto v4 = parse_metrics_address("127.0.0.1:9465");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9465);
  const auto v6 = parse_metrics_address("[::1]:9465");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  for (const char* bad :
       {"127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:65536", "localhost:9465", "::1:9465", "[::1]",
        "9465", "127.0.0.1:", "127.0.0.1:94x5", "127.0.0.1:+80", "[127.0.0.1]:80", "",
        "127.0.0.1:09465", "127.0.0.1:00", "127.0.0.1: 80"}) {
    EXPECT_FALSE(parse_metrics_address(bad)) << bad;
  }
}

}  // namespace
}  // namespace tcptrail
