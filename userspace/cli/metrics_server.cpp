#include "cli/metrics_server.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include <httplib.h>

#include "tcptrail/error.hpp"

namespace tcptrail {

std::optional<MetricsAddress> parse_metrics_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    host = host.substr(1, host.size() - 2);
  }
  MetricsAddress address{std::string(host), 0};
  unsigned char bytes[16];
  const bool v4 = !bracketed && inet_pton(AF_INET, address.host.c_str(), bytes) == 1;
  const bool v6 = bracketed && inet_pton(AF_INET6, address.host.c_str(), bytes) == 1;
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  // Plain decimal digits, as every other number on the command line: no leading zero.
  if ((!v4 && !v6) || port.empty() || port.front() == '0' || error != std::errc{} ||
      end != port.data() + port.size() || value > 65535) {
    return std::nullopt;
  }
  address.port = static_cast<std::uint16_t>(value);
  return address;
}

MetricsServer::MetricsServer(const MetricsAddress& address, const MetricsSink& metrics)
    : server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(1); };
  // httplib's default adds SO_REUSEPORT, with which a second tcptrail would share the port
  // silently; SO_REUSEADDR alone lets a restart bind past the old sockets in TIME_WAIT.
  server_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  errno = 0;
  // bind_to_any_port takes port 0 as "any" and says which; bind_to_port cannot say.
  const int bound = address.port == 0
                        ? server_->bind_to_any_port(address.host)
                        : (server_->bind_to_port(address.host, address.port) ? address.port : -1);
  if (bound < 0) {
    const int err = errno != 0 ? errno : EADDRINUSE;
    const std::string shown = address.host.find(':') != std::string::npos
                                  ? "[" + address.host + "]:" + std::to_string(address.port)
                                  : address.host + ":" + std::to_string(address.port);
    const std::string message = "--metrics: cannot listen on " + shown + ": " + std::strerror(err);
    // In use, or not an address of this host: the value is wrong here, as a bad port would be.
    if (err == EADDRINUSE || err == EADDRNOTAVAIL) {
      throw UsageError(message);
    }
    throw TraceError(message, err);
  }
  port_ = static_cast<std::uint16_t>(bound);
}

void MetricsServer::serve() {
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    finished_.store(true);
  });
}

MetricsServer::~MetricsServer() {
  if (!thread_.joinable()) {
    return;
  }
  // stop() acts only on a server that is already listening: wait for that, or for the end.
  while (!finished_.load()) {
    if (server_->is_running()) {
      server_->stop();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  thread_.join();
}

}  // namespace tcptrail
