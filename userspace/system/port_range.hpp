// The settings that decide how many ports connect() has, per network namespace (both cover
// IPv6 too): net.ipv4.ip_local_port_range, the ephemeral ports connect() and bind(port 0) pick
// from, net.ipv4.tcp_tw_reuse, whether connect() may take a port still in TIME_WAIT, and
// net.ipv4.tcp_tw_reuse_delay, how long after entering TIME_WAIT it may.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tcptrail::sys {

struct PortRange {
  std::uint16_t lo = 0;
  std::uint16_t hi = 0;  // inclusive; lo <= hi

  // Ports in the range. All of them are usable by connect(): since Linux 4.6 it tries the ports
  // of lo's parity first and the others after (__inet_hash_connect), which changes the order,
  // not the count. ip_local_reserved_ports is not subtracted.
  [[nodiscard]] std::uint32_t size() const { return std::uint32_t{hi} - lo + 1; }
  bool operator==(const PortRange&) const = default;
};

// Parses the file's text, two decimal ports separated by whitespace ("32768\t60999\n").
// A reversed pair is swapped. Returns nullopt for anything else (missing, extra or out of range
// numbers).
std::optional<PortRange> parse_port_range(std::string_view text);

// The range of the namespace netns_ino (0 or the caller's own: read directly; another: read from
// a short-lived thread that joins it, see open_netns). Throws std::system_error.
PortRange read_port_range(std::uint32_t netns_ino = 0);

struct PortSettings {
  PortRange range;
  // tcp_tw_reuse: 0 never, 1 for every destination, 2 (the default) for loopback only.
  std::uint8_t tw_reuse = 2;
  // tcp_tw_reuse_delay (Linux 6.13): ms a socket must have been in TIME_WAIT before connect()
  // may take its port back. Kernels without it wanted the peer's last timestamp to be from an
  // earlier second than now, which is at least 1000 ms before for the steady state; 1000 then.
  std::uint32_t tw_reuse_delay_ms = 1000;
};
// tcp_tw_reuse's text: one decimal digit 0, 1 or 2 and an optional newline; nullopt otherwise.
std::optional<std::uint8_t> parse_tw_reuse(std::string_view text);
// tcp_tw_reuse_delay's text: a decimal number of ms from 1 to 2^31 - 1 (the kernel's bounds)
// and an optional newline; nullopt otherwise.
std::optional<std::uint32_t> parse_tw_reuse_delay(std::string_view text);
// Both settings of netns_ino, read as read_port_range does (one thread for both).
PortSettings read_port_settings(std::uint32_t netns_ino = 0);

}  // namespace tcptrail::sys
