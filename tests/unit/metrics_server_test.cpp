#include "cli/metrics_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "record_fixtures.hpp"
#include "tcptrail/error.hpp"

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

// Port 0 is refused on the command line; here the kernel picks a free port, read back.
std::uint16_t bound_port(const MetricsAddress& address, const MetricsSink& sink,
                         std::unique_ptr<MetricsServer>& server) {
  server = std::make_unique<MetricsServer>(address, sink);
  return server->port();
}

TEST(MetricsServerTest, ServesTheSinksExposition) {
  MetricsSink sink;
  Connection conn;
  conn.role = Role::kServer;
  conn.close = CloseKind::kPassive;
  conn.lport = 8080;
  sink.write(ConnectionRecord{conn, 0});
  std::unique_ptr<MetricsServer> server;
  const std::uint16_t port = bound_port({"127.0.0.1", 0}, sink, server);
  server->serve();
  httplib::Client client("127.0.0.1", port);
  const auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response->body, sink.render());
  EXPECT_NE(
      response->body.find(R"(role="server",close="passive",port="8080",container="",unit=""} 1)"),
      std::string::npos);
  const auto missing = client.Get("/");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(MetricsServerTest, AnAddressInUseIsOneClearError) {
  MetricsSink sink;
  std::unique_ptr<MetricsServer> first;
  const std::uint16_t port = bound_port({"127.0.0.1", 0}, sink, first);
  try {
    MetricsServer second({"127.0.0.1", port}, sink);
    FAIL() << "a second server bound port " << port;
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--metrics: cannot listen on 127.0.0.1:" +
                                         std::to_string(port) + ": Address already in use");
  }
}

TEST(MetricsServerTest, StopsWhetherOrNotItServed) {
  MetricsSink sink;
  { MetricsServer never_served({"127.0.0.1", 0}, sink); }
  MetricsServer served({"::1", 0}, sink);
  served.serve();
}

}  // namespace
}  // namespace tcptrail
