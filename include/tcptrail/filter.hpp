// Which connections the user asked about. Applied to the connection's owner (not whoever was
// on-CPU) and its 4-tuple.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tcptrail/connection.hpp"
#include "tcptrail/identity.hpp"

namespace tcptrail {

struct Cidr {
  IpAddress network;
  std::uint8_t prefix = 0;

  // "10.0.0.0/8", "::1", "fe80::/10", "127.0.0.1"; nullopt if malformed or if bits past the
  // prefix are set ("10.0.0.1/24").
  static std::optional<Cidr> parse(std::string_view text);
  [[nodiscard]] bool contains(const IpAddress& candidate) const;
};

struct Filter {
  std::vector<std::uint32_t> pids;
  std::vector<std::string> comms;
  std::vector<std::uint16_t> lports;
  std::vector<std::uint16_t> rports;
  std::vector<std::uint16_t> ports;     // either side
  std::vector<Cidr> addrs;              // either side
  std::vector<std::uint64_t> cgroups;   // cgroup v2 ids
  std::uint8_t family = 0;              // 0 both, 4 or 6
  std::vector<std::string> containers;  // container ids or 12-digit prefixes of them
  std::vector<std::string> units;       // systemd unit names

  [[nodiscard]] bool matches(const Connection& conn) const;
  [[nodiscard]] bool matches_owner(std::uint32_t pid, std::string_view comm) const;
  // Family, ports, addresses and cgroups: what the socket is, not who owns it.
  [[nodiscard]] bool matches_tuple(const Connection& conn) const;
  // Containers and units, by what the socket's cgroup resolved to; null (not known) matches
  // only when neither is asked for.
  bool matches_identity(const CgroupIdentity* cgroup) const;
  [[nodiscard]] bool filters_identity() const { return !containers.empty() || !units.empty(); }
};

}  // namespace tcptrail
