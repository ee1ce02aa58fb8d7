// --retransmits: identical retransmits of one connection (same state, same segment count)
// within one window are one record with a count, the time of the first and that of the last,
// so that a connection retransmitting every 200 ms for a minute is a few lines, not 300. Time
// comes from the events and the caller's ticks.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "tcptrail/connection.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

class RetransmitFolder {
public:
  // window_ns 0: nothing is folded, each retransmit is passed on at once.
  RetransmitFolder(std::uint64_t window_ns, std::function<void(const RetransmitRecord&)> emit);

  void add(const Connection& conn, TcpState state, std::uint32_t segs, std::uint64_t ts_ns);
  // Passes on what is held of this connection now: before any other record about it, so that
  // its records stay in order.
  void flush_connection(std::uint64_t conn_id);
  // Passes on the folds whose window ended by now_ns.
  void tick(std::uint64_t now_ns);
  void flush_all();

private:
  struct Fold {
    Connection conn;  // as of the first
    TcpState state;
    std::uint32_t segs;
    std::uint64_t first_ns;
    std::uint64_t last_ns;
    std::uint32_t count;
  };
  void emit(const Fold& fold);
  void emit_where(const std::function<bool(const Fold&)>& due);

  std::uint64_t window_ns_;
  std::function<void(const RetransmitRecord&)> emit_;
  std::unordered_map<std::uint64_t, Fold> folds_;  // by conn_id
};

}  // namespace tcptrail
