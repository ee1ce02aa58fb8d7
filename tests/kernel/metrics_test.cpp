// --metrics scraped by a real Prometheus during a run with loopback traffic: what its query API
// returns matches the NDJSON records of the same run, and promtool accepts the exposition.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/process.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

constexpr int kConnections = 6;

// Prometheus on 127.0.0.1, scraping one target every second, with its data in a temporary
// directory; stopped (SIGTERM, then SIGKILL by Process) when it goes out of scope.
class Prometheus {
public:
  explicit Prometheus(int target_port)
      : port_(free_port()), process_(spawn(dir_, target_port, port_)), client_("127.0.0.1", port_) {
    client_.set_connection_timeout(2);
    client_.set_read_timeout(5);
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      if (const auto ready = client_.Get("/-/ready"); ready && ready->status == 200) {
        return;
      }
      if (!process_.running()) {
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    throw std::runtime_error("prometheus did not become ready: " + process_.err());
  }
  ~Prometheus() {
    if (process_.running()) {
      process_.send_signal(SIGTERM);
      process_.wait(10s);
    }
  }
  Prometheus(const Prometheus&) = delete;
  Prometheus& operator=(const Prometheus&) = delete;

  // The instant vector of `query`: each series' labels and value.
  std::vector<std::pair<Json, double>> query(const std::string& query) {
    const httplib::Params params = {{"query", query}};
    const auto response = client_.Get("/api/v1/query", params, httplib::Headers{});
    if (!response || response->status != 200) {
      throw std::runtime_error("query failed: " + query);
    }
    const Json body = Json::parse(response->body);
    std::vector<std::pair<Json, double>> series;
    for (const Json& s : body.at("data").at("result")) {
      series.emplace_back(s.at("metric"), std::stod(s.at("value").at(1).get<std::string>()));
    }
    return series;
  }
  // The value of a query that yields one series; -1 when it yields none.
  double scalar(const std::string& text) {
    const auto series = query(text);
    if (series.size() > 1) {
      throw std::runtime_error("more than one series for " + text);
    }
    return series.empty() ? -1 : series.front().second;
  }

private:
  static Process spawn(const TempDir& dir, int target_port, int port) {
    std::ofstream(dir.file("prometheus.yml"))
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: tcptrail\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << target_port << "']\n";
    return Process({{"prometheus", "--config.file=" + dir.file("prometheus.yml"),
                     "--storage.tsdb.path=" + dir.file("data"),
                     "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                    {},
                    false,
                    dir.file("stdout")});
  }

  TempDir dir_;
  int port_;
  Process process_;
  httplib::Client client_;
};

TEST(MetricsTest, PrometheusCountsWhatTheRecordsSay) {
  TT_REQUIRE_KERNEL();
  Server server = start_server("127.0.0.1", {"--count", std::to_string(kConnections)});
  // One client aborts (SO_LINGER {1,0}): a reset sent by it, received by its server.
  Server aborted = start_server("127.0.0.1", {"--expect", "10", "--reply", "10"});
  // Its connection stays in CLOSE_WAIT 6 s, past the 1 s threshold: a leak, then resolved.
  Server leaking =
      start_server("127.0.0.1", {"--close-first", "client", "--close-delay-ms", "6000"});
  ClosedPort closed;
  const int metrics_port = free_port();
  // Only the test's own traffic is counted: not the scrapes, not other tests' connections.
  Tracer tracer({"--metrics", "127.0.0.1:" + std::to_string(metrics_port), "--close-wait-timeout",
                 "1s", "--port", std::to_string(server.port), "--port",
                 std::to_string(aborted.port), "--port", std::to_string(leaking.port), "--port",
                 std::to_string(closed.port())});
  Prometheus prometheus(metrics_port);

  // The leaking connection's client exits once its server closed.
  Process leaker =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(leaking.port)});
  Process client =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port), "--count",
                  std::to_string(kConnections)});
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  Process refused =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(closed.port())});
  refused.wait(10s);
  Process aborter =
      spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(aborted.port), "--send",
                  "10", "--expect", "10", "--linger0"});
  expect_clean_exit(aborter);
  expect_clean_exit(aborted.process);

  auto is_server = [&](const Json& r) {
    return r["type"] == "connection" && r["role"] == "server" && r["lport"] == server.port;
  };
  auto is_refused = [&](const Json& r) {
    return r["type"] == "connection" && r["rport"] == closed.port() && r["close"] == "refused";
  };
  auto is_leak = [&](const std::string& type) {
    return [&, type](const Json& r) {
      return r["type"] == type && r["kind"] == "close_wait" && r["lport"] == leaking.port;
    };
  };
  tracer.wait_for(is_server, "the server's connection records", kConnections);
  tracer.wait_for(is_refused, "the refused connect's record");
  tracer.wait_for(is_leak("leak"), "the CLOSE_WAIT leak", 1, 5s);

  // The records say how many; Prometheus has them once it scraped after the collector wrote
  // them (a scrape a second).
  const std::string port_label = "port=\"" + std::to_string(server.port) + "\"";
  const std::string leak_query =
      R"(tcptrail_leaks{kind="close_wait",port=")" + std::to_string(leaking.port) + R"("})";
  auto until = [&](const std::string& query, double wanted) {
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline && prometheus.scalar(query) != wanted) {
      std::this_thread::sleep_for(500ms);
    }
    return prometheus.scalar(query);
  };
  // The open leak, by the service port that leaks it.
  EXPECT_EQ(until(leak_query, 1), 1);
  until("sum(tcptrail_connections_closed_total{" + port_label + "})", kConnections);
  std::map<std::string, double> scraped;
  for (const auto& [labels, value] :
       prometheus.query("sum by (close) (tcptrail_connections_closed_total{role=\"server\"," +
                        port_label + "})")) {
    scraped[labels.at("close").get<std::string>()] = value;
  }
  const double failures = prometheus.scalar("tcptrail_connect_failures_total{cause=\"refused\"}");
  EXPECT_EQ(prometheus.scalar("up{job=\"tcptrail\"}"), 1);

  // promtool takes the exposition as it is served.
  httplib::Client direct("127.0.0.1", metrics_port);
  const auto exposition = direct.Get("/metrics");
  ASSERT_TRUE(exposition && exposition->status == 200);
  Process promtool({{"promtool", "check", "metrics"}, {}, true, {}});
  promtool.write_stdin(exposition->body);
  promtool.close_stdin();
  const auto checked = promtool.wait(20s);
  ASSERT_TRUE(checked);
  EXPECT_EQ(checked->exit_code, 0) << promtool.out() << promtool.err();

  // The leak resolves when its server closes; every connection is closed by then.
  tracer.wait_for(is_leak("leak_resolved"), "the CLOSE_WAIT leak resolved", 1, 10s);
  expect_clean_exit(leaker);
  expect_clean_exit(leaking.process);
  const double connections = static_cast<double>(kConnections) * 2 + 1 + 2 + 2;
  EXPECT_EQ(until("sum(tcptrail_connections_closed_total)", connections), connections);
  EXPECT_EQ(until(leak_query, 0), 0);
  std::map<std::string, double> resets;
  for (const auto& [labels, value] : prometheus.query("tcptrail_resets_total")) {
    resets[labels.at("direction").get<std::string>()] = value;
  }
  const double durations = prometheus.scalar("tcptrail_connection_duration_seconds_count");
  const double handshakes = prometheus.scalar("tcptrail_handshake_duration_seconds_count");
  const double retransmits = prometheus.scalar("tcptrail_retransmits_total");
  const double events = prometheus.scalar("tcptrail_events_total");
  const double lost = prometheus.scalar("sum(tcptrail_lost_events_total)");
  const double sweeps = prometheus.scalar("tcptrail_sweep_duration_seconds_count");
  const double longest_sweep = prometheus.scalar("tcptrail_longest_sweep_seconds");

  const Tracer::Stopped stopped = tracer.stop();
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  std::map<std::string, double> recorded;
  for (const Json& r : select(stopped.records, is_server)) {
    recorded[r["close"].get<std::string>()] += 1;
  }
  EXPECT_EQ(select(stopped.records, is_server).size(), std::size_t{kConnections});
  EXPECT_EQ(scraped, recorded) << dump_lines(stopped.records);
  EXPECT_EQ(failures, static_cast<double>(select(stopped.records, is_refused).size()));
  EXPECT_EQ(failures, 1);

  const std::vector<Json> records = select(stopped.records, of_type("connection"));
  EXPECT_EQ(static_cast<double>(records.size()), connections) << dump_lines(stopped.records);
  std::map<std::string, double> recorded_resets;
  for (const Json& r : select(stopped.records, of_type("reset"))) {
    recorded_resets[r["direction"].get<std::string>()] += 1;
  }
  recorded_resets.try_emplace("sent", 0);
  recorded_resets.try_emplace("received", 0);
  EXPECT_EQ(resets, recorded_resets) << dump_lines(stopped.records);
  EXPECT_GE(recorded_resets["sent"], 1) << "the aborting client's RST";
  EXPECT_GE(recorded_resets["received"], 2) << "the refused connect's and the aborted server's";
  EXPECT_EQ(durations,
            static_cast<double>(std::count_if(records.begin(), records.end(), [](const Json& r) {
              return r["duration_ms"].is_number();
            })));
  EXPECT_EQ(handshakes,
            static_cast<double>(std::count_if(records.begin(), records.end(), [](const Json& r) {
              return r["handshake_ms"].is_number();
            })));
  double retransmitted = 0;
  for (const Json& r : select(stopped.records, of_type("retransmit"))) {
    retransmitted += r["segs"].get<double>() * r["count"].get<double>();
  }
  EXPECT_EQ(retransmits, retransmitted);
  const Json& stop = stopped.records.back();
  // The stop record's percentiles for the service: within the clients' lifetimes and
  // handshakes, in order.
  std::vector<double> lifetimes;
  std::vector<double> handshake_times;
  for (const Json& r : records) {
    if (r["role"] == "client" && r["rport"] == server.port) {
      lifetimes.push_back(r["duration_ms"].get<double>());
      handshake_times.push_back(r["handshake_ms"].get<double>());
    }
  }
  ASSERT_EQ(lifetimes.size(), std::size_t{kConnections});
  const auto service = std::find_if(stop["per_peer"].begin(), stop["per_peer"].end(),
                                    [&](const Json& row) { return row["port"] == server.port; });
  ASSERT_NE(service, stop["per_peer"].end()) << stop;
  EXPECT_EQ((*service)["connections"], kConnections);
  for (const auto& [name, samples] :
       {std::pair{"lifetime_ms", lifetimes}, std::pair{"handshake_ms", handshake_times}}) {
    const Json& p = (*service)[name];
    ASSERT_TRUE(p.is_object()) << name << ": " << *service;
    // Rounded to the microsecond, as every *_ms is.
    EXPECT_GE(p["p50"].get<double>() + 0.001, *std::min_element(samples.begin(), samples.end()))
        << name << ": " << p;
    EXPECT_LE(p["p50"].get<double>(), p["p90"].get<double>()) << name << ": " << p;
    EXPECT_LE(p["p90"].get<double>(), p["p99"].get<double>()) << name << ": " << p;
    EXPECT_LE(p["p99"].get<double>(), *std::max_element(samples.begin(), samples.end()) + 0.001)
        << name << ": " << p;
  }
  EXPECT_GT(events, 0);
  EXPECT_LE(events, stop["events"].get<double>()) << "a snapshot a second, then the final count";
  EXPECT_EQ(lost, stop["lost"].get<double>());
  EXPECT_GT(sweeps, 0);
  EXPECT_LE(sweeps, stop["sweeps"].get<double>());
  EXPECT_GT(longest_sweep, 0);
  EXPECT_LE(longest_sweep, stop["longest_sweep_ms"].get<double>() / 1000 + 1e-6);
}

// Bound before anything is loaded, so no privileges are needed to see it.
TEST(MetricsTest, AnAddressInUseExitsTwoWithOneLine) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Process tracer({{tcptrail_binary(), "--metrics", taken, "--duration", "5s"}, {}, false, {}});
  const auto status = tracer.wait(20s);
  close(fd);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 2);
  EXPECT_EQ(tracer.err(),
            "tcptrail: --metrics: cannot listen on " + taken + ": Address already in use\n");
  EXPECT_EQ(tracer.out(), "");
}

}  // namespace
}  // namespace tt
