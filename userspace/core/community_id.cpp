#include "tcptrail/community_id.hpp"

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include <array>
#include <cstring>
#include <tuple>
#include <utility>

namespace tcptrail {

namespace {

constexpr std::uint8_t kProtoTcp = 6;

void add_port(sha1_ctx& ctx, std::uint16_t port) {
  const std::array<std::uint8_t, 2> be = {static_cast<std::uint8_t>(port >> 8),
                                          static_cast<std::uint8_t>(port & 0xff)};
  sha1_update(&ctx, be.size(), be.data());
}

}  // namespace

CommunityId community_id(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
                         std::uint16_t b_port) {
  IpAddress src = a.unmapped();
  IpAddress dst = b.unmapped();
  if (src.family != dst.family) {
    return {};
  }
  const std::size_t addr_len = src.family == 4 ? 4 : 16;
  // The spec orders by address, then by port: the smaller endpoint comes first.
  const int order = std::memcmp(src.bytes.data(), dst.bytes.data(), addr_len);
  if (order > 0 || (order == 0 && a_port > b_port)) {
    std::swap(src, dst);
    std::swap(a_port, b_port);
  }
  sha1_ctx ctx;
  sha1_init(&ctx);
  const std::array<std::uint8_t, 2> seed = {0, 0};
  sha1_update(&ctx, seed.size(), seed.data());
  sha1_update(&ctx, addr_len, src.bytes.data());
  sha1_update(&ctx, addr_len, dst.bytes.data());
  const std::array<std::uint8_t, 2> proto_pad = {kProtoTcp, 0};
  sha1_update(&ctx, proto_pad.size(), proto_pad.data());
  add_port(ctx, a_port);
  add_port(ctx, b_port);
  std::array<std::uint8_t, SHA1_DIGEST_SIZE> digest{};
  sha1_digest(&ctx, digest.size(), digest.data());

  static_assert(CommunityId::kLength == 2 + BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE));
  CommunityId id;
  id.text_[0] = '1';
  id.text_[1] = ':';
  base64_encode_raw(id.text_.data() + 2, digest.size(), digest.data());
  id.size_ = CommunityId::kLength;
  return id;
}

std::string_view CommunityIdCache::get(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
                                       std::uint16_t b_port) {
  // Either direction is the same flow and the same slot.
  const bool a_first = std::tie(a, a_port) <= std::tie(b, b_port);
  const IpAddress& low = a_first ? a : b;
  const IpAddress& high = a_first ? b : a;
  const std::uint16_t low_port = a_first ? a_port : b_port;
  const std::uint16_t high_port = a_first ? b_port : a_port;
  // FNV-1a over what differs between flows on one host: the addresses' last bytes and ports.
  std::uint32_t hash = 2166136261u;
  auto mix = [&hash](std::uint32_t byte) { hash = (hash ^ byte) * 16777619u; };
  for (const IpAddress* address : {&low, &high}) {
    for (std::size_t i = 0; i < 4; ++i) {
      mix(address->bytes[(address->family == 4 ? 0 : 12) + i]);
    }
  }
  for (const std::uint16_t port : {low_port, high_port}) {
    mix(port & 0xffu);
    mix(port >> 8u);
  }
  Slot& slot = slots_[hash & (kSlots - 1)];
  if (!slot.used || slot.low_port != low_port || slot.high_port != high_port || slot.low != low ||
      slot.high != high) {
    slot.low = low;
    slot.high = high;
    slot.low_port = low_port;
    slot.high_port = high_port;
    slot.used = true;
    slot.id = community_id(a, a_port, b, b_port);
  }
  return slot.id.view();
}

}  // namespace tcptrail
