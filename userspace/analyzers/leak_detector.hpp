// Finds sockets stuck where healthy ones only pass through: CLOSE_WAIT (the application never
// closed after the peer did), FIN_WAIT2 (the peer never closed), half-open SYN_RECV, and
// TIME_WAIT piling up towards one destination. Time is always given by the caller.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "analyzers/port_pressure.hpp"
#include "tcptrail/connection.hpp"
#include "tcptrail/live_connections.hpp"
#include "tcptrail/records.hpp"
#include "tcptrail/socket_snapshot.hpp"

namespace tcptrail {

struct LeakConfig {
  std::uint64_t close_wait_ns = 30'000'000'000;
  std::uint64_t fin_wait2_ns = 60'000'000'000;
  std::uint64_t syn_recv_ns = 10'000'000'000;
  PortPressureConfig ports;
};

// Who holds a socket's descriptor, as of the last scan of /proc and of the socket tables.
// Lookups never block: scans run elsewhere (on the scanner thread while tracing).
class FdOwnerLookup {
public:
  virtual ~FdOwnerLookup() = default;
  // Whether what owners() and inode_of() know was read at or after since_ns (monotonic), so
  // that a descriptor that existed then is seen. If not, a new scan is requested and the
  // caller asks again later.
  virtual bool fresh_since(std::uint64_t since_ns) = 0;
  virtual std::vector<FdOwner> owners(std::uint32_t inode) = 0;
  // The inode of a socket known by its cookie, for one whose inode was not known when it was
  // last seen (e.g. accepted after it entered CLOSE_WAIT); 0 if it has none.
  virtual std::uint32_t inode_of(std::uint64_t sock_cookie, std::uint32_t netns_ino) = 0;
};

// Sockets that take a local port towards one destination (local address, remote address and
// port): TIME_WAIT, and live connections whose local port is in the ephemeral range.
struct DestinationCount {
  IpAddress laddr;
  IpAddress raddr;
  std::uint16_t rport = 0;
  std::uint32_t time_wait = 0;
  std::uint32_t live = 0;
};

// A namespace's ephemeral ports, as the sweep read them.
struct NamespacePorts {
  std::uint16_t lo = 0;
  std::uint16_t hi = 0;
  std::uint32_t size = 0;  // ports in [lo, hi]; 0: unknown, no warning
  std::uint8_t tw_reuse = 0;
  std::string name;                        // under /run/netns, "" if none
  std::uint32_t tw_reuse_delay_ms = 1000;  // sys::PortSettings::tw_reuse_delay_ms

  // Whether connect() may pick this local port; false when the range is unknown.
  [[nodiscard]] bool ephemeral(std::uint16_t port) const {
    return size != 0 && port >= lo && port <= hi;
  }
};

// What one sweep of a namespace's socket table tells the leak detector, reduced where the
// sweep runs so that the consumer's share grows with the suspects and destinations, not with
// the sockets (a busy host holds ~100k TIME_WAIT sockets).
struct SweepDigest {
  std::uint64_t ts_ns = 0;  // monotonic, when the socket table was read
  std::uint32_t netns_ino = 0;
  NamespacePorts ports;
  // Minisocks the state tracepoint never shows: request sockets of half-open handshakes, and
  // orphans whose FIN was acked, handed to a timewait sock in FIN_WAIT2.
  std::vector<SocketSnapshot> minisocks;
  std::vector<SocketSnapshot> listeners;  // their holders will accept the request sockets
  // Sweeps count TIME_WAIT (and clients' live sockets) per destination once in this many, and
  // in a namespace's first: on a busy host that is most of a sweep's cost. Between counts,
  // PortPressure follows the connections that enter TIME_WAIT and the expiry rate the last two
  // counts showed.
  static constexpr std::uint64_t kTimeWaitCountEvery = 10;
  bool time_wait_counted = true;  // whether `destinations` holds this sweep's counts
  std::vector<DestinationCount> destinations;
  // Full sockets in a state a leak is reported from (CLOSE_WAIT, FIN_WAIT2, SYN_RECV), with
  // their lifecycles as the kernel folds them; sockets it does not follow are left out.
  std::vector<Connection> held;
  // Sockets in FIN_WAIT2 at the namespace's previous sweep that are now TIME_WAIT timewait
  // sockets (the peer's FIN came): where a FIN_WAIT2 leak went.
  std::vector<std::uint64_t> to_time_wait;
};
// live: where the lifecycles of held sockets are looked up (nullptr: none are). fin_wait2_before:
// the cookies of the sockets (full or timewait) the namespace's previous sweep found in FIN_WAIT2.
SweepDigest digest_sweep(std::uint32_t netns_ino, std::span<const SocketSnapshot> sockets,
                         NamespacePorts ports, std::uint64_t ts_ns, const LiveConnections* live,
                         const std::unordered_set<std::uint64_t>& fin_wait2_before = {});

// The first holder of a descriptor as a socket's owner (learned by fd scan); unknown if none.
Owner owner_from_holders(const std::vector<FdOwner>& holders);

// Where leak records go (the collector filters and counts them before the sink).
class LeakObserver {
public:
  virtual ~LeakObserver() = default;
  virtual void on_leak(const Connection& conn, const Leak& leak) = 0;
  virtual void on_leak_resolved(const Connection& conn, const Leak& leak) = 0;
  virtual void on_time_wait_pressure(const TimeWaitPressure& pressure) = 0;
};

class LeakDetector {
public:
  // live: asked, when a suspect crosses its threshold, whether it is still where the last sweep
  // saw it.
  LeakDetector(LeakConfig config, FdOwnerLookup& lookup, LiveConnections& live,
               LeakObserver& observer);

  // A connection ended (its record is final: close kind and time_wait decided).
  void on_closed(const Connection& conn, std::uint64_t ts_ns);
  void forget_namespace(std::uint32_t netns_ino) { ports_.forget_namespace(netns_ino); }
  // Reports suspects past their threshold.
  void tick(std::uint64_t now_ns);
  // A sweep of one namespace's socket table: sockets held in leak states, half-open request
  // sockets, and the ports taken towards each destination against that namespace's port
  // range. at_start: the
  // snapshot taken when tracing began; the minisocks it finds are preexisting.
  void on_sweep(const SweepDigest& digest, std::uint64_t now_ns, bool at_start = false);

  // Leaks reported and not yet resolved, aged as of now_ns.
  std::vector<Suspect> reported(std::uint64_t now_ns) const;
  // Per namespace, the share of its local port range taken towards its worst destination
  // (PortPressure::worst_ratios).
  std::map<std::uint32_t, double>
  port_ratios(std::uint64_t now_ns,
              const std::function<bool(const TimeWaitPressure&)>& wanted) const {
    return ports_.worst_ratios(now_ns, wanted);
  }

private:
  struct Watch {
    LeakKind kind;
    std::uint64_t since_ns;
    bool reported = false;
    std::vector<FdOwner> owners;
    std::unique_ptr<Connection> conn;  // as last seen
    // A sweep no longer showed it, and the kernel's table had no other state for it: its
    // connection record may still be on its way, so the next sweep without it says "gone".
    bool missed = false;
  };

  std::uint64_t threshold(LeakKind kind) const;
  // went_to: the state it left for, nullopt when gone; it becomes the connection's state.
  void resolve(std::unordered_map<std::uint64_t, Watch>::iterator it, std::uint64_t now_ns,
               std::optional<TcpState> went_to);
  void sweep_held(const SweepDigest& digest, std::uint64_t now_ns);
  void sweep_minisocks(const SweepDigest& digest, std::uint64_t now_ns, bool at_start);
  void report_minisock(Watch& watch, const SweepDigest& digest, std::uint64_t now_ns);
  void resolve_minisocks(const SweepDigest& digest, std::uint64_t now_ns);

  LeakConfig config_;
  FdOwnerLookup& lookup_;
  LiveConnections& live_;
  LeakObserver& observer_;
  std::unordered_map<std::uint64_t, Watch> watches_;  // full sockets, by cookie
  // Request sockets and orphaned FIN_WAIT2 timewait socks, by cookie (unique across
  // namespaces); the connection table never sees them.
  std::unordered_map<std::uint64_t, Watch> requests_;
  // Connections the kernel handed to a FIN_WAIT2 timewait socket (same cookie) that no sweep
  // has shown yet, in the order they closed: the minisock is reported as that connection.
  std::unordered_map<std::uint64_t, Connection> handed_;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> handed_order_;  // cookie, closed at
  PortPressure ports_;
};

}  // namespace tcptrail
