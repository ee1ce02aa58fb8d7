// The kernel's socket table, as the analyzers consume it.
#pragma once

#include <cstdint>
#include <vector>

#include "tcptrail/socket_snapshot.hpp"

namespace tcptrail::sys {

// The TCP sockets of a namespace (0: the caller's), reduced to snapshots: all of them, or with
// only_waiting just TIME_WAIT, FIN_WAIT2, CLOSE_WAIT, SYN_RECV and LISTEN (what periodic sweeps
// need, far cheaper under load). Throws std::system_error.
std::vector<SocketSnapshot> snapshot_sockets(std::uint32_t netns_ino, bool only_waiting);
// The full sockets of a namespace that are connected and not closing on both sides
// (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2), with their tcp_info: interim records.
std::vector<SocketSnapshot> snapshot_open_connections(std::uint32_t netns_ino);

}  // namespace tcptrail::sys
