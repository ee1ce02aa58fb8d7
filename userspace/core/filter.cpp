#include "tcptrail/filter.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <string>

namespace tcptrail {

namespace {

template <typename T> bool empty_or_has(const std::vector<T>& values, const T& value) {
  return values.empty() || std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  // inet_pton reads a C string: "::\0junk" would parse as "::".
  if (text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  Cidr cidr;
  std::string address(text.substr(0, text.find('/')));
  if (inet_pton(AF_INET, address.c_str(), cidr.network.bytes.data()) == 1) {
    cidr.network.family = 4;
  } else if (inet_pton(AF_INET6, address.c_str(), cidr.network.bytes.data()) == 1) {
    cidr.network.family = 6;
  } else {
    return std::nullopt;
  }
  const unsigned max_prefix = cidr.network.family == 4 ? 32 : 128;
  const auto text_bytes = cidr.network.bytes;  // before an IPv4-mapped address is unmapped
  unsigned prefix = max_prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
        prefix > max_prefix) {
      return std::nullopt;
    }
  }
  cidr.prefix = static_cast<std::uint8_t>(prefix);
  cidr.network = cidr.network.unmapped();
  if (cidr.network.family == 4 && max_prefix == 128) {
    cidr.prefix = static_cast<std::uint8_t>(prefix >= 96 ? prefix - 96 : 0);
  }
  // 10.0.0.1/24 is a typo or a misunderstanding: widening it silently would match more than
  // was asked.
  for (std::size_t bit = prefix; bit < max_prefix; ++bit) {
    if ((text_bytes[bit / 8] >> (7 - bit % 8) & 1) != 0) {
      return std::nullopt;
    }
  }
  return cidr;
}

bool Cidr::contains(const IpAddress& candidate) const {
  const IpAddress addr = candidate.unmapped();
  if (addr.family != network.family) {
    return false;
  }
  unsigned bits = prefix;
  for (std::size_t i = 0; bits > 0; ++i, bits = bits >= 8 ? bits - 8 : 0) {
    const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((addr.bytes[i] & mask) != (network.bytes[i] & mask)) {
      return false;
    }
  }
  return true;
}

bool Filter::matches_owner(std::uint32_t pid, std::string_view comm) const {
  return empty_or_has(pids, pid) &&
         (comms.empty() || std::find(comms.begin(), comms.end(), comm) != comms.end());
}

bool Filter::matches(const Connection& conn) const {
  return matches_owner(conn.owner.pid, conn.owner.comm_view()) && matches_tuple(conn);
}

bool Filter::matches_tuple(const Connection& conn) const {
  if (family != 0 && conn.laddr.family != family) {
    return false;
  }
  if (!empty_or_has(lports, conn.lport) || !empty_or_has(rports, conn.rport)) {
    return false;
  }
  if (!ports.empty() && !(empty_or_has(ports, conn.lport) || empty_or_has(ports, conn.rport))) {
    return false;
  }
  if (!empty_or_has(cgroups, conn.cgroup_id)) {
    return false;
  }
  return addrs.empty() || std::any_of(addrs.begin(), addrs.end(), [&](const Cidr& c) {
           return c.contains(conn.laddr) || c.contains(conn.raddr);
         });
}

bool Filter::matches_identity(const CgroupIdentity* cgroup) const {
  if (!filters_identity()) {
    return true;
  }
  if (cgroup == nullptr) {
    return false;
  }
  const bool container =
      containers.empty() ||
      (!cgroup->container_id.empty() &&
       std::any_of(containers.begin(), containers.end(),
                   [&](const std::string& id) { return cgroup->container_id.starts_with(id); }));
  return container && empty_or_has(units, cgroup->unit);
}

}  // namespace tcptrail
