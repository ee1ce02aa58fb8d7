// Finished connections and the events of live ones, on their way to the analyzers. Time comes
// only from the records (and from the `now` given to tick/drain), so it runs deterministically
// in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/event.hpp"
#include "tcptrail/live_connections.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

// Receives what the table learns, in event order.
class TableObserver {
public:
  virtual ~TableObserver() = default;
  virtual void on_state_change(const Connection& conn, TcpState old_state, TcpState new_state,
                               std::uint64_t ns_in_old, bool ns_in_old_known,
                               std::uint64_t ts_ns) = 0;
  virtual void on_retransmit(const Connection& conn, TcpState state, std::uint32_t segs,
                             std::uint64_t ts_ns) = 0;
  virtual void on_reset(const Connection& conn, ResetDirection direction, TcpState state,
                        std::uint64_t ts_ns) = 0;
  // The connection ended; it is removed from the table right after this call.
  virtual void on_closed(const Connection& conn, std::uint64_t ts_ns) = 0;
};

struct TableConfig {
  // A closed connection is held this long before its record is final: the kernel sends the
  // RST of an abortive close (SO_LINGER {1,0}, unread data) just after the CLOSE transition.
  std::uint64_t close_grace_ns = 20'000'000;
};

struct TableStats {
  std::uint64_t overflow = 0;   // sockets found at start not tracked: the table was full
  std::uint64_t untracked = 0;  // events of sockets without a lifecycle (table full)
  std::uint64_t late = 0;       // events of a closed socket after its record was final
};

// The collector's side of the connection table: the kernel folds each live socket's lifecycle
// (LiveConnections) and sends it whole at CLOSE; this holds each finished connection for a
// short grace, so that what the kernel still does to the closed socket (the RST of an abortive
// close) is part of its record, and ties the events of live sockets to their lifecycle.
// Sockets are found by their cookie, which the kernel never reuses; each lifecycle has its own
// conn_id, counting from 1.
class ConnectionTable {
public:
  ConnectionTable(TableConfig config, LiveConnections& live, TableObserver& observer);

  // A connection the kernel saw reach CLOSE.
  void on_connection(const Connection& conn);
  void on_event(const Event& event);
  // Reports connections whose close grace has passed by `now_ns`.
  void tick(std::uint64_t now_ns);
  // Reports every closed connection still held (at exit).
  void drain();

  // A socket that existed before tracing started, from the kernel's socket table. Returns
  // false if it was not added.
  bool add_preexisting(Connection conn);
  // A listening socket that existed before tracing started: its children inherit this owner.
  void add_listener(std::uint32_t netns_ino, std::uint16_t port, const Owner& owner);

  // Ids of sockets the table never tracks (request sockets, timewait minisocks) when a record
  // is written about them: their cookie with this bit set, so they cannot collide.
  static constexpr std::uint64_t kUntrackedIdBit = std::uint64_t{1} << 63;

  // Connections open now (in the kernel's table).
  [[nodiscard]] std::size_t live() const { return live_.open(); }
  [[nodiscard]] const TableStats& stats() const { return stats_; }
  [[nodiscard]] LiveConnections& connections() const { return live_; }

private:
  void finish(Connection& conn);
  Connection* held(std::uint64_t sock_cookie);

  TableConfig config_;
  LiveConnections& live_;
  TableObserver& observer_;
  // Finished connections in their close grace, in end order: a grace's worth, from
  // closing_head_ on (the vector is compacted when the head passes half of it).
  std::vector<Connection> closing_;
  std::size_t closing_head_ = 0;
  TableStats stats_;
};

}  // namespace tcptrail
