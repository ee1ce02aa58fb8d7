#include "analyzers/summary.hpp"

#include <algorithm>
#include <string>

namespace tcptrail {

namespace {

std::vector<CountRow> top_rows(const std::unordered_map<std::string, CountRow>& rows,
                               std::size_t limit) {
  std::vector<CountRow> out;
  out.reserve(rows.size());
  for (const auto& [key, row] : rows) {
    out.push_back(row);
  }
  auto weight = [](const CountRow& r) { return r.connections + r.retransmits + r.resets + r.leaks; };
  std::sort(out.begin(), out.end(), [&](const CountRow& a, const CountRow& b) {
    return weight(a) != weight(b) ? weight(a) > weight(b) : a.key < b.key;
  });
  if (out.size() > limit) {
    out.resize(limit);
  }
  return out;
}

}  // namespace

CountRow& Summary::process_row(const Connection& conn) {
  std::string key = std::to_string(conn.owner.pid);
  key += ' ';
  key += conn.owner.comm_view();
  CountRow& row = processes_[key];
  if (row.key.empty()) {
    row.key = std::move(key);
  }
  return row;
}

CountRow& Summary::peer_row(const Connection& conn) {
  std::string key = conn.raddr.family == 6 ? "[" + conn.raddr.to_string() + "]"
                                           : conn.raddr.to_string();
  key += ':';
  key += std::to_string(conn.rport);
  CountRow& row = peers_[key];
  if (row.key.empty()) {
    row.key = std::move(key);
  }
  return row;
}

void Summary::count_connection(const Connection& conn) {
  ++process_row(conn).connections;
  ++peer_row(conn).connections;
}

void Summary::count_retransmits(const Connection& conn, std::uint32_t segs) {
  process_row(conn).retransmits += segs;
  peer_row(conn).retransmits += segs;
}

void Summary::count_reset(const Connection& conn) {
  ++process_row(conn).resets;
  ++peer_row(conn).resets;
}

void Summary::count_leak(const Connection& conn) {
  ++process_row(conn).leaks;
  ++peer_row(conn).leaks;
}

std::vector<CountRow> Summary::per_process(std::size_t limit) const {
  return top_rows(processes_, limit);
}

std::vector<CountRow> Summary::per_peer(std::size_t limit) const {
  return top_rows(peers_, limit);
}

}  // namespace tcptrail
