// Building blocks for the sink tests: a fixed clock and hand-made addresses and connections.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail::fixtures {

// A sink's text, line by line (without the newlines).
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// 2026-11-22T02:07:49Z at monotonic 0.
inline constexpr WallClock kClock{1'795'313'269'000'000'000};
inline constexpr std::uint64_t kMs = 1'000'000;

inline IpAddress ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddress address;
  address.bytes = {a, b, c, d};
  return address;
}

inline IpAddress ipv6(std::initializer_list<std::uint8_t> bytes) {
  IpAddress address;
  address.family = 6;
  std::copy(bytes.begin(), bytes.end(), address.bytes.begin());
  return address;
}

inline void set_comm(Owner& owner, std::string_view comm) {
  owner.comm = {};
  std::memcpy(owner.comm.data(), comm.data(), std::min(comm.size(), owner.comm.size()));
}

inline void set_path(Connection& conn, std::initializer_list<TcpState> states) {
  conn.path = {};
  for (const TcpState state : states) {
    conn.path.push(state);
  }
}

}  // namespace tcptrail::fixtures
