// Per-process and per-peer counts of connections, retransmits, resets and leaks, for the stop
// record and the exit summary.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

class Summary {
 public:
  void count_connection(const Connection& conn);
  void count_retransmits(const Connection& conn, std::uint32_t segs);
  void count_reset(const Connection& conn);
  void count_leak(const Connection& conn);

  // The busiest rows first, at most `limit` of each.
  std::vector<CountRow> per_process(std::size_t limit) const;
  std::vector<CountRow> per_peer(std::size_t limit) const;

 private:
  CountRow& process_row(const Connection& conn);
  CountRow& peer_row(const Connection& conn);

  std::unordered_map<std::string, CountRow> processes_;
  std::unordered_map<std::string, CountRow> peers_;
};

}  // namespace tcptrail
