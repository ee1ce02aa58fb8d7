#include "tcptrail/community_id.hpp"

#include <gtest/gtest.h>

#include "event_builder.hpp"

namespace tcptrail {
namespace {

// The TCP flows of the spec's baseline (community-id-spec baseline/baseline_deflt.json, seed 0)
// and of Zeek's community_id_v1 test, each in both directions.
struct Vector {
  const char* saddr;
  std::uint16_t sport;
  const char* daddr;
  std::uint16_t dport;
  const char* id;
};
constexpr Vector kVectors[] = {
    {"128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {"2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, "2607:f8b0:400c:c03::1a", 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {"1.2.3.4", 1122, "5.6.7.8", 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
};

IpAddress address(const char* text) {
  return std::string_view(text).find(':') != std::string_view::npos ? testing::ipv6(text)
                                                                    : testing::ipv4(text);
}

TEST(CommunityId, ReproducesTheSpecVectorsInBothDirections) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(community_id(address(v.saddr), v.sport, address(v.daddr), v.dport), v.id) << v.saddr;
    EXPECT_EQ(community_id(address(v.daddr), v.dport, address(v.saddr), v.sport), v.id) << v.daddr;
  }
}

TEST(CommunityId, HashesIpv4MappedAddressesAsIpv4) {
  EXPECT_EQ(
      community_id(testing::ipv6("::ffff:1.2.3.4"), 1122, testing::ipv6("::ffff:5.6.7.8"), 3344),
      "1:wCb3OG7yAFWelaUydu0D+125CLM=");
}

// Equal addresses (loopback): the ports decide the order, so both ends still agree.
TEST(CommunityId, OrdersByPortWhenTheAddressesAreEqual) {
  const CommunityId a =
      community_id(testing::ipv4("127.0.0.1"), 40000, testing::ipv4("127.0.0.1"), 80);
  EXPECT_EQ(a, community_id(testing::ipv4("127.0.0.1"), 80, testing::ipv4("127.0.0.1"), 40000));
  EXPECT_NE(a, community_id(testing::ipv4("127.0.0.1"), 40000, testing::ipv4("127.0.0.1"), 81));
  EXPECT_EQ(a.view().size(), 30U);
}

TEST(CommunityId, IsEmptyWhenTheFamiliesDiffer) {
  EXPECT_EQ(community_id(testing::ipv4("1.2.3.4"), 1, testing::ipv6("2001:db8::1"), 2), "");
}

// More flows than slots, each asked for in both directions and again after others took its
// slot: the cache answers what community_id() does, whatever it held before.
TEST(CommunityIdCache, AnswersAsCommunityIdAcrossCollisions) {
  CommunityIdCache cache;
  const IpAddress lo = testing::ipv4("127.0.0.1");
  const IpAddress v6 = testing::ipv6("2001:db8::1");
  for (int round = 0; round < 2; ++round) {
    for (std::uint16_t port = 30000; port < 40000; ++port) {
      const IpAddress& peer = port % 3 == 0 ? v6 : lo;
      const IpAddress& local = port % 3 == 0 ? testing::ipv6("2001:db8::2") : lo;
      const CommunityId want = community_id(local, port, peer, 80);
      ASSERT_EQ(cache.get(local, port, peer, 80), want) << port;
      ASSERT_EQ(cache.get(peer, 80, local, port), want) << port;
    }
  }
  for (const Vector& v : kVectors) {
    EXPECT_EQ(cache.get(address(v.daddr), v.dport, address(v.saddr), v.sport), v.id) << v.daddr;
  }
}

}  // namespace
}  // namespace tcptrail
