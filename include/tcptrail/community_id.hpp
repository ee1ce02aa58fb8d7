// The Community ID v1 flow hash (https://github.com/corelight/community-id-spec), as Zeek and
// Suricata compute it: the same string for both ends of a connection and for other tools' records
// of the same flow, so that a pipeline can join them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <vector>

#include "tcptrail/event.hpp"

namespace tcptrail {

// A Community ID's text: "1:" and the base64 of a SHA-1, 30 characters, or empty. A value, so
// that making one allocates nothing (it was nearly every allocation per record).
class CommunityId {
public:
  static constexpr std::size_t kLength = 30;
  [[nodiscard]] std::string_view view() const { return {text_.data(), size_}; }
  bool operator==(const CommunityId&) const = default;
  friend bool operator==(const CommunityId& id, std::string_view text) { return id.view() == text; }
  friend std::ostream& operator<<(std::ostream& out, const CommunityId& id) {
    return out << id.view();
  }

private:
  friend CommunityId community_id(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
                                  std::uint16_t b_port);
  std::array<char, kLength> text_{};
  std::uint8_t size_ = 0;
};

// "1:" + base64(SHA1(seed, saddr, daddr, proto 6, 0, sport, dport)) for a TCP flow, seed 0,
// with the endpoints ordered so that either direction gives the same value. IPv4-mapped IPv6
// addresses are hashed as the IPv4 addresses on the wire. Empty when the families differ.
CommunityId community_id(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
                         std::uint16_t b_port);

// community_id() of recent flows. Every record of a connection carries its Community ID, and
// both ends of a loopback connection share one: SHA-1 per record was the largest single cost
// of writing --transitions records. Direct-mapped: a flow whose slot another took is hashed
// again.
class CommunityIdCache {
public:
  // Valid until the next call.
  std::string_view get(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
                       std::uint16_t b_port);

private:
  struct Slot {
    IpAddress low;
    IpAddress high;
    std::uint16_t low_port = 0;
    std::uint16_t high_port = 0;
    bool used = false;
    CommunityId id;
  };
  static constexpr std::size_t kSlots = 4096;  // a power of two
  std::vector<Slot> slots_ = std::vector<Slot>(kSlots);
};

}  // namespace tcptrail
