// Open connections between interim records (--interim): what each socket's counters were at its
// last interim record, so the next one reports what changed. Only the sockets of the latest dump
// are remembered, so memory follows the connections open now (one hash node each, about 72
// bytes with its bucket).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/records.hpp"
#include "tcptrail/socket_snapshot.hpp"

namespace tcptrail {

// One open socket of an interim dump: its lifecycle as the kernel folds it, with the tuple and
// namespace filled in from the socket table, and the socket's row in that table.
struct InterimSample {
  Connection conn;
  SocketSnapshot socket;
};

// Every open connection of every swept namespace, as of ts_ns (monotonic), or a part of them:
// a dump travels in parts so that what is in flight does not grow with the connections open.
struct InterimDump {
  std::uint64_t ts_ns = 0;
  std::vector<InterimSample> samples;
  bool last = true;  // the dump's last part
};

// The socket's counters as connection records count them: the application's bytes, without
// our SYN (a client's, acked before its first byte), our FIN once acked and the peer's FIN.
TrafficCounts application_traffic(const Connection& conn, const SocketSnapshot& socket);

class InterimTracker {
public:
  // The change since the socket's last dump (since its start at its first) to `total`, which is
  // remembered for the next dump. A counter that went back (a reused cookie cannot, but the
  // kernel's byte counters are not promised monotonic) counts 0.
  TrafficCounts advance(std::uint64_t sock_cookie, const TrafficCounts& total);
  // The dump is over: sockets it did not show are forgotten.
  void end_dump();
  std::size_t remembered() const { return last_.size(); }

private:
  struct Seen {
    TrafficCounts total;
    std::uint64_t dump = 0;  // the dump that showed it last
  };
  std::unordered_map<std::uint64_t, Seen> last_;
  std::uint64_t dump_ = 0;  // the dump under way
};

}  // namespace tcptrail
