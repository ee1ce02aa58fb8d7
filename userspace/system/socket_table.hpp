// The kernel's socket table, as the analyzers consume it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tcptrail/socket_snapshot.hpp"

namespace tcptrail::sys {

// Which sockets a snapshot holds.
enum class SocketSet : std::uint8_t {
  kAll,
  // FIN_WAIT2 (full and timewait), CLOSE_WAIT, SYN_RECV and LISTEN: what periodic sweeps need.
  kLeakStates,
  // And TIME_WAIT, which on a busy host is most of the table: more than half of the kernel's
  // time of a dump, and nearly all of the copying and parsing.
  kLeakStatesAndTimeWait,
  kTimeWait,  // only TIME_WAIT (timewait socks in that substate)
};
// The TCP sockets of a namespace (0: the caller's), reduced to snapshots. Throws
// std::system_error.
std::vector<SocketSnapshot> snapshot_sockets(std::uint32_t netns_ino, SocketSet set);
// One dump of a namespace's table for what a sweep needs: the sockets of `set` and, with
// open_connections, the full sockets that are connected and not closing on both sides
// (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2) with their tcp_info, for interim records.
// One dump, because each walks the kernel's whole table, every namespace's sockets included.
struct TableSnapshot {
  std::vector<SocketSnapshot> sockets;
  std::vector<SocketSnapshot> open_connections;
};
TableSnapshot snapshot_table(std::uint32_t netns_ino, SocketSet set, bool open_connections);
// Those of `wanted` (by addresses, ports and cookie) the namespace still has, as they are now,
// each looked up on its own instead of in a dump. Throws std::system_error.
std::vector<SocketSnapshot> find_sockets(std::uint32_t netns_ino,
                                         std::span<const SocketSnapshot> wanted);

}  // namespace tcptrail::sys
