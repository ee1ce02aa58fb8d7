// The table of live connections: a state machine over kernel events. Time comes only from the
// events (and from the `now` given to tick/drain), so it runs deterministically in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
  std::uint64_t overflow = 0;  // connections not tracked: the table was full
  std::uint64_t late = 0;      // events for a connection already reported
};

// Connections by socket cookie (Connection::sock_cookie is the key, never 0), compact: the
// records live in fixed pages that never move (a pointer stays valid until its connection is
// erased; freed records are reused) and are found through an open-addressing index of 4-byte
// record numbers, linear probing, at most half full. It costs sizeof(Connection) + 8..16 bytes
// per connection (std::unordered_map added ~40); the pages stay at the high-water mark.
class ConnectionStore {
public:
  static constexpr std::size_t kMaxSize = 0xffff'fffe;

  ConnectionStore();
  Connection* find(std::uint64_t sock_cookie);
  const Connection* find(std::uint64_t sock_cookie) const;
  // A default connection with this cookie, which is not 0 and not present; size() < kMaxSize.
  // The caller must not change the cookie while the connection is stored.
  Connection& insert(std::uint64_t sock_cookie);
  void erase(std::uint64_t sock_cookie);
  std::size_t size() const { return size_; }
  void reserve(std::size_t count);
  void for_each(const std::function<void(const Connection&)>& visit) const;

private:
  static constexpr std::uint32_t kEmpty = 0xffff'ffff;
  static constexpr unsigned kPageShift = 10;
  static constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;

  Connection& record(std::uint32_t number) const {
    return pages_[number >> kPageShift][number & (kPageSize - 1)];
  }
  std::size_t home(std::uint64_t id) const {
    return static_cast<std::size_t>((id * 0x9e37'79b9'7f4a'7c15) >> shift_);
  }
  // Index position of id, or of the empty slot where it would go.
  std::size_t probe(std::uint64_t id) const;
  void rehash(std::size_t slots);

  std::vector<std::unique_ptr<Connection[]>> pages_;
  std::vector<std::uint32_t> free_;   // record numbers to reuse
  std::uint32_t next_ = 0;            // records ever used
  std::vector<std::uint32_t> index_;  // record numbers, kEmpty; a power of two in size
  unsigned shift_ = 64;
  std::size_t size_ = 0;
};

// Sockets are found by their cookie (Event::sock_cookie, Connection::sock_cookie), which the
// kernel never reuses; each lifecycle gets its own Connection::conn_id, counting from 1.
class ConnectionTable {
public:
  ConnectionTable(TableConfig config, TableObserver& observer);

  void on_event(const Event& event);
  // Reports connections whose close grace has passed by `now_ns`.
  void tick(std::uint64_t now_ns);
  // Reports every closed connection still held (at exit).
  void drain();

  // A socket that existed before tracing started, from the kernel's socket table (keyed by
  // its cookie like the rest). Returns false if it was not added.
  bool add_preexisting(Connection conn);
  // A listening socket that existed before tracing started: its children inherit this owner.
  void add_listener(std::uint32_t netns_ino, std::uint16_t port, const Owner& owner);

  // Ids of sockets the table never tracks (request sockets, timewait minisocks) when a record
  // is written about them: their cookie with this bit set, so they cannot collide.
  static constexpr std::uint64_t kUntrackedIdBit = 1ull << 63;

  std::size_t live() const { return connections_.size(); }
  const TableStats& stats() const { return stats_; }
  const Connection* find(std::uint64_t sock_cookie) const;
  void for_each(const std::function<void(const Connection&)>& visit) const;

private:
  bool full() const;
  Connection* admit(const Event& event);
  void apply_state(Connection& conn, const Event& event);
  void on_listener(const Event& event);
  void on_synack_retransmit(const Event& event);
  void finish(Connection& conn);
  void finish_now(std::uint64_t sock_cookie);
  Owner listener_owner(std::uint32_t netns_ino, std::uint16_t port) const;

  TableConfig config_;
  TableObserver& observer_;
  ConnectionStore connections_;
  std::vector<std::uint64_t> closing_;  // cookies of ended connections, in end order
  // Owners of listening sockets by (netns << 16 | port): server children are born in softirq,
  // where nothing tells who will accept them.
  std::unordered_map<std::uint64_t, Owner> listeners_;
  std::uint64_t last_conn_id_ = 0;
  TableStats stats_;
};

}  // namespace tcptrail
