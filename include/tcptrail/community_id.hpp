// The Community ID v1 flow hash (https://github.com/corelight/community-id-spec), as Zeek and
// Suricata compute it: the same string for both ends of a connection and for other tools' records
// of the same flow, so that a pipeline can join them.
#pragma once

#include <cstdint>
#include <string>

#include "tcptrail/event.hpp"

namespace tcptrail {

// "1:" + base64(SHA1(seed, saddr, daddr, proto 6, 0, sport, dport)) for a TCP flow, seed 0,
// with the endpoints ordered so that either direction gives the same value. IPv4-mapped IPv6
// addresses are hashed as the IPv4 addresses on the wire. Empty when the families differ.
std::string community_id(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
                         std::uint16_t b_port);

}  // namespace tcptrail
