// The connections the kernel side is folding, as the collector reaches them: seeded with what
// the start-up snapshot found, looked up for leaks, counted at exit. The loader implements it
// over the BPF maps; unit tests over memory. Every call may come from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "tcptrail/connection.hpp"

namespace tcptrail {

class LiveConnections {
public:
  virtual ~LiveConnections() = default;
  enum class Seeded { kAdded, kKnown, kFull };
  // A socket found at start (conn.preexisting): gives it a conn_id and hands its lifecycle to
  // the kernel. kKnown: the kernel already follows it (it was born after tracing began).
  virtual Seeded seed(Connection& conn) = 0;
  // A listening socket found at start: its children inherit this owner.
  virtual void seed_listener(std::uint32_t netns_ino, std::uint16_t port, const Owner& owner) = 0;
  // The lifecycle of a live socket (only what the kernel folds: no tuple, no counters).
  [[nodiscard]] virtual std::optional<Connection> find(std::uint64_t sock_cookie) const = 0;
  // Connections not yet closed.
  [[nodiscard]] virtual std::size_t open() const = 0;
  // The namespaces where a socket entered CLOSE_WAIT or FIN_WAIT2, or a request socket
  // retransmitted its SYN-ACK, since the last call; nullopt when that is not known (any
  // namespace may hold a new leak). From one thread at a time.
  [[nodiscard]] virtual std::optional<std::vector<std::uint32_t>> take_active_namespaces() {
    return std::nullopt;
  }
};

}  // namespace tcptrail
