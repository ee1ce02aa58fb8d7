// `--metrics ADDR:PORT`: serves GET /metrics from a MetricsSink on a thread of its own, so a
// scrape never waits for the collector and the collector never waits for a scrape.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "sinks/metrics_sink.hpp"

namespace httplib {
class Server;
}

namespace tcptrail {

struct MetricsAddress {
  std::string host;  // a numeric IPv4 or IPv6 address (without brackets)
  std::uint16_t port = 0;
};

// "127.0.0.1:9465", "[::1]:9465", "0.0.0.0:9465"; nullopt unless the address is numeric and
// the port is 1 to 65535.
std::optional<MetricsAddress> parse_metrics_address(std::string_view text);

class MetricsServer {
public:
  // Binds at once; throws UsageError when the address is in use or not local, TraceError when
  // it cannot be bound otherwise (no permission).
  MetricsServer(const MetricsAddress& address, const MetricsSink& metrics);
  // Serves on a thread of its own (one connection at a time) until destroyed. Started after
  // the privileges are dropped, so that thread holds none.
  void serve();
  // The port bound (the one asked for, or the kernel's choice for port 0).
  [[nodiscard]] std::uint16_t port() const { return port_; }
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::uint16_t port_ = 0;
};

}  // namespace tcptrail
