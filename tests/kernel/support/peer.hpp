// The workload program (tests/kernel/peer) run as separate client and server processes.
#pragma once

#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/tracer.hpp"

namespace tt {

// `tcptrail_test_peer <args...>`, optionally inside a named network namespace.
Process spawn_peer(const std::vector<std::string>& args, const std::string& netns = {},
                   bool pipe_stdin = false);

struct Server {
  Process process;
  int port = 0;
};
// `tcptrail_test_peer server --addr <addr> --port 0 <args...>`, returned once it listens.
Server start_server(const std::string& addr, const std::vector<std::string>& args,
                    const std::string& netns = {});

// Waits for a peer to exit 0; throws with its output otherwise.
void expect_clean_exit(Process& peer, Clock::duration timeout = 20s);

// The "tcp_info" line a peer printed for its connection number `index` (default the first).
Json tcp_info(Process& peer, int index = 0, Clock::duration timeout = 20s);

// A port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0), for a real
// server a test starts (nginx, tcptrail --metrics). Throws if none can be bound.
int free_port();

// A port on 127.0.0.1 (or ::1) bound by this process but never listening: a connect to it is
// refused. Closed on destruction.
class ClosedPort {
public:
  explicit ClosedPort(bool ipv6 = false);
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  ~ClosedPort();
  [[nodiscard]] int port() const { return port_; }

private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace tt
