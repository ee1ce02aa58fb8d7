#include "tcptrail/community_id.hpp"

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include <array>
#include <cstring>
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

std::string community_id(const IpAddress& a, std::uint16_t a_port, const IpAddress& b,
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

  std::array<char, BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)> encoded{};
  base64_encode_raw(encoded.data(), digest.size(), digest.data());
  std::string id = "1:";
  id.append(encoded.data(), encoded.size());
  return id;
}

}  // namespace tcptrail
