#include "system/port_range.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <string>
#include <utility>

#include "system/netns.hpp"
#include "system/proc.hpp"
#include "system/unique_fd.hpp"

namespace tcptrail::sys {
namespace {

constexpr const char* kPath = "/proc/sys/net/ipv4/ip_local_port_range";
constexpr const char* kTwReusePath = "/proc/sys/net/ipv4/tcp_tw_reuse";
constexpr const char* kTwReuseDelayPath = "/proc/sys/net/ipv4/tcp_tw_reuse_delay";

void skip_space(std::string_view& text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
}

std::optional<std::uint16_t> take_port(std::string_view& text) {
  skip_space(text);
  std::uint16_t port = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || ptr == text.data()) {
    return std::nullopt;
  }
  text.remove_prefix(static_cast<std::size_t>(ptr - text.data()));
  return port;
}

PortRange read_current() {
  const std::string text = read_small_file(kPath, "port_range");
  auto range = parse_port_range(text);
  if (!range) {
    throw_errno(EINVAL, "port_range: cannot parse \"" + text + "\" from " + kPath);
  }
  return *range;
}

PortSettings read_current_settings() {
  PortSettings settings;
  settings.range = read_current();
  const std::string text = read_small_file(kTwReusePath, "tcp_tw_reuse");
  auto reuse = parse_tw_reuse(text);
  if (!reuse) {
    throw_errno(EINVAL, "tcp_tw_reuse: cannot parse \"" + text + "\" from " + kTwReusePath);
  }
  settings.tw_reuse = *reuse;
  if (access(kTwReuseDelayPath, F_OK) == 0) {
    const std::string delay_text = read_small_file(kTwReuseDelayPath, "tcp_tw_reuse_delay");
    auto delay = parse_tw_reuse_delay(delay_text);
    if (!delay) {
      throw_errno(EINVAL, "tcp_tw_reuse_delay: cannot parse \"" + delay_text + "\" from " +
                              kTwReuseDelayPath);
    }
    settings.tw_reuse_delay_ms = *delay;
  }
  return settings;
}

}  // namespace

std::optional<PortRange> parse_port_range(std::string_view text) {
  auto lo = take_port(text);
  if (!lo || text.empty() || !std::isspace(static_cast<unsigned char>(text.front()))) {
    return std::nullopt;
  }
  auto hi = take_port(text);
  if (!hi) {
    return std::nullopt;
  }
  skip_space(text);
  if (!text.empty()) {
    return std::nullopt;
  }
  PortRange range{*lo, *hi};
  if (range.lo > range.hi) {
    std::swap(range.lo, range.hi);
  }
  return range;
}

PortRange read_port_range(std::uint32_t netns_ino) {
  if (netns_ino == 0 || netns_ino == current_netns_ino()) {
    return read_current();
  }
  UniqueFd ns = open_netns(netns_ino);
  // /proc/sys/net resolves to the namespace of the task that opens it, not of /proc's mounter.
  PortRange range;
  run_in_netns(ns.get(), [&range] { range = read_current(); });
  return range;
}

std::optional<std::uint8_t> parse_tw_reuse(std::string_view text) {
  if (text.ends_with('\n')) {
    text.remove_suffix(1);
  }
  if (text.size() != 1 || text[0] < '0' || text[0] > '2') {
    return std::nullopt;
  }
  return static_cast<std::uint8_t>(text[0] - '0');
}

std::optional<std::uint32_t> parse_tw_reuse_delay(std::string_view text) {
  if (text.ends_with('\n')) {
    text.remove_suffix(1);
  }
  std::uint32_t ms = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || text.empty() || ptr != text.data() + text.size() || ms == 0 ||
      ms > 0x7fff'ffffU) {
    return std::nullopt;
  }
  return ms;
}

PortSettings read_port_settings(std::uint32_t netns_ino) {
  if (netns_ino == 0 || netns_ino == current_netns_ino()) {
    return read_current_settings();
  }
  UniqueFd ns = open_netns(netns_ino);
  PortSettings settings;
  run_in_netns(ns.get(), [&settings] { settings = read_current_settings(); });
  return settings;
}

}  // namespace tcptrail::sys
