#include "support/peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tt {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) != 0) {
    throw std::runtime_error("cannot bind a port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

Process spawn_peer(const std::vector<std::string>& args, const std::string& netns,
                   bool pipe_stdin) {
  std::vector<std::string> argv = {peer_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Process(SpawnOptions{argv, netns, pipe_stdin, {}});
}

Server start_server(const std::string& addr, const std::vector<std::string>& args,
                    const std::string& netns) {
  std::vector<std::string> argv = {"server", "--addr", addr, "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  Server server{spawn_peer(argv, netns), 0};
  server.port = server.process.wait_event("listening").at("port").get<int>();
  return server;
}

void expect_clean_exit(Process& peer, Clock::duration timeout) {
  const auto status = peer.wait(timeout);
  if (!status || status->exit_code != 0) {
    throw std::runtime_error("`" + peer.command_line() + "` " +
                             (status ? status->describe() : "did not exit in time") +
                             "\nstdout:\n" + peer.out() + "stderr:\n" + peer.err());
  }
}

Json tcp_info(Process& peer, int index, Clock::duration timeout) {
  return peer.wait_json(
      [index](const Json& j) {
        return j.value("event", "") == "tcp_info" && j.value("index", -1) == index;
      },
      timeout, "tcp_info #" + std::to_string(index));
}

ClosedPort::ClosedPort(bool ipv6) {
  fd_ = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ipv6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    len = sizeof(*in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*in);
  }
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    throw std::runtime_error(std::string("binding a closed port: ") + std::strerror(errno));
  }
  port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

ClosedPort::~ClosedPort() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

}  // namespace tt
