// The table of live connections: a state machine over kernel events. Time comes only from the
// events (and from the `now` given to tick/drain), so it runs deterministically in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/event.hpp"
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
  std::size_t max_connections = 1 << 20;
  // A closed connection is held this long before its record is final: the kernel sends the
  // RST of an abortive close (SO_LINGER {1,0}, unread data) just after the CLOSE transition.
  std::uint64_t close_grace_ns = 20'000'000;
};

struct TableStats {
  std::uint64_t overflow = 0;    // connections not tracked: the table was full
  std::uint64_t untracked = 0;   // events without a connection id (no socket storage)
  std::uint64_t late = 0;        // events for a connection already reported
};

class ConnectionTable {
 public:
  ConnectionTable(TableConfig config, TableObserver& observer);

  void on_event(const Event& event);
  // Reports connections whose close grace has passed by `now_ns`.
  void tick(std::uint64_t now_ns);
  // Reports every closed connection still held (at exit).
  void drain();

  // A socket that existed before tracing started, from the kernel's socket table; its id is
  // derived from the socket cookie, and BPF events for it (matched by cookie) keep that id.
  // Returns the id, or 0 if it was not added.
  std::uint64_t add_preexisting(Connection conn);
  static constexpr std::uint64_t kPreexistingIdBit = 1ull << 63;

  std::size_t live() const { return connections_.size(); }
  const TableStats& stats() const { return stats_; }
  const Connection* find(std::uint64_t conn_id) const;
  void for_each(const std::function<void(const Connection&)>& visit) const;

 private:
  std::uint64_t preexisting_id(const Event& event);
  void apply_event(const Event& event);
  void forget_aliases(const Connection& conn);
  Connection* admit(const Event& event);
  void apply_state(Connection& conn, const Event& event);
  void finish(Connection& conn);

  TableConfig config_;
  TableObserver& observer_;
  std::unordered_map<std::uint64_t, Connection> connections_;
  std::vector<std::uint64_t> closing_;  // ids of ended connections, in end order
  // Preexisting sockets not yet seen by BPF (cookie → id), and BPF id → preexisting id.
  std::unordered_map<std::uint64_t, std::uint64_t> preexisting_by_cookie_;
  std::unordered_map<std::uint64_t, std::uint64_t> aliases_;
  TableStats stats_;
};

// How a connection ended, from its path, resets and error (see docs/close.md).
CloseKind decide_close(const Connection& conn);

}  // namespace tcptrail
